"""One run at a time per run directory: `RUN_DIR/run.lock`, held with flock for as long as the run's process lives.

A second `c2gr-fed run` (or `--resume`) on a directory that a live run holds is refused, naming that run's
process; the lock goes with the process however it ends (also SIGKILL), so a stale lock file never blocks a
resume. The file's text (pid, start time, command) is only for the message.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import IO

from ..errors import RunDirError
from .layout import RunDir


class RunLock:
    def __init__(self, run: RunDir) -> None:
        self.path = run.root / "run.lock"
        self._file: IO[str] | None = None

    def acquire(self, command: str) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = _describe(f.read())
            f.close()
            raise RunDirError(f"{self.path.parent} is in use by another c2gr-fed run ({holder}): wait for it to end "
                              "or stop it (SIGTERM), or give another --out") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "started": dt.datetime.now().isoformat(timespec="seconds"),
                            "command": command}))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']}, started {info['started']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "a process that is starting"
