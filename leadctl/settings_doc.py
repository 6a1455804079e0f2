"""The README's settings tables, generated from `.env.example` (its sections, values and
comments) and the settings classes (which service reads each variable), so the two never
drift: a unit test fails when README.md is stale.

    uv run python -m leadctl.settings_doc          # print the tables
    uv run python -m leadctl.settings_doc --write  # refresh README.md between the markers
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from leadctl import ROOT

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
SECTION = re.compile(r"^# ── (?P<title>.+?) ─")
ASSIGN = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)


def readers() -> dict[str, list[str]]:
    """Variable → the services whose settings read it."""
    from services.common.settings import CommonSettings
    from services.ingest.settings import IngestSettings
    from services.outbound.settings import OutboundSettings
    from services.sequencer.settings import SequencerSettings

    common = set(CommonSettings.model_fields)
    out: dict[str, list[str]] = {}
    for svc, cls in (
        ("ingest", IngestSettings),
        ("sequencer", SequencerSettings),
        ("outbound", OutboundSettings),
    ):
        for name in cls.model_fields:
            out.setdefault(name.upper(), []).append("all" if name in common else svc)
    return {k: sorted(set(v)) for k, v in out.items()}


def parse(text: str) -> list[Section]:
    sections: list[Section] = [Section("General")]
    comments: list[str] = []
    for line in text.splitlines():
        if m := SECTION.match(line):
            sections.append(Section(m["title"].strip()))
            comments = []
        elif line.startswith("#"):
            body = line.lstrip("#").strip()
            if not body.startswith("|"):  # the safety table is in the README already
                comments.append(body)
        elif m := ASSIGN.match(line):
            value = m["value"].strip().strip('"')
            sections[-1].rows.append((m["name"], value, " ".join(comments)))
            comments = []
        else:
            comments = []
    return [s for s in sections if s.rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(sections: list[Section], used_by: dict[str, list[str]]) -> str:
    out: list[str] = []
    for s in sections:
        out += [f"**{s.title}**", "", "| Variable | Example / default | Read by | Meaning |"]
        out.append("|---|---|---|---|")
        for name, value, comment in s.rows:
            who = ", ".join(used_by.get(name, ["leadctl"]))
            shown = f"`{_cell(value)}`" if value else "*(empty)*"
            out.append(f"| `{name}` | {shown} | {who} | {_cell(comment)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def generate() -> str:
    return render(parse((ROOT / ".env.example").read_text()), readers())


def splice(readme: str, tables: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{tables}{END}{tail}"


def main() -> None:
    tables = generate()
    if "--write" in sys.argv:
        path = ROOT / "README.md"
        path.write_text(splice(path.read_text(), tables))
    else:
        sys.stdout.write(tables)


if __name__ == "__main__":
    main()
