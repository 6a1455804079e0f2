"""Signed tokens: what a valid one names, and that nothing else is valid (altered, truncated,
another key, another purpose); keys rotate (the first signs, every listed one verifies)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import Channel
from services.common.domain.signed_links import (
    OPERATOR_SESSION,
    UNSUBSCRIBE,
    Signer,
    contact_digest,
    parse_signing_keys,
    read_unsubscribe_token,
    unsubscribe_token,
)

OLD, NEW = b"o" * 32, b"n" * 32
TENANT, LEAD = uuid.uuid4(), uuid.uuid4()


def token(signer: Signer, contact: str = "Samantha.Quintero@Example.com ") -> str:
    return unsubscribe_token(
        signer, tenant_id=TENANT, lead_id=LEAD, channel=Channel.EMAIL, contact=contact
    )


def test_a_link_names_tenant_lead_channel_and_address_without_showing_them() -> None:
    signer = Signer([NEW], UNSUBSCRIBE)
    text = token(signer)
    claim = read_unsubscribe_token(signer, text)
    assert claim is not None
    assert (claim.tenant_id, claim.lead_id, claim.channel) == (TENANT, LEAD, Channel.EMAIL)
    assert claim.matches("samantha.quintero@example.com")
    assert not claim.matches("eve@example.com")
    # a name long enough that random base64 cannot spell it by chance ("sam" did, 1 run in ~500)
    assert "samantha" not in text.lower() and "quintero" not in text.lower()
    assert str(TENANT) not in text and TENANT.hex not in text
    assert len(text) < 100


def test_keys_rotate_the_first_signs_and_every_listed_one_verifies() -> None:
    old_link = token(Signer([OLD], UNSUBSCRIBE))
    rotating = Signer([NEW, OLD], UNSUBSCRIBE)
    assert read_unsubscribe_token(rotating, old_link) is not None
    assert read_unsubscribe_token(Signer([NEW], UNSUBSCRIBE), token(rotating)) is not None
    assert read_unsubscribe_token(Signer([NEW], UNSUBSCRIBE), old_link) is None  # retired


@given(st.integers(min_value=0, max_value=77), st.sampled_from("AQgw-_0z8"))
def test_any_changed_character_is_refused(position: int, char: str) -> None:
    signer = Signer([NEW], UNSUBSCRIBE)
    text = token(signer)
    changed = text[:position] + char + text[position + 1 :]
    if changed != text:  # even in the last character's spare bits: one spelling per token
        assert read_unsubscribe_token(signer, changed) is None


def test_the_last_characters_spare_bits_are_no_second_spelling() -> None:
    signer = Signer([NEW], UNSUBSCRIBE)
    text = token(signer)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    twin = alphabet[last ^ 0b11] if last & 0b11 == 0 else alphabet[last & ~0b11]
    assert read_unsubscribe_token(signer, text[:-1] + twin) is None


@pytest.mark.parametrize(
    "bad", ["", "x", "=" * 10, "%00", "é" * 60, "A" * 300, "A" * 78, "not base64 !!"]
)
def test_garbage_is_refused(bad: str) -> None:
    assert read_unsubscribe_token(Signer([NEW], UNSUBSCRIBE), bad) is None


def test_a_token_of_another_purpose_or_deployment_is_refused() -> None:
    session_signed = token(Signer([NEW], OPERATOR_SESSION))
    assert read_unsubscribe_token(Signer([NEW], UNSUBSCRIBE), session_signed) is None
    assert (
        read_unsubscribe_token(Signer([NEW], UNSUBSCRIBE), token(Signer([OLD], UNSUBSCRIBE)))
        is None
    )


def test_signing_keys_are_checked_and_never_shown() -> None:
    with pytest.raises(ValueError, match="key 2 is shorter"):
        parse_signing_keys("a" * 32 + ", short")
    with pytest.raises(ValueError, match="at least one"):
        parse_signing_keys(" , ")
    assert parse_signing_keys(" " + "a" * 32 + " ,") == (b"a" * 32,)
    assert "nnnn" not in repr(Signer([NEW], UNSUBSCRIBE))
    assert contact_digest(" A@B.co") == contact_digest("a@b.co")
