"""Values the database can store.

PostgreSQL refuses NUL characters in text and JSON, and no UTF-8 encoding
exists for lone surrogates (which JSON's \\ud800 escapes can produce). Such
values are refused as bad input with a clear message, before they reach a
query and turn into a server error.
"""

from __future__ import annotations

from typing import Any

from core.errors import ValidationFailed

MAX_DEPTH = 64  # nesting deeper than any real document, shallow enough for every recursive reader


def storable_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """Where and why `value` cannot be stored, or None when it can."""
    if depth > MAX_DEPTH:
        return f"{path or 'value'}: nested more than {MAX_DEPTH} levels deep."
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"{path or 'value'}: not a finite number."
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
            where = f"{path}.{key}" if path else str(key)
            problem = storable_problem(key, where, depth + 1) or storable_problem(item, where, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = storable_problem(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
    return None


def ensure_storable(value: Any, field: str) -> None:
    try:
        problem = storable_problem(value, field)
    except RecursionError:
        problem = f"{field}: nested too deeply."
    if problem:
        raise ValidationFailed(problem)
