"""Values the database can store.

PostgreSQL refuses NUL characters in text and JSON, and no UTF-8 encoding
exists for lone surrogates (which JSON's \\ud800 escapes can produce). Such
values are refused as bad input with a clear message, before they reach a
query and turn into a server error.
"""

from __future__ import annotations

from typing import Any

from core.errors import ValidationFailed


def storable_problem(value: Any, path: str = "") -> str | None:
    """Where and why `value` cannot be stored, or None when it can."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path or 'value'}: contains a NUL (\\u0000) character."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path or 'value'}: contains an unpaired surrogate, which is not valid Unicode text."
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = storable_problem(key, f"{path}.{key}" if path else str(key)) or storable_problem(
                item, f"{path}.{key}" if path else str(key)
            )
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = storable_problem(item, f"{path}[{index}]")
            if problem:
                return problem
    return None


def ensure_storable(value: Any, field: str) -> None:
    problem = storable_problem(value, field)
    if problem:
        raise ValidationFailed(problem)
