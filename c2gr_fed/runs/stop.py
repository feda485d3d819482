"""Stopping a run on request: SIGTERM (what `timeout`, `docker stop`, Kubernetes and batch schedulers send) and
SIGINT (Ctrl-C) end a run cleanly instead of killing it mid-write.

The first signal sets the switch: the coordinator stops waiting, the department abandons the round it is training
(it sees the switch as a file, `RUN_DIR/progress/stop`, at its next step) and the run ends with the last complete
round's checkpoint, status `interrupted` and exit code 128 + the signal (130 for SIGINT, 143 for SIGTERM). A round
whose training has finished is still evaluated and checkpointed. A second signal stops waiting for that.
The switch is also set when the simulation runtime fails, so that the coordinator's thread never outlives it.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Callable

STOP_FILE = "stop"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_file(progress_dir: str | Path) -> Path:
    return Path(progress_dir) / STOP_FILE


class StopSwitch:
    """One run's stop request: set by a signal (or a failure of the runtime), read by the coordinator."""

    def __init__(self, progress_dir: Path | None = None) -> None:
        self.progress_dir = progress_dir
        self.signal_number: int | None = None
        self.reason = ""
        self._event = threading.Event()
        self._urgent = threading.Event()
        self._previous: dict[int, Callable | int | None] = {}

    def requested(self) -> bool:
        return self._event.is_set()

    def should_stop(self, urgent_only: bool = False) -> bool:
        """What the coordinator asks while it waits: any request, or (`urgent_only`, while a finished round is
        being evaluated) only a second signal or a failed runtime."""
        return self._urgent.is_set() if urgent_only else self._event.is_set()

    def request(self, reason: str, signal_number: int | None = None, urgent: bool = False) -> None:
        if urgent:
            self._urgent.set()
        if self._event.is_set():
            return
        self.reason, self.signal_number = reason, signal_number
        self._event.set()
        if self.progress_dir is not None:  # departments run in other processes: they look for the file
            try:
                stop_file(self.progress_dir).touch()
            except OSError:
                pass

    def clear(self) -> None:
        """Forget a stop file left by an earlier session of the run (before a resume starts)."""
        if self.progress_dir is not None:
            stop_file(self.progress_dir).unlink(missing_ok=True)

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number if self.signal_number else 1

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name if self.signal_number else "stop"

    # ------------------------------------------------------------------ signal handlers (main thread only)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._event.is_set():  # the second request: stop waiting for the current round, at once
            self._urgent.set()
            raise KeyboardInterrupt
        self.request(f"{signal.Signals(signum).name} received", signum)

    def install(self) -> None:
        """Route SIGINT and SIGTERM here (again after a library such as Ray replaced the SIGTERM handler)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for s in SIGNALS:
            previous = signal.signal(s, self._on_signal)
            if previous != self._on_signal:
                self._previous.setdefault(s, previous)

    def uninstall(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s, previous in self._previous.items():
            signal.signal(s, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
