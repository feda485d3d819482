"""Process control for the local deployment engine: every process in its own group, stopped with its descendants
(SIGTERM, then SIGKILL) when the run ends, fails or is interrupted; log tails for error messages."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _descendants(pid: int) -> list[int]:
    """All descendants of pid (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.exists():
        return []
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path


class ProcessSet:
    """Processes started in their own process groups; `stop()` ends them all, descendants included."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.seen: set[int] = set()

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log = self.log_dir / f"{name}.log"
        fh = open(log, "ab")
        fh.write(f"$ {shlex.join(argv)}\n".encode())
        fh.flush()
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=str(cwd) if cwd else None, start_new_session=True)
        fh.close()
        proc = Proc(name, p, log)
        self.procs.append(proc)
        self.seen.add(p.pid)
        (self.log_dir / "processes.json").write_text(json.dumps({q.name: q.popen.pid for q in self.procs}, indent=1))
        return proc

    def remember_descendants(self) -> None:
        for p in self.procs:
            self.seen.update(_descendants(p.popen.pid))

    def dead(self) -> list[Proc]:
        return [p for p in self.procs if p.popen.poll() is not None]

    def all_pids(self) -> set[int]:
        self.remember_descendants()
        return set(self.seen)

    def stop(self, grace: float = 10.0) -> list[int]:
        """SIGTERM every group and every known descendant, wait, then SIGKILL; returns pids still alive (none)."""
        self.remember_descendants()
        pids = set(self.seen)
        groups = {p.popen.pid for p in self.procs}
        for pid in sorted(pids):  # ServerApp/ClientApp processes may start sessions of their own
            _signal(pid, signal.SIGTERM, group=pid in groups)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for p in self.procs:
                p.popen.poll()
            if not any(_alive(pid) for pid in pids):
                break
            time.sleep(0.2)
        for pid in sorted(pids):
            if _alive(pid):
                _signal(pid, signal.SIGKILL, group=pid in groups)
        for p in self.procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2)
        return [pid for pid in pids if _alive(pid)]


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])
