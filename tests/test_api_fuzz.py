"""Property-based run of schemathesis over the published OpenAPI, on a real server: no input yields a 5xx.

The caller is an administrator, so every route is reached past its role check. Telephony is off on this
server, so the call, bridge, fax and line-check routes rightly answer 503 to everything; their input handling is
tested against a real Asterisk in test_calls.py, test_bridges.py, test_fax.py and test_linechecks.py. Likewise video
consultation (Janus off here; see test_consultations.py) and the camera routes that drive a GB/T 28181 device (its
SIP server is off here; see test_cameras.py).
"""

import asyncio
import os
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(600)
async def test_no_input_makes_a_server_error(live_server: str, tokens: dict, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"http://{live_server}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--exclude-path-regex",
        # 503 without the engines, tested against the real ones; logout would revoke the token the run relies on
        "^/api/v1/(calls|bridges|faxes|linechecks|consultations|auth/logout|cameras/[^/]+/(state|catalog|channels/))",
        "--header",
        f"Authorization:{tokens['admin']['Authorization']}",
        "--max-examples",
        os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "40"),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261130",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text[-6000:]
    assert " passed" in text and "0 passed" not in text, text[-3000:]
