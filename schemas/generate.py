"""Write or check the JSON Schema file of every contract: `python -m schemas.generate [--check]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.events import CONTRACTS

SCHEMA_DIR = Path(__file__).parent / "json"


def rendered() -> dict[Path, str]:
    return {
        SCHEMA_DIR / f"{name}.schema.json": json.dumps(
            model.json_schema(), indent=2, sort_keys=True
        )
        + "\n"
        for name, model in CONTRACTS.items()
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in rendered().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"JSON Schema out of date: {', '.join(stale)}; run `python -m schemas.generate`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
