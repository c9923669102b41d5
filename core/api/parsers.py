from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.validation import storable_problem


class StrictJSONParser(JSONParser):
    """JSON, minus what no database column can hold (NUL characters, lone surrogates)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        problem = storable_problem(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
