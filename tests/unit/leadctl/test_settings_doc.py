"""README.md stays true to the code: its settings tables are what `.env.example` and the
settings classes say today, and every setting any service reads is in them."""

from __future__ import annotations

from leadctl.settings_doc import BEGIN, END, ROOT, generate, readers


def test_readme_settings_tables_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    current = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == generate().strip(), (
        "README settings tables are stale: run `uv run python -m leadctl.settings_doc --write`"
    )


def test_every_setting_a_service_reads_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in readers() if f"`{name}`" not in readme]
    assert not missing, missing
