"""What the repositories raise when a conditional write or a read finds the data not as
asked. They are facts about storage, not answers to a request: the API maps them to the
contract's errors in one place (api/http.py)."""

from __future__ import annotations


class StoreError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Missing(StoreError):
    """The item a read or a write names does not exist (or no longer does)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class Taken(StoreError):
    """A uniqueness claim lost: the name or the single use is someone else's already."""


class Changed(StoreError):
    """The item changed between its read and this write: read again and retry."""
