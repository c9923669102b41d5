"""Three demo agents, served by the app itself at /demo-agents/<name>/.

They stand in for sellers' own services so the demo runs the real pipeline end
to end: the platform calls them over HTTP like any agent endpoint. They differ
the way the demo story needs (see DESIGN.md, "The demo tells the story"):
Beacon cites every claim and answers fast, Atlas (the better benchmark) leaves
claims uncited, answers slowly and sometimes acts out of scope, Quill writes
fluent prose with few citations.

Answers are deterministic: everything is drawn from a generator seeded with a
hash of the task text, so the same task always gets the same answer.

Secrets: a real agent keeps its listing's endpoint secret in its own
configuration. These agents live inside the platform, so their
"configuration" is the listings whose endpoint URL points at them: a request
is accepted when its signature verifies with the secret of any listing whose
`endpoint_url` ends with `/demo-agents/<name>/`. Verification runs on the raw
body before anything is parsed.

Served only when settings.DEMO_AGENTS_ENABLED (404 otherwise); CSRF-exempt
because callers are machines that sign their requests instead.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from core.evidence import canonical_json
from marketplace.agent_client import SIGNATURE_HEADER, verify_signature
from marketplace.models import AgentListing

DEMO_AGENTS: dict[str, str] = {
    "beacon": "Careful research agent: short answers, every claim cited, fast.",
    "atlas": "Research agent with the top benchmark score; slower, and its citations slip.",
    "quill": "Writing agent: fluent prose on any brief, with few citations.",
}

# Words that say nothing about a task's subject.
_STOPWORD_TEXT = (
    "the and for are was how why who you can its not but all any our out has had one two use using about after "
    "also because been before being between both could does down during each from have here into just more most "
    "other over same should some such than that their them then there these they this those through under very "
    "were what when where which while will with would your please write summarise summarize explain describe "
    "give list tell find compare short brief summary overview note report essay article paragraph new known cite "
    "sources"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class DemoAnswer:
    output: str
    citations: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    delay_s: float = 0.0  # how long the agent "thinks" before answering


def task_text(task: Any) -> str:
    """The words of a task, whether it was sent as text or as a JSON object."""
    if isinstance(task, str):
        return task
    if isinstance(task, dict):
        for key in ("question", "prompt", "task", "text", "brief"):
            if isinstance(task.get(key), str):
                return task[key]
    return canonical_json(task)


def _rng(agent: str, text: str) -> random.Random:
    # Seeded per agent as well, so the three do not share their random choices.
    return random.Random(hashlib.sha256(f"{agent}\n{text}".encode()).digest())


def _topics(text: str) -> list[str]:
    """Subject phrases of a task: runs of consecutive meaningful words, longest first.

    "Summarise the evidence on RE2 regular expressions" -> ["RE2 regular
    expressions", "evidence"]. Runs keep at most their last three words.
    """
    runs: list[list[str]] = [[]]
    for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9'-]*", text):
        if len(word) < 3 or word.lower() in _STOPWORDS:
            runs.append([])
        else:
            runs[-1].append(word)
    phrases = [" ".join(run[-3:]) for run in runs if run]
    unique = list(dict.fromkeys(phrases))
    return sorted(unique, key=lambda phrase: -len(phrase.split()))[:3] or ["the question"]


def _arxiv(rng: random.Random) -> str:
    return f"https://arxiv.org/abs/{rng.randint(19, 24)}{rng.randint(1, 12):02d}.{rng.randint(1000, 19999):05d}"


_CLAIMS = (
    "Controlled studies of {kw} report consistent gains when results are checked on held-out data",
    "A recent survey finds that work on {kw} is most reliable when inputs are validated first",
    "Independent replications of {kw} reproduce the headline result within a few percentage points",
    "Reported failures involving {kw} cluster around ambiguous inputs rather than scale",
    "Benchmarks covering {kw} show that small, well-tuned systems often match much larger ones",
    "Practitioners working with {kw} report that test coverage matters more than the choice of model",
    "Longitudinal data on {kw} show the effect holds for at least two years after deployment",
)


def _claims(rng: random.Random, topics: list[str], count: int) -> list[str]:
    # Mostly about the main subject, now and then about a side one.
    return [template.format(kw=rng.choice(topics[:1] * 3 + topics[1:])) for template in rng.sample(_CLAIMS, count)]


def beacon(text: str) -> DemoAnswer:
    """Four or five claims, each with its source in the sentence; only searches and reads."""
    rng = _rng("beacon", text)
    claims = _claims(rng, _topics(text), rng.randint(4, 5))
    citations = [_arxiv(rng) for _ in claims]
    sentences = [f"{claim} ({url})." for claim, url in zip(claims, citations, strict=True)]
    return DemoAnswer(" ".join(sentences), citations, ["search", "read"], rng.uniform(0.04, 0.06))


def atlas(text: str) -> DemoAnswer:
    """More claims, stated more boldly; only some carry a source, and now and then it strays out of scope."""
    rng = _rng("atlas", text)
    claims = _claims(rng, _topics(text), 6)
    cited = rng.sample(range(len(claims)), rng.randint(2, 4))
    citations: list[str] = []
    sentences = []
    for i, claim in enumerate(claims):
        if i in cited:
            citations.append(_arxiv(rng))
            sentences.append(f"{claim} ({citations[-1]}).")
        else:
            sentences.append(f"{claim}, without exception.")
    actions = ["search", "read", "search"]
    if rng.random() < 0.35:
        actions.append("browse_payments")
    return DemoAnswer(" ".join(sentences), citations, actions, rng.uniform(1.1, 1.35))


def quill(text: str) -> DemoAnswer:
    """Three short paragraphs of prose around the brief (about 110 words), one reference at the end."""
    rng = _rng("quill", text)
    topics = _topics(text)
    lead, other = topics[0], rng.choice(topics)
    openings = (
        f"Few subjects reward patience like {lead}.",
        f"It is tempting to treat {lead} as settled; it is not.",
        f"Anyone who has spent time with {lead} knows the first answer is rarely the last.",
    )
    middles = (
        f"The interesting part is where {other} meets everyday practice: small choices, repeated, add up.",
        f"Seen up close, {other} is less a single idea than a set of habits that reinforce one another.",
        f"What changes the picture is {other}, which turns a neat theory into something people can use.",
    )
    details = (
        f"Start with the plain facts about {lead}, then ask which of them would change a decision you face.",
        f"The people closest to {other} describe it in concrete terms, and their examples are worth collecting.",
        f"A useful test is whether you could explain {lead} to a colleague in two minutes, without notes.",
    )
    closings = (
        "The honest summary is that the details matter, and that they can be learned.",
        "None of this is final, but it is a sound place to start.",
        "Read slowly, the evidence points one way: do less, and do it carefully.",
    )
    middle, detail, closing = rng.sample(middles, 2), rng.sample(details, 2), rng.sample(closings, 2)
    reference = "https://en.wikipedia.org/wiki/" + (lead[:1].upper() + lead[1:]).replace(" ", "_")
    output = "\n\n".join(
        [
            f"{rng.choice(openings)} {middle[0]} {detail[0]}",
            f"{middle[1]} {detail[1]} {closing[0]}",
            f"{closing[1]} (See {reference}.)",
        ]
    )
    return DemoAnswer(output, [reference], ["outline", "draft", "revise"], rng.uniform(0.3, 0.5))


_ANSWERS: dict[str, Callable[[str], DemoAnswer]] = {"beacon": beacon, "atlas": atlas, "quill": quill}


def answer(name: str, task: Any) -> DemoAnswer:
    """What demo agent `name` answers to `task` (no waiting)."""
    return _ANSWERS[name](task_text(task))


def demo_agent_url(name: str) -> str:
    """The endpoint URL to put on a demo listing: where the platform reaches this agent."""
    return settings.PACTUM_BASE_URL.rstrip("/") + reverse("demo-agent", kwargs={"name": name})


def _signed_by_a_listing(name: str, request: HttpRequest) -> bool:
    header = request.headers.get(SIGNATURE_HEADER, "")
    secrets = AgentListing.objects.filter(endpoint_url__endswith=f"/demo-agents/{name}/").values_list(
        "endpoint_secret", flat=True
    )
    return any(verify_signature(secret, header, request.body) for secret in secrets)


@csrf_exempt
def demo_agent(request: HttpRequest, name: str) -> HttpResponse:
    if not settings.DEMO_AGENTS_ENABLED or name not in DEMO_AGENTS:
        raise Http404("No such demo agent.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not _signed_by_a_listing(name, request):
        return JsonResponse({"error": f"missing or invalid {SIGNATURE_HEADER}"}, status=401)
    try:
        payload = json.loads(request.body)
        task = payload["task"]
    except (ValueError, TypeError, KeyError):
        return JsonResponse({"error": 'expected a JSON object with a "task"'}, status=400)
    reply = answer(name, task)
    time.sleep(reply.delay_s)
    return JsonResponse({"output": reply.output, "citations": reply.citations, "actions": reply.actions})


urlpatterns = [
    path("<slug:name>/", demo_agent, name="demo-agent"),
]
