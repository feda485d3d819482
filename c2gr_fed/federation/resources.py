"""What a scenario asks of the machine, checked before anything starts: `federation.cpus_per_department` and
`federation.gpus_per_department` against this machine's CPUs and GPUs (or, with RAY_ADDRESS, against the nodes of
that Ray cluster). Without the check, Flower finds an empty actor pool only after the run has started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ResourceError
from ..scenario import Scenario


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return int(os.cpu_count() or 1)


NVIDIA_PROC_GPUS = Path("/proc/driver/nvidia/gpus")
"""One entry per NVIDIA GPU the kernel driver knows (independent of any CUDA library or torch build)."""


def machine_gpus(proc_dir: Path = NVIDIA_PROC_GPUS, smi: str | None = "nvidia-smi") -> int:
    """The NVIDIA GPUs of this machine, from the hardware: `nvidia-smi -L` (lines "GPU i: ..."), else the entries
    of /proc/driver/nvidia/gpus; never from torch (a CPU build of torch on a GPU machine would say 0). The count
    Ray is told for a cluster this project starts; a department granted one that its torch cannot use says so."""
    exe = shutil.which(smi) if smi else None
    if exe:
        try:
            out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
            if out.returncode == 0:
                return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        return sum(1 for p in proc_dir.iterdir() if p.is_dir())
    except OSError:
        return 0


def actor_environment(scenario: Scenario) -> dict[str, str]:
    """Environment variables for every department actor (Ray runtime_env): with federation.gpus_per_department 0,
    CUDA_VISIBLE_DEVICES is empty (CPU everywhere; Ray leaves it unset for actors without GPUs)."""
    return {"CUDA_VISIBLE_DEVICES": ""} if scenario.federation.gpus_per_department <= 0 else {}


def _plural(n: float, what: str) -> str:
    return f"{n:g} {what}{'' if n == 1 else 's'}"


def check_machine(scenario: Scenario, cpus: int | None = None, gpus: int | None = None) -> None:
    """Refuse (ResourceError naming the setting) when one department needs more than this machine has. With
    RAY_ADDRESS set the cluster decides, so nothing is checked here (see check_cluster)."""
    if os.environ.get("RAY_ADDRESS"):
        return
    fed = scenario.federation
    cpus = machine_cpus() if cpus is None else cpus
    if fed.gpus_per_department > 0:
        gpus = machine_gpus() if gpus is None else gpus
        if gpus == 0:
            raise ResourceError(
                f"federation.gpus_per_department = {fed.gpus_per_department:g}, but this machine has no GPU (no NVIDIA GPU "
                "in nvidia-smi -L or /proc/driver/nvidia/gpus): run it on a GPU machine (or a Ray cluster with GPUs, RAY_ADDRESS), or "
                "--set federation.gpus_per_department=0")
        if fed.gpus_per_department > gpus:
            raise ResourceError(
                f"federation.gpus_per_department = {fed.gpus_per_department:g}, but this machine has "
                f"{_plural(gpus, 'GPU')}: --set federation.gpus_per_department={gpus} (or a fraction to share one)")
    if fed.cpus_per_department > cpus:
        raise ResourceError(
            f"federation.cpus_per_department = {fed.cpus_per_department:g}, but this machine has "
            f"{_plural(cpus, 'CPU')}: --set federation.cpus_per_department={cpus} (or fewer)")


def check_cluster(scenario: Scenario, nodes: list[dict[str, Any]], address: str) -> None:
    """Refuse when no live node of the Ray cluster (ray.nodes()) can host one department."""
    fed = scenario.federation
    alive = [n.get("Resources") or {} for n in nodes if n.get("Resources") and n.get("Alive", True)]
    fits = [r for r in alive if r.get("CPU", 0) >= fed.cpus_per_department
            and (fed.gpus_per_department == 0 or r.get("GPU", 0) >= fed.gpus_per_department)]
    if not fits:
        have = "; ".join(f"CPU {r.get('CPU', 0):g}, GPU {r.get('GPU', 0):g}" for r in alive) or "none"
        raise ResourceError(
            f"federation.cpus_per_department = {fed.cpus_per_department:g} and federation.gpus_per_department = "
            f"{fed.gpus_per_department:g}, but no node of the Ray cluster at {address} has that much (nodes: {have})")


RAY_CLIENT_PORT = 10001
"""Ray Client's default port (ray://HOST without a port)."""


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) that RAY_ADDRESS names: "HOST:PORT" (the GCS) or "ray://HOST[:PORT]" (Ray Client); None for
    "auto"/"local", which Ray resolves on this machine. A malformed address is a ResourceError."""
    a = address.strip()
    if a in ("auto", "local"):
        return None
    client = a.startswith("ray://")
    rest = a[len("ray://"):] if client else a
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(RAY_CLIENT_PORT) if client else ""
    if not host or not port.isdigit():
        raise ResourceError(f"RAY_ADDRESS={address!r} is not HOST:PORT (the head node's GCS, e.g. 10.0.0.5:6379), "
                            "ray://HOST[:PORT] or auto")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Refuse at once when nothing answers at RAY_ADDRESS (Ray itself would wait for its GCS without end)."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ResourceError(f"RAY_ADDRESS={address}: nothing answers at {host}:{port} within {timeout:g} s "
                            f"({exc.strerror or exc}): start the cluster there (ray start --head), fix the address, "
                            "or unset RAY_ADDRESS to run on this machine alone") from None
