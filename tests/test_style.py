"""The code passes the project's linter (ruff) and keeps its layers (import-linter contracts), both configured in
pyproject.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name(tool)), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_imports_keep_the_layers() -> None:
    """The layers of docs/architecture.md: engines below the domains, core below everything, no test code shipped."""
    done = _run("lint-imports", "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
