"""docs/probes.md code blocks and examples/health_probes.py run as written."""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks(name: str) -> list[str]:
    return BLOCK.findall((ROOT / "docs" / name).read_text())


@pytest.mark.integration
@pytest.mark.parametrize("index", range(len(_blocks("probes.md"))))
def test_probes_doc_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = set(threading.enumerate())
    code = _blocks("probes.md")[index]
    exec(compile(code, f"docs/probes.md[{index}]", "exec"), {"__name__": "__doc_example__"})
    assert capsys.readouterr().out.strip()  # each block prints what it shows
    assert set(threading.enumerate()) - baseline == set()


def test_probes_doc_has_blocks() -> None:
    assert len(_blocks("probes.md")) >= 2


@pytest.mark.integration
def test_health_probes_example(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "health_probes_example", ROOT / "examples" / "health_probes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "gpt-4o breaker after 5 x 503: open" in out
    assert "gpt-4o breaker after the trials: closed" in out
