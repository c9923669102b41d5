"""Domain errors: raised by services, mapped to HTTP by `core.api.errors`."""


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    status_code = 400
    code = "invalid"


class NotAllowed(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    """The request is valid but the object's current state refuses it."""

    status_code = 409
    code = "conflict"
