"""The deployment secrets every test runs with (tests/conftest.py puts them in the environment
of every test, so processes a test starts inherit them): fixed values, so a test can compute
what the services compute (lead ids, unsubscribe links) and read what they store."""

from __future__ import annotations

from schemas.base import LeadIdKey
from services.common.domain.signed_links import UNSUBSCRIBE, Signer
from services.common.secret_box import SecretBox

ID_SECRET = "test-id-secret-0123456789abcdef0123456789abcdef"
LINK_SIGNING_KEY = "test-link-key-0123456789abcdef0123456789abcdef"
ENCRYPTION_KEY = "wD0nD8m9yY1T9sQHjC2mG2fGQ0mIJV1l3Zb7bJv8ZkE="
ENV = {
    "ID_SECRET": ID_SECRET,
    "LINK_SIGNING_KEYS": LINK_SIGNING_KEY,
    "SECRETS_ENCRYPTION_KEYS": ENCRYPTION_KEY,
}
LEAD_IDS = LeadIdKey(ID_SECRET.encode())
BOX = SecretBox([ENCRYPTION_KEY])
UNSUBSCRIBE_SIGNER = Signer([LINK_SIGNING_KEY.encode()], UNSUBSCRIBE)
