"""The one exception type for every upstream failure."""

import re


class ProviderError(Exception):
    """One exception type for every upstream failure.

    ``str(exc)`` is a short reason fit for users ("timed out before the first token",
    "answered HTTP 500"); ``detail`` may hold more for logs (the upstream's error body, with the
    key removed) and is never meant for the page.
    """

    def __init__(self, message: str, *, retryable: bool = False, detail: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.detail = detail

    def for_side(self, side: str) -> str:
        """``"Model B's endpoint timed out before the first token."``"""
        return f"Model {side.upper()}'s endpoint {self}."


_ERROR_TYPE = re.compile(r"^[a-z_]{1,40}$")


def error_type(error: object) -> str:
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) and _ERROR_TYPE.match(kind) else "unknown"
