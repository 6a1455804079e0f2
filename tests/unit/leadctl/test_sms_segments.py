"""SMS segments as carriers count them: GSM-7 160 in one, 153 a part (extension characters
take two septets); anything else makes the message UCS-2: 70 in one, 67 a part."""

from __future__ import annotations

import pytest

from leadctl.templates.segments import sms_segments


@pytest.mark.parametrize(
    ("body", "encoding", "units", "count"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension: two septets each
        ("{" * 81, "GSM-7", 162, 2),
        ("Grüße, à più @ £5", "GSM-7", 17, 1),
        ("à bientôt", "UCS-2", 9, 1),  # ô is not in GSM-7 (ò is)
        ("é" * 70 + "’", "UCS-2", 71, 2),  # a curly apostrophe: UCS-2
        ("ç" * 70, "UCS-2", 70, 1),  # ç (lower case) is not in GSM-7; Ç is
        ("x" * 67 + "😀", "UCS-2", 69, 1),  # beyond the BMP: two UTF-16 units
        ("x" * 134 + "😀", "UCS-2", 136, 3),
    ],
)
def test_segment_count(body: str, encoding: str, units: int, count: int) -> None:
    seg = sms_segments(body)
    assert (seg.encoding, seg.units, seg.count) == (encoding, units, count)


def test_the_characters_forcing_ucs2_are_named() -> None:
    assert sms_segments("Don’t miss it 😀").non_gsm == ("’", "😀")
