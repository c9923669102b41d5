"""Display helpers for trust records: interval bars, the score history plot,
freshness, benchmark fit badges.

Presentation only: they draw what trust.selectors returned and never query.
Every drawing carries its text equivalent (an SVG title or an aria-label), and
the templates show the figures as text beside it as well.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from trust.models import TrustPolicy
from trust.scoring import benchmark_fit

register = template.Library()

DASH = "\u2013"  # between the bounds of an interval


def pct(value: float | None, digits: int = 1) -> str:
    """A share 0..1 as a percentage, without a trailing ".0" ("75%", "77.8%")."""
    if value is None:
        return "—"
    text = f"{value * 100:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def share(value: float | None) -> str:
    return pct(value)


@register.filter
def interval_text(compliance: dict[str, float] | None) -> str:
    """ "82% (95% interval 70%-90%)", with an en dash, for a {mean, lower, upper} dict."""
    if not compliance:
        return "—"
    return f"{pct(compliance['mean'])} (95% interval {pct(compliance['lower'])}{DASH}{pct(compliance['upper'])})"


@register.simple_tag
def interval_bar(compliance: dict[str, float], width: int = 120, height: int = 14, label: str = "") -> SafeString:
    """A 0..100% track with the 95% interval as a band and the mean as a tick."""
    lower, mean, upper = (max(0.0, min(1.0, float(compliance[k]))) for k in ("lower", "mean", "upper"))
    text = f"{label + ': ' if label else ''}{interval_text(compliance)}"
    x0, x1, xm = lower * width, upper * width, mean * width
    mid = height / 2
    return format_html(
        '<svg class="interval-bar" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{text}">'
        "<title>{text}</title>"
        '<rect class="ib-track" x="0" y="{ty}" width="{w}" height="{th}" rx="{tr}"/>'
        '<rect class="ib-band" x="{x0}" y="{by}" width="{bw}" height="{bh}" rx="2"/>'
        '<line class="ib-mean" x1="{xm}" x2="{xm}" y1="0" y2="{h}"/>'
        "</svg>",
        w=width,
        h=height,
        text=text,
        ty=round(mid - 2, 1),
        th=4,
        tr=2,
        x0=round(x0, 1),
        by=2,
        bw=round(max(x1 - x0, 1.5), 1),
        bh=height - 4,
        xm=round(xm, 1),
    )


@register.filter
def verified_ago(freshness_seconds: int | None) -> str:
    """ "verified 3 days ago" from a trust summary's freshness_seconds."""
    if freshness_seconds is None:
        return "not verified yet"
    seconds = int(freshness_seconds)
    if seconds < 60:
        return "verified just now"
    for unit, size in (("minute", 60), ("hour", 3600), ("day", 86_400)):
        count = seconds // size
        nxt = {"minute": 3600, "hour": 86_400, "day": 86_400 * 60}[unit]
        if seconds < nxt:
            return f"verified {count} {unit}{'s' if count != 1 else ''} ago"
    months = round(seconds / (86_400 * 30.4))
    if months < 24:
        return f"verified {months} months ago"
    return f"verified {seconds / (86_400 * 365.25):.1f} years ago"


@register.filter
def iso_date(value: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


_FIT_BADGES = {"high": "badge-ok", "medium": "badge-warn", "low": "badge-bad"}


@register.filter
def fit_badge(level: str) -> str:
    return _FIT_BADGES.get(level, "")


@register.simple_tag
def top_claim_fit(listing: Any, category: str = "") -> dict[str, Any] | None:
    """The listing's highest benchmark claim with its fit for the category browsed, from the
    prefetched claims (same rule as the trust page: trust.scoring.benchmark_fit)."""
    claims = list(listing.benchmark_claims.all())
    if not claims:
        return None
    claim = max(claims, key=lambda c: (c.score, c.measured_on, c.pk))
    fit = benchmark_fit(
        claim.categories or [],
        claim.measured_on,
        category,
        listing_categories=listing.categories or [],
        today=timezone.localdate(),
        half_life_days=settings.BENCHMARK_FIT_HALF_LIFE_DAYS,
    )
    return {"claim": claim, "level": fit.level, "reason": fit.reason}


@register.filter
def per_100(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}".rstrip("0").rstrip(".")


# --- score history plot -------------------------------------------------------------------------

PLOT_W, PLOT_H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 46, 14, 12, 34


def _day(day: datetime.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _x_scale(days: list[datetime.date]) -> Any:
    first, last = days[0], days[-1]
    span = (last - first).days
    inner = PLOT_W - PAD_L - PAD_R
    if span == 0:
        return lambda d: round(PAD_L + inner / 2, 1)
    return lambda d: round(PAD_L + inner * (d - first).days / span, 1)


def _y(value: float) -> float:
    return round(PAD_T + (PLOT_H - PAD_T - PAD_B) * (1.0 - max(0.0, min(1.0, value))), 1)


def _points(pairs: list[tuple[float, float]]) -> str:
    return " ".join(f"{x},{y}" for x, y in pairs)


@register.simple_tag
def history_plot(history: list[dict[str, Any]], name: str = "") -> SafeString:
    """The agent's daily compliance as an SVG: the 95% band, the mean line, labelled axes.

    Empty history draws nothing (the template says so in words); one point draws a dot with
    its interval as an error bar.
    """
    if not history:
        return SafeString("")
    days = [datetime.date.fromisoformat(p["day"]) for p in history]
    x = _x_scale(days)
    first, last = history[0], history[-1]
    title = f"Pact compliance history{' of ' + name if name else ''}"
    desc = (
        f"{len(history)} daily point{'s' if len(history) != 1 else ''} from {_day(days[0])} to {_day(days[-1])}. "
        f"First: {interval_text(first)}. Latest: {interval_text(last)}."
    )
    parts: list[str] = []
    # Horizontal grid and y labels.
    # The quarter ticks are "minor": the stylesheet hides their labels on narrow screens, where the
    # labels are drawn larger (in viewBox units) to stay legible.
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts.append(
            format_html(
                '<line class="hp-grid" x1="{}" x2="{}" y1="{y}" y2="{y}"/>'
                '<text class="{cls}" x="{}" y="{ty}" text-anchor="end">{}</text>',
                PAD_L,
                PLOT_W - PAD_R,
                PAD_L - 6,
                pct(tick, 0),
                y=y,
                ty=round(y + 4, 1),
                cls="hp-label hp-minor" if tick in (0.25, 0.75) else "hp-label",
            )
        )
    # X labels: first and last day, and the middle one when there is room.
    label_days = sorted({days[0], days[-1]} | ({days[len(days) // 2]} if len(days) > 2 else set()))
    if len(label_days) == 3 and min(x(label_days[1]) - x(label_days[0]), x(label_days[2]) - x(label_days[1])) < 80:
        label_days = [label_days[0], label_days[2]]
    for i, day in enumerate(label_days):
        anchor = "middle" if len(label_days) == 1 else ("start" if i == 0 else "end" if day == days[-1] else "middle")
        parts.append(
            format_html(
                '<text class="{}" x="{}" y="{}" text-anchor="{}">{}</text>',
                "hp-label hp-minor" if anchor == "middle" and len(label_days) > 1 else "hp-label",
                x(day),
                PLOT_H - PAD_B + 18,
                anchor,
                _day(day),
            )
        )
    parts.append(
        format_html(
            '<line class="hp-axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/>'
            '<line class="hp-axis" x1="{l}" x2="{l}" y1="{t}" y2="{b}"/>',
            l=PAD_L,
            r=PLOT_W - PAD_R,
            b=_y(0.0),
            t=PAD_T,
        )
    )
    if len(history) == 1:
        p, px = history[0], x(days[0])
        parts.append(
            format_html(
                '<line class="hp-errorbar" x1="{x}" x2="{x}" y1="{a}" y2="{b}"/>',
                x=px,
                a=_y(p["upper"]),
                b=_y(p["lower"]),
            )
        )
    else:
        upper = [(x(d), _y(p["upper"])) for d, p in zip(days, history, strict=True)]
        lower = [(x(d), _y(p["lower"])) for d, p in zip(days, history, strict=True)]
        mean = [(x(d), _y(p["mean"])) for d, p in zip(days, history, strict=True)]
        parts.append(format_html('<polygon class="hp-band" points="{}"/>', _points(upper + lower[::-1])))
        parts.append(format_html('<polyline class="hp-mean" points="{}"/>', _points(mean)))
    dots = format_html_join(
        "",
        '<circle class="hp-dot" cx="{}" cy="{}" r="{}"><title>{}: {}</title></circle>',
        (
            (x(d), _y(p["mean"]), 4 if len(history) == 1 else 2.5, _day(d), interval_text(p))
            for d, p in zip(days, history, strict=True)
        ),
    )
    return format_html(
        '<svg class="history-plot" viewBox="0 0 {w} {h}" role="img" aria-labelledby="hp-title hp-desc">'
        '<title id="hp-title">{title}</title><desc id="hp-desc">{desc}</desc>{body}{dots}</svg>',
        w=PLOT_W,
        h=PLOT_H,
        title=title,
        desc=desc,
        body=format_html_join("", "{}", ((part,) for part in parts)),
        dots=dots,
    )


@register.filter
def as_share(disputes: dict[str, Any] | None) -> dict[str, float] | None:
    """A disputes_per_100 dict as shares 0..1 ({mean, lower, upper}) for interval_bar."""
    if not disputes:
        return None
    return {"mean": disputes["rate"] / 100.0, "lower": disputes["lower"] / 100.0, "upper": disputes["upper"] / 100.0}


@register.filter
def metric_value(value: float | None) -> str:
    """A policy metric's figure as the policy states its threshold (shares 0..1, days, per 100)."""
    if value is None:
        return "—"
    return f"{value:.3f}".rstrip("0").rstrip(".")


@register.filter
def metric_label(metric: str) -> str:
    return dict(TrustPolicy.Metric.choices).get(metric, metric.replace("_", " "))
