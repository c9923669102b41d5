"""Small text tools shared by the heuristic and jury judges."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

WORD_RE = re.compile(r"\w+(?:['\u2019-]\w+)*", re.UNICODE)
URL_RE = re.compile(r"https?://[^\s<>()\[\]\"']+", re.IGNORECASE)
# [1], [12], [1, 3], [^2]
MARKER_RE = re.compile(r"\[\^?\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\]")
# (Smith, 2020), (Smith et al., 2019), (Smith 2020)
AUTHOR_YEAR_RE = re.compile(r"\([A-Z][A-Za-z'\u2019-]+(?: et al\.)?,? (?:19|20)\d{2}[a-z]?\)")
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "must",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "shall",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "also",
        "any",
        "each",
        "more",
        "most",
        "other",
        "some",
        "such",
        "very",
        "just",
        "over",
        "only",
        "same",
        "own",
        "both",
        "few",
        "all",
    ]
)

MAX_TOKENS = 20_000  # judges read at most this many tokens of an output (documented in their rationale)


def tokens(text: str, limit: int = MAX_TOKENS) -> list[str]:
    out = []
    for match in WORD_RE.finditer(text.lower()):
        out.append(match.group())
        if len(out) >= limit:
            break
    return out


def content_words(text: str, limit: int = MAX_TOKENS) -> list[str]:
    return [t for t in tokens(text, limit) if t not in STOPWORDS and not t.isdigit() and len(t) > 2]


def stem(word: str) -> str:
    """A crude, language-agnostic stem: enough to match 'sources' with 'source' and 'cited' with 'cites'."""
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT_RE.split(text) if s.strip()]


def domain_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def domain_allowed(host: str, allowed: list[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allowed)
