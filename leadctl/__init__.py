"""`leadctl`: the one operator entry point (see `leadctl.main`), one package per command."""

from pathlib import Path

#: The repository root (infra scripts, alembic.ini, migrations, README.md, .env.example).
ROOT = Path(__file__).resolve().parent.parent
