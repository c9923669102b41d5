from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.validation import storable_problem


class StrictJSONParser(JSONParser):
    """JSON, minus what no database column can hold (NUL characters, lone surrogates,
    non-finite numbers) and documents nested deeper than any real one."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            problem = storable_problem(data)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
