"""Why a record is rejected: the one type that validation, mapping, delivery and rejects share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Why a record was rejected; `code` is what the summary counts, `detail` holds no PII."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"
