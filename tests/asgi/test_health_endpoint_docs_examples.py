"""docs/health-endpoint.md code blocks and examples/health_endpoint.py run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[str]:
    return BLOCK.findall((ROOT / "docs" / "health-endpoint.md").read_text())


def test_health_endpoint_doc_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks()
    assert blocks
    for index, code in enumerate(blocks):
        exec(compile(code, f"docs/health-endpoint.md[{index}]", "exec"), {"__name__": "__doc_example__"})
    assert capsys.readouterr().out.splitlines() == ["healthy 1", "closed"]


def test_health_endpoint_example(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "health_endpoint_example", ROOT / "examples" / "health_endpoint.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    out = capsys.readouterr().out
    assert "GET /ops/health -> 200" in out
    assert '"breaker_state": "open"' in out
    # the status page's document: unhealthy first is the page's order; the document is by key
    assert "GET /ops/health/ui/data -> 200 (version 1, 2 models, first: claude-haiku-4-5)" in out
