"""`{% dispute_panel %}`: the dispute panel of the engagement page (status, both sides'
statements and files, the ruling, and the forms this user may use)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("web/_dispute_panel.html", takes_context=True)
def dispute_panel(context: Any) -> dict[str, Any]:
    from web.dispute_views import dispute_panel_context

    return {
        **dispute_panel_context(context),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }
