"""Secrets the switchboard generates for itself when none is configured, kept in files under var/."""

import os
import secrets
import tempfile
from pathlib import Path

_read: dict[Path, str] = {}


def kept_secret(path: Path) -> str:
    """The secret in `path`, generated there (mode 0600) on first use. It is written under a temporary name and
    linked into place, so processes starting together (the server and a CLI command) agree on one secret and
    none reads a half-written file. Read once per process: every request's token check asked for it, a blocking
    file read on the event loop each time (a restore only ever fills an empty var/, so the file never changes
    under a running server)."""
    if (known := _read.get(path)) is not None:
        return known
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w") as stream:
                stream.write(secrets.token_urlsafe(48))
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process linked its secret first: that one is kept
        finally:
            os.unlink(temporary)
    _read[path] = secret = path.read_text().strip()
    return secret
