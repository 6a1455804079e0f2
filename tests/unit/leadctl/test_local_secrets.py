"""`.env.local` (make run): the secrets a local run needs are generated once, each valid for the
setting that reads it, and never over a value set in the environment, `.env` or `.env.local`."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadctl.secrets.local import ensure_local_secrets, read_env_file
from services.common.settings import load_settings
from services.ingest.settings import IngestSettings

NAMES = {"ID_SECRET", "LINK_SIGNING_KEYS", "SECRETS_ENCRYPTION_KEYS", "DEMO_OPERATOR_PASSWORD"}


def test_generated_once_and_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(ensure_local_secrets(tmp_path, environ={})) == NAMES
    first = read_env_file(tmp_path / ".env.local")
    assert set(first) == NAMES and (tmp_path / ".env.local").stat().st_mode & 0o077 == 0
    assert ensure_local_secrets(tmp_path, environ={}) == []  # a second run keeps them
    assert read_env_file(tmp_path / ".env.local") == first
    monkeypatch.chdir(tmp_path)
    for name in ("ID_SECRET", "LINK_SIGNING_KEYS", "SECRETS_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name)
    settings = load_settings(IngestSettings)  # every generated value passes its validation
    assert settings.id_secret.get_secret_value() == first["ID_SECRET"]


def test_a_value_set_elsewhere_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ID_SECRET=mine-from-dot-env-0123456789abcdef0123\n")
    written = ensure_local_secrets(tmp_path, environ={"LINK_SIGNING_KEYS": "from-the-env"})
    assert set(written) == NAMES - {"ID_SECRET", "LINK_SIGNING_KEYS"}
    (tmp_path / ".env").write_text("ID_SECRET=\n")  # an empty line in .env sets nothing
    assert ensure_local_secrets(tmp_path, environ={"LINK_SIGNING_KEYS": "x"}) == ["ID_SECRET"]
