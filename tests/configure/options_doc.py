"""The option tables of docs/configuration.md, generated from ``otel_model_health.options.Options``.

After adding or changing an option, rewrite them with ``python tests/configure/options_doc.py``;
``test_configure_options`` fails while they differ from the declaration.
"""

from __future__ import annotations

import sys
from pathlib import Path

from otel_model_health.options import OPTIONS, SECTIONS, Section

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = (
    "<!-- options: {section} "
    "(generated from otel_model_health/options.py: python tests/configure/options_doc.py) -->"
)
END = "<!-- end of options: {section} -->"


def table(section: Section) -> str:
    """One Markdown table: the section's options in declaration order."""
    specs = [(name, spec) for name, spec in OPTIONS.items() if spec.section == section]
    with_env = any(spec.env is not None for _, spec in specs)
    columns = (
        ["option", "environment variable", "default", "meaning"]
        if with_env
        else ["option", "default", "meaning"]
    )
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, spec in specs:
        cells = [f"`{name}`"]
        if with_env:
            cells.append(f"`{spec.env}`" if spec.env else "none")
        cells += [spec.default, spec.doc]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with every section's generated block replaced by the declaration's table."""
    for section in SECTIONS:
        begin, end = BEGIN.format(section=section), END.format(section=section)
        start = text.find(begin)
        stop = text.find(end, start)
        if start < 0 or stop < 0:
            raise ValueError(f"{DOC.name} has no generated block for {section!r}: add {begin!r} ... {end!r}")
        text = f"{text[:start]}{begin}\n\n{table(section)}\n\n{text[stop:]}"
    return text


if __name__ == "__main__":
    current = DOC.read_text(encoding="utf-8")
    updated = render(current)
    DOC.write_text(updated, encoding="utf-8")
    print(f"{DOC}: {'rewritten' if updated != current else 'already up to date'}", file=sys.stderr)
