"""What the switchboard writes is for its own account only: the review found var/ 0755, the database 0644 (password
hashes, personal data, join tokens), recordings 0644."""

import stat
from pathlib import Path

from tests.test_cli import env, sb  # noqa: F401  (env: the CLI fixture)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_var_and_everything_in_it_is_private(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)  # an older install's
    sb(env, "user", "add", "zhangwei", "--role", "duty_officer", "--password-stdin", stdin="Zhangwei-duty-2026\n")
    assert _mode(var) == 0o700
    written = [p for p in var.rglob("*")]
    assert any(p.name == "switchboard.db" for p in written)
    for path in written:
        assert _mode(path) & 0o077 == 0, f"{path} is {oct(_mode(path))}"
