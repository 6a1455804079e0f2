"""Secrets at rest: what is stored is a Fernet token, never the value; keys rotate; a token of
an unknown key raises an error that names the variable, not the value."""

from __future__ import annotations

import pytest

from services.common.secret_box import SecretBox, SecretUndecryptable, new_key, parse_keys


def test_encrypted_values_decrypt_and_never_contain_the_value() -> None:
    box = SecretBox([new_key()])
    token = box.encrypt("sm_live_key_123")
    assert "sm_live_key_123" not in token and token.startswith("gAAAAA")
    assert box.decrypt(token) == "sm_live_key_123"
    assert box.encrypt("same") != box.encrypt("same")  # random IV: equal values do not show
    assert "sm_live" not in repr(box)


def test_rotation_re_encrypts_under_the_first_key() -> None:
    old, new = new_key(), new_key()
    stored = SecretBox([old]).encrypt("whsec_abc")
    both = SecretBox([new, old])
    assert both.decrypt(stored) == "whsec_abc"
    rotated = both.rotate(stored)
    assert SecretBox([new]).decrypt(rotated) == "whsec_abc"
    with pytest.raises(SecretUndecryptable, match="SECRETS_ENCRYPTION_KEYS") as err:
        SecretBox([new]).decrypt(stored)
    assert "whsec" not in str(err.value)
    with pytest.raises(SecretUndecryptable):
        SecretBox([new]).decrypt("plain-text-secret")


def test_keys_are_checked_by_position() -> None:
    with pytest.raises(ValueError, match="key 2 is not a Fernet key"):
        parse_keys(new_key() + ",nope")
    with pytest.raises(ValueError, match="at least one"):
        parse_keys("")
