"""Running the probe process (``python -m probe``, pjsua2) from the event loop: the job goes in on stdin, its facts
come back as JSON lines, handed out one by one as they arrive. The password travels on stdin, never in argv."""

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STDERR_LIMIT = 1 << 20  # bytes of pjsua's complaints kept before the file is set aside (one older file is kept)


async def probe_events(job: dict[str, Any], timeout: float, stderr: Path) -> AsyncIterator[dict[str, Any]]:
    """The probe's events until it is done; a probe that outlives ``timeout`` seconds is killed (the iteration just
    ends, short of ``done``)."""
    keep_bounded(stderr)
    with stderr.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "probe", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(job, ensure_ascii=False).encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()
        async with asyncio.timeout(timeout):
            while line := await process.stdout.readline():
                try:
                    yield json.loads(line)
                except ValueError:
                    log.warning("line-check probe wrote a line that is not JSON: %r", line[:200])
    except TimeoutError:
        log.error("line-check probe still running after %.0f s: killed", timeout)
    finally:
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
        if process.returncode is None:
            process.kill()
            await process.wait()


def keep_bounded(path: Path, limit: int = STDERR_LIMIT) -> None:
    """Set a log that outgrew ``limit`` aside as ``<name>.1`` (replacing the one before): a daily probe for years
    must not fill the disk with pjsua's complaints, while the latest ones stay readable."""
    if path.exists() and path.stat().st_size > limit:
        path.replace(path.with_name(path.name + ".1"))
