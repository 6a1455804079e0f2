"""How many SMS segments a body takes (what the carrier bills and the customer's phone joins).

GSM-7 (the GSM 03.38 default alphabet): 160 septets in one segment, 153 per part of a
multipart message; the extension table's characters (`^{}\\[~]|€` and form feed) take two
septets. Any other character makes the whole message UCS-2: 70 UTF-16 code units in one
segment, 67 per part (a character beyond the BMP, most emoji, takes two)."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int
    #: characters that force UCS-2 (the first few), to replace when one segment is wanted
    non_gsm: tuple[str, ...] = ()

    @property
    def single_limit(self) -> int:
        return GSM7_SINGLE if self.encoding == "GSM-7" else UCS2_SINGLE

    @property
    def part_limit(self) -> int:
        return GSM7_PART if self.encoding == "GSM-7" else UCS2_PART


def sms_segments(body: str) -> Segments:
    """The encoding, length in its units and segment count of an SMS `body`."""
    if not body:
        return Segments("GSM-7", 0, 0)
    others = [c for c in body if c not in GSM7_BASIC and c not in GSM7_EXTENSION]
    if not others:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, part = GSM7_SINGLE, GSM7_PART
        encoding = "GSM-7"
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = UCS2_SINGLE, UCS2_PART
        encoding = "UCS-2"
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, count, tuple(dict.fromkeys(others))[:5])
