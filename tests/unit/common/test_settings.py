"""Settings: every seed variable is read; bad values stop the service naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.common.settings import CommonSettings, load_settings
from services.ingest.settings import BackfillSettings, IngestSettings
from services.outbound.settings import OutboundSettings
from tests.support.deployment_secrets import ENV as SECRETS

SEED_VARIABLES = {
    "DATABASE_URL": "postgresql://u:p@db:5432/x",
    "SHOPMONKEY_API_KEY": "sm-secret-key",
    "SHOPMONKEY_COMPANY_ID": "co_1",
    "SENDGRID_API_KEY": "SG.super-secret",
    "SENDGRID_FROM_EMAIL": "noreply@shop.example",
    "TWILIO_ACCOUNT_SID": "AC123",
    "TWILIO_AUTH_TOKEN": "twilio-secret-token",
    "TWILIO_PHONE_NUMBER": "+12025550111",
    "TENANT_ID": "6f1c3a52-8e0b-4c8e-9d0a-111111111111",
    "LEAD_EMAIL_WHITELIST": '"sam@example.com, Test@test.com"',
    "DEMO_MODE": "true",
    "POLL_INTERVAL_SECONDS": "15",
    "WEBHOOK_PORT": "3100",
    "LOG_LEVEL": "DEBUG",
    "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
    "KAFKA_PARTITIONS": "6",
    "SHOPMONKEY_API_BASE_URL": "http://127.0.0.1:9999/v3",
    "SENDGRID_API_BASE_URL": "http://127.0.0.1:9998",
    "TWILIO_API_BASE_URL": "http://127.0.0.1:9997",
    "CHAT_BASE_URL": "https://chat.example.com/",
}


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SEED_VARIABLES.items():
        monkeypatch.setenv(key, value)


@pytest.mark.usefixtures("seed_env")
def test_every_seed_variable_is_read() -> None:
    ingest = load_settings(IngestSettings)
    outbound = load_settings(OutboundSettings)
    assert ingest.database_url == "postgresql://u:p@db:5432/x"
    assert ingest.shopmonkey_api_key is not None
    assert ingest.shopmonkey_api_key.get_secret_value() == "sm-secret-key"
    assert ingest.shopmonkey_company_id == "co_1"
    assert ingest.poll_interval_seconds == 15
    assert ingest.webhook_port == 3100
    assert ingest.log_level == "debug"
    assert ingest.demo_mode is True
    assert str(ingest.tenant_id) == SEED_VARIABLES["TENANT_ID"]
    assert ingest.kafka_bootstrap_servers == "broker:9092"
    assert ingest.kafka_partitions == 6
    assert ingest.shopmonkey_api_base_url == "http://127.0.0.1:9999/v3"
    assert ingest.chat_base_url == "https://chat.example.com"
    assert ingest.whitelist == frozenset({"sam@example.com", "test@test.com"})
    assert outbound.sendgrid_api_key is not None
    assert outbound.sendgrid_api_key.get_secret_value() == "SG.super-secret"
    assert outbound.sendgrid_from_email == "noreply@shop.example"
    assert outbound.twilio_account_sid == "AC123"
    assert outbound.twilio_auth_token is not None
    assert outbound.twilio_phone_number == "+12025550111"
    assert outbound.sendgrid_api_base_url == "http://127.0.0.1:9998"
    assert outbound.twilio_api_base_url == "http://127.0.0.1:9997"


@pytest.mark.usefixtures("seed_env")
def test_secrets_never_appear_in_repr_or_str() -> None:
    ingest = load_settings(IngestSettings)
    text = repr(load_settings(OutboundSettings)) + str(ingest) + repr(ingest)
    text += repr(ingest.lead_ids) + repr(ingest.secret_box) + repr(ingest.unsubscribe_signer)
    for secret in ("SG.super-secret", "twilio-secret-token", "sm-secret-key", *SECRETS.values()):
        assert secret not in text


@pytest.mark.parametrize(
    ("cls", "variable"),
    [
        (IngestSettings, "ID_SECRET"),
        (IngestSettings, "LINK_SIGNING_KEYS"),
        (IngestSettings, "SECRETS_ENCRYPTION_KEYS"),
        (BackfillSettings, "ID_SECRET"),
        (BackfillSettings, "SECRETS_ENCRYPTION_KEYS"),
        (OutboundSettings, "LINK_SIGNING_KEYS"),
    ],
)
def test_a_service_without_its_deployment_secrets_refuses_to_start_naming_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cls: type, variable: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env / .env.local here
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigError, match=variable):
        load_settings(cls)
    monkeypatch.setenv(variable, "")  # `ID_SECRET=` in a .env is no secret either
    with pytest.raises(ConfigError, match=variable):
        load_settings(cls)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ID_SECRET", "too-short", "at least 32 bytes"),
        ("LINK_SIGNING_KEYS", SECRETS["LINK_SIGNING_KEYS"] + ",short", "key 2 is shorter"),
        ("SECRETS_ENCRYPTION_KEYS", "not-a-fernet-key", "key 1 is not a Fernet key"),
        ("ADMIN_PORT", "3000", "ADMIN_PORT must differ from WEBHOOK_PORT"),
        ("UNSUBSCRIBE_SCOPE", "everyone", "UNSUBSCRIBE_SCOPE"),
    ],
)
def test_bad_deployment_secrets_fail_at_start_naming_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    assert variable in str(err.value) or "ADMIN_PORT" in str(err.value)
    assert says in str(err.value)
    assert value not in str(err.value) or variable in ("ADMIN_PORT", "UNSUBSCRIBE_SCOPE")


def test_env_local_is_read_after_env_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ID_SECRET")
    (tmp_path / ".env").write_text("ID_SECRET=" + "e" * 40 + "\nLOG_LEVEL=debug\n")
    (tmp_path / ".env.local").write_text("ID_SECRET=" + "l" * 40 + "\n")
    assert load_settings(IngestSettings).id_secret.get_secret_value() == "l" * 40
    assert load_settings(IngestSettings).log_level == "debug"
    monkeypatch.setenv("ID_SECRET", "v" * 40)
    assert load_settings(IngestSettings).id_secret.get_secret_value() == "v" * 40


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KAFKA_PARTITIONS", "twelve"),
        ("KAFKA_PARTITIONS", "0"),
        ("WEBHOOK_PORT", "70000"),
        ("POLL_INTERVAL_SECONDS", "-5"),
        ("DATABASE_URL", "mysql://x/y"),
        ("LOG_LEVEL", "loud"),
        ("DEMO_MODE", "perhaps"),
        ("TENANT_ID", "not-a-uuid"),
        ("CHAT_BASE_URL", "chat.example.com"),
    ],
)
def test_bad_value_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(IngestSettings)
    assert variable in str(err.value)
    assert value not in ("SG.super-secret",)  # config errors never echo secrets


def test_defaults_are_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # no .env here
    for key in SEED_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(CommonSettings)
    assert settings.whitelist == frozenset()  # empty whitelist: nothing is ever sent
    assert settings.demo_mode is False
    assert settings.kafka_partitions == 12
    outbound = load_settings(OutboundSettings)
    assert outbound.sendgrid_api_key is None
    assert outbound.twilio_auth_token is None


def test_sqlalchemy_url_names_the_psycopg_driver() -> None:
    s = CommonSettings(database_url="postgresql://a:b@h:1/d")
    assert s.sqlalchemy_url == "postgresql+psycopg://a:b@h:1/d"
    assert s.libpq_url == "postgresql://a:b@h:1/d"


def test_topic_prefix_applies_to_every_topic() -> None:
    topics = CommonSettings(kafka_topic_prefix="staging.").topics
    assert topics.order_events == "staging.leads.order-events.v1"
    assert all(t.startswith("staging.") for t in topics.with_dlqs())
    assert len(topics.with_dlqs()) == 10
