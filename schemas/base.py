"""Shared building blocks of the event contracts: the base model, enums and id helpers."""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict

# Fixed namespace of the deterministic ids derived from ids that are secret already (command
# ids of a lead id, DESIGN §3). Never change it: every replay's command ids depend on it. Lead
# ids are NOT derived under it: they are keyed (`LeadIdKey`), so nobody outside can compute one.
ID_NAMESPACE = uuid.UUID("6b7c1f0e-3d57-5b2a-9c43-0f1d2e3a4b5c")


def _require_tz(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone offset")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_require_tz)]


M = TypeVar("M", bound=BaseModel)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class LeadState(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    ENGAGED = "engaged"
    QUALIFIED = "qualified"
    APPOINTMENT_SET = "appointment_set"
    COMPLETED = "completed"
    LOST = "lost"


def trusted(cls: type[M], /, **values: Any) -> M:
    """An instance of the contract `cls` from values that are already valid (taken from a
    validated domain object): no validation, like `model_construct`, at a fraction of its
    cost. Fields not given take their defaults; the serialised field order is the model's."""
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _Spec(cls)
    data = spec.template.copy()
    data.update(values)  # keys of the template keep the model's order
    given = values.keys()
    if len(data) != spec.size or not given >= spec.required:
        missing = sorted(spec.required - given)
        if missing:
            raise TypeError(f"{cls.__name__}.{missing[0]} is required")
        raise TypeError(f"{cls.__name__} has no field {sorted(given - spec.template.keys())}")
    if spec.factories and not given >= spec.with_factory:
        for name, factory in spec.factories:
            if name not in values:
                data[name] = factory()
    model = _new(cls)
    _set(model, "__dict__", data)
    _set(model, "__pydantic_fields_set__", set(given))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


_new = object.__new__
_set = object.__setattr__


class _Spec:
    """Per contract: every field in order with its static default (None for required ones and
    those with a factory, filled per instance)."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.template: dict[str, Any] = {}
        required: list[str] = []
        self.factories: tuple[tuple[str, Any], ...] = ()
        for name, field in cls.model_fields.items():
            self.template[name] = None
            if field.is_required():
                required.append(name)
            elif field.default_factory is not None:
                self.factories += ((name, field.default_factory),)
            else:
                self.template[name] = field.get_default()
        self.required = frozenset(required)
        self.with_factory = frozenset(name for name, _ in self.factories)
        self.size = len(self.template)


_SPECS: dict[type[BaseModel], _Spec] = {}


class Event(BaseModel):
    """Base of every record on a topic: JSON with a `schema_version`, tolerant of new fields."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    #: Topic the model travels on; set by each contract.
    topic: ClassVar[str] = ""

    def to_bytes(self) -> bytes:
        """Byte for byte what `model_dump_json` writes (property-tested for every contract), at
        a fraction of its cost: orjson over the fields in the model's order, a nested contract
        as its own fields. Every order event, command, lead change and outcome is serialised
        once (bench/sequencer/domain.py: pydantic's writer was a tenth of a sequencer event)."""
        try:
            return orjson.dumps(self.__dict__, option=_OPTIONS, default=fields_of)
        except orjson.JSONEncodeError:  # what orjson will not write (an integer beyond 64
            return self.model_dump_json().encode()  # bits, a dataclass): pydantic's own

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Self:
        return cls.model_validate_json(raw)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema(mode="serialization")


#: UTC as "Z" (pydantic's form); dataclasses to `default`, which leaves them to pydantic (orjson
#: would drop their private fields, pydantic keeps them).
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS


def fields_of(value: Any) -> dict[str, Any]:
    """A nested contract as its fields (orjson's `default` in `Event.to_bytes`); anything
    else is no contract, and `to_bytes` leaves it to pydantic."""
    if isinstance(value, Event):
        return value.__dict__
    raise TypeError(f"{type(value).__name__} is not a contract")


_NAMESPACE_BYTES = ID_NAMESPACE.bytes
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)  # version and variant bits
_V5_SET = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant


def id_for(name: str) -> uuid.UUID:
    """`uuid.uuid5(ID_NAMESPACE, name)`, equal to it for every name (tested), at ~40 % of its
    cost: one id per event on the ingest and sequencer hot paths."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    value = _new(uuid.UUID)
    _set(value, "int", (int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)
    _set(value, "is_safe", uuid.SafeUUID.unknown)
    return value


@functools.lru_cache(maxsize=4096)
def tenant_text(tenant_id: uuid.UUID) -> str:
    """`str(tenant_id)`, remembered: every order event's key, lead id and metric label start
    from it, and `UUID.__str__` is Python code (tenants are a few hundred)."""
    return str(tenant_id)


#: Shortest accepted lead-id secret (bytes): HMAC-SHA256 wants a key of at least its output.
MIN_ID_SECRET_BYTES = 32
_V8_SET = (8 << 76) | (0x8000 << 48)  # version 8 (RFC 9562, custom), RFC 4122 variant


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, with the key's inner and outer pads hashed once:
    each message then costs two hash copies instead of setting up a keyed HMAC, half of
    `hmac.digest`'s cost (tested equal to `hmac`). A lead id and a webhook signature each."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, *parts: bytes) -> bytes:
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class LeadIdKey:
    """The deployment secret (`ID_SECRET`) lead ids are derived under: the first 122 bits of
    HMAC-SHA256(secret, name) as a version-8 UUID. The same order gives the same id on every
    retry, poll and replay; without the secret nobody can compute one (a lead id is the chat
    link, and orders are numbered sequentially). The secret never appears in a repr."""

    __slots__ = ("_mac",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_ID_SECRET_BYTES:
            raise ValueError(f"the lead-id secret must be at least {MIN_ID_SECRET_BYTES} bytes")
        self._mac = HmacSha256(secret)

    def derive(self, name: str) -> uuid.UUID:
        digest = self._mac.digest(name.encode())
        value = _new(uuid.UUID)
        _set(value, "int", (int.from_bytes(digest[:16]) & _V5_CLEAR) | _V8_SET)
        _set(value, "is_safe", uuid.SafeUUID.unknown)
        return value

    def __repr__(self) -> str:
        return "LeadIdKey(<secret>)"


def lead_id_for_order(key: LeadIdKey, tenant_id: uuid.UUID, order_id: str) -> uuid.UUID:
    """Lead id of a Shopmonkey order: the same on every webhook retry, poll and replay."""
    return key.derive(f"{tenant_text(tenant_id)}:shopmonkey-order:{order_id}")


def lead_id_for_form(key: LeadIdKey, tenant_id: uuid.UUID, submission_id: str) -> uuid.UUID:
    """Lead id of a website form submission, idempotent on the client's submission id."""
    return key.derive(f"{tenant_id}:website-form:{submission_id}")


def command_id_for(
    lead_id: uuid.UUID, step_index: int, channel: Channel, campaign: str | None = None
) -> uuid.UUID:
    """Touch-point command id (DESIGN §3): a replay reproduces it exactly. A campaign's step
    has the campaign run in it (None: the estimate nurture plan, ids as they always were), so
    a re-planned run (an appointment moved) gets new ids and the old ones stay spent."""
    if campaign is None:
        return id_for(f"{lead_id}:{step_index}:{channel.value}")
    return id_for(f"{lead_id}:{campaign}:{step_index}:{channel.value}")
