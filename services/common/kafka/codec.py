"""Decode a record value into its contract, or raise `ContractError` (→ DLQ) with the reason."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from schemas.base import Event
from services.common.errors import ContractError

E = TypeVar("E", bound=Event)


def decode(model: type[E], raw: bytes | str | None) -> E:
    if raw is None:
        raise ContractError(f"{model.__name__}: empty record value")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ContractError(
            f"{model.__name__}: {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None
