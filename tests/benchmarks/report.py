"""The console table, docs/performance.md and its SVG plot (no plotting library: the SVG is text)."""

from __future__ import annotations

import html
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

from .harness import Figure, Panel, Results, Target

_PACKAGES: Final = (
    "otel_model_health",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-httpx",
    "httpx",
    "httpx2",
    "wrapt",
    "pybreaker",
    "purgatory",
)


def _fmt(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def console(results: Results) -> str:
    lines: list[str] = []
    section = None
    width = max((len(f.name) for f in results.figures), default=20) + 2
    for figure in results.figures:
        if figure.section != section:
            section = figure.section
            lines.append(f"\n{section}")
        note = f"  ({figure.note})" if figure.note else ""
        lines.append(f"  {figure.name:<{width}} {_fmt(figure.value):>10} {figure.unit}{note}")
    lines.append("\nTargets")
    for target in results.targets:
        verdict = "PASS" if target.passed else "MISS"
        lines.append(f"  {verdict}  {target.name}: {target.measured} (target {target.limit})")
    for target in results.targets:
        if target.profile_text:
            lines.append(f"\nProfile of the MISS '{target.name}' (library code, by cumulative share):")
            lines.append(target.profile_text)
    return "\n".join(lines)


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_implementation()} {sys.version.split()[0]}",
        f"- load average when the run ended (1, 5, 15 min): {load}",
        f"- packages: {', '.join(versions)}",
    ]


def _figures_table(figures: Sequence[Figure]) -> list[str]:
    lines: list[str] = []
    section = None
    for figure in figures:
        if figure.section != section:
            section = figure.section
            lines += ["", f"### {section}", "", "| figure | value | note |", "|---|---:|---|"]
        lines.append(f"| {figure.name} | {_fmt(figure.value)} {figure.unit} | {figure.note} |")
    return lines


def _targets_table(targets: Sequence[Target]) -> list[str]:
    lines = ["| target | measured | limit | verdict |", "|---|---|---|---|"]
    for target in targets:
        verdict = "**PASS**" if target.passed else "**MISS**"
        lines.append(f"| {target.name} | {target.measured} | {target.limit} | {verdict} |")
    return lines


def markdown(results: Results, *, command: str, elapsed_s: float, svg_name: str, intro: str) -> str:
    lines = [
        "# Performance",
        "",
        intro.strip(),
        "",
        f"![figures of the last run]({svg_name})",
        "",
        "## Targets",
        "",
        *_targets_table(results.targets),
        "",
        "## Figures",
        *_figures_table(results.figures),
        "",
    ]
    misses = [t for t in results.targets if t.profile_text]
    if misses:
        lines += [
            "## Profiles of missed targets",
            "",
            "cProfile of the candidate workload alone; only `otel_model_health` functions are listed, by",
            "their cumulative share of the profiled time (`own %` is time in the function itself). cProfile",
            "inflates the cost of small Python functions, so read shares, not absolute times.",
            "",
        ]
        for target in misses:
            lines += [f"### {target.name}", "", "```", target.profile_text, "```", ""]
            if target.reason:
                lines += [f"**Why, and what would reach it.** {target.reason}", ""]
    lines += [
        "## This run",
        "",
        *machine(),
        f"- command: `{command}`, {elapsed_s:.0f} s",
        "",
    ]
    return "\n".join(lines)


# --- SVG --------------------------------------------------------------------------------------------------
_W: Final = 760
_LABEL_W: Final = 230
_BAR_H: Final = 18
_GAP: Final = 6
_OURS: Final = "#2f6db5"
_BASE: Final = "#b0b0b0"


def svg(panels: Sequence[Panel]) -> str:
    """Horizontal bar charts, one panel per section, each on its own scale."""
    parts: list[str] = []
    y = 10
    chart_w = _W - _LABEL_W - 90
    for panel in panels:
        parts.append(
            f'<text x="10" y="{y + 14}" font-weight="bold" font-size="14">{html.escape(panel.title)}</text>'
        )
        y += 24
        top = max((b.value for b in panel.bars), default=1.0)
        top = top if top > 0 else 1.0
        for bar in panel.bars:
            width = max(0.0, bar.value) / top * chart_w
            colour = _BASE if bar.baseline else _OURS
            parts.append(
                f'<text x="{_LABEL_W - 8}" y="{y + 13}" text-anchor="end" font-size="12">'
                f"{html.escape(bar.label)}</text>"
            )
            parts.append(
                f'<rect x="{_LABEL_W}" y="{y}" width="{width:.1f}" height="{_BAR_H}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{_LABEL_W + width + 6:.1f}" y="{y + 13}" font-size="12">'
                f"{html.escape(_fmt(bar.value))} {html.escape(panel.unit)}</text>"
            )
            y += _BAR_H + _GAP
        y += 14
    legend_y = y + 4
    parts.append(f'<rect x="10" y="{legend_y}" width="12" height="12" fill="{_OURS}"/>')
    parts.append(f'<text x="28" y="{legend_y + 11}" font-size="12">otel_model_health</text>')
    parts.append(f'<rect x="160" y="{legend_y}" width="12" height="12" fill="{_BASE}"/>')
    parts.append(f'<text x="178" y="{legend_y + 11}" font-size="12">baseline</text>')
    height = legend_y + 24
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" font-family="sans-serif">\n'
        f'<rect width="{_W}" height="{height}" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )
