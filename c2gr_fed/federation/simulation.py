"""Run the apps on Flower's simulation engine, with Ray placing the department nodes on CPUs/GPUs.

Each department is a virtual SuperNode; Ray runs them in an actor pool sized by
`federation.cpus_per_department` / `gpus_per_department` (Ray sets CUDA_VISIBLE_DEVICES per actor). With
RAY_ADDRESS set, the existing Ray cluster is used and its resources decide the pool.

Ray is started here (not by Flower) so that the resources are checked before anything runs (resources.py), so that
a stop request (SIGTERM/SIGINT, runs/stop.py) reaches this run rather than Ray's own SIGTERM handler, and so that
Flower's and Ray's logs go to the run's log file unless --verbose.

A department's failure reaches the coordinator in Flower's fixed form for a ClientApp exception: Ray delivers it as a
RayTaskError whose text is the actor's whole traceback (pids, addresses, source lines and every chained exception's
text); `plain_client_errors` hands the engine the ClientAppException it wraps instead, so an error reply carries
exactly the department's declared code, which the guard accepts, and nothing of the traceback.

Flower's runtime ends only when every message it handed to a department has returned. A department that hangs
(stuck I/O, a deadlock) would keep the process alive after the coordinator has given up on it; so once the
coordinator has ended, a department still busy after `RELEASE_GRACE_S` has its Ray actor killed
(`release_busy_departments`), and the run ends with the coordinator's own error.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..runs.stop import StopSwitch
from ..scenario import Scenario
from .resources import actor_environment, check_cluster, check_machine, check_reachable, machine_cpus, machine_gpus

RELEASE_GRACE_S = 10.0
"""Seconds a department may still be busy after the coordinator has ended before its actor is killed."""
_BACKENDS: "weakref.WeakSet[Any]" = weakref.WeakSet()
"""The Ray backends of the simulations running in this process (recorded as they process messages)."""


def quiet_environment(verbose: bool) -> None:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if not verbose:
        os.environ.setdefault("RAY_LOG_TO_STDERR", "0")
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ["PYTHONWARNINGS"] = "ignore"
        warnings.filterwarnings("ignore")
        for name in ("flwr", "ray"):
            logging.getLogger(name).setLevel(logging.ERROR)


def backend_config(scenario: Scenario, verbose: bool) -> dict[str, Any]:
    fed = scenario.federation
    init_args: dict[str, Any] = {"include_dashboard": False, "configure_logging": True,
                                 "logging_level": logging.INFO if verbose else logging.ERROR,
                                 "log_to_driver": verbose}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        init_args["address"] = address
    else:
        # a new local cluster of our own: never attach to another run's Ray (a crashed run may leave one behind)
        init_args["address"] = "local"
        init_args["num_cpus"] = machine_cpus()  # check_machine refused a department that needs more
        gpus = machine_gpus()  # from the hardware, not from this process's torch build
        if gpus:
            init_args["num_gpus"] = gpus
    return {"client_resources": {"num_cpus": fed.cpus_per_department, "num_gpus": fed.gpus_per_department},
            "init_args": init_args}


@contextmanager
def logs_to_file(log_file: Path | None, verbose: bool) -> Iterator[None]:
    """Without --verbose, Flower's and Ray's log records (a failing department's traceback among them) go to
    `log_file` instead of the terminal; the one-line error is the CLI's."""
    if verbose or log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    saved = []
    for name in ("flwr", "ray"):
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.level, logger.propagate))
        for h in list(logger.handlers):
            logger.removeHandler(h)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            logger.removeHandler(handler)
            for h in handlers:
                logger.addHandler(h)
            logger.setLevel(level)
            logger.propagate = propagate
        handler.close()


def start_ray(scenario: Scenario, verbose: bool) -> dict[str, Any]:
    """ray.init with this run's settings (as Flower would), then the cluster's resources checked; the backend
    config to hand to Flower, which finds Ray running and keeps it."""
    import ray

    config = backend_config(scenario, verbose)
    init_args = dict(config["init_args"])
    pythonpath = os.pathsep.join(sys.path)  # Ray's workers must import what this driver imports (as Flower does)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            check_reachable(os.environ["RAY_ADDRESS"])
        ray.init(runtime_env={"env_vars": {"PYTHONPATH": pythonpath, **actor_environment(scenario)}}, **init_args)
    if os.environ.get("RAY_ADDRESS"):
        check_cluster(scenario, ray.nodes(), os.environ["RAY_ADDRESS"])
    return config


@contextmanager
def plain_client_errors() -> Iterator[None]:
    """While it is open, the Ray backend raises a failed ClientApp's own ClientAppException (not Ray's
    RayTaskError around it with the actor's traceback), so the engine's error reason is Flower's fixed form."""
    from flwr.clientapp.client_app import ClientAppException
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend
    from ray.exceptions import RayTaskError

    original = RayBackend.process_message

    def process_message(self: Any, message: Any, context: Any) -> Any:
        _BACKENDS.add(self)
        try:
            return original(self, message, context)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ClientAppException):  # Ray's actor wraps the ClientApp's exception twice: keep
                # the innermost message (the guard accepts it only when it is exactly a declared error's text)
                raise ClientAppException(str(cause).rsplit("occurred. Message: ", 1)[-1]) from None
            raise

    RayBackend.process_message = process_message  # type: ignore[method-assign]
    try:
        yield
    finally:
        RayBackend.process_message = original  # type: ignore[method-assign]


def busy_actors() -> list[Any]:
    """The Ray actors of this process's simulations that are running a department's message now."""
    found = []
    for backend in list(_BACKENDS):
        pool = getattr(backend, "pool", None)
        found.extend(list(getattr(pool, "_future_to_actor", {}).values()))
    return found


def release_busy_departments(grace_s: float = RELEASE_GRACE_S, poll_s: float = 0.5) -> threading.Thread:
    """In a daemon thread: wait up to `grace_s` for the departments still busy to return, then kill the actors of
    those that have not, so that Flower's runtime stops waiting for them. Returns the thread."""

    def reap() -> None:
        import ray

        deadline = time.monotonic() + grace_s
        while busy_actors() and time.monotonic() < deadline:
            time.sleep(poll_s)
        for actor in busy_actors():
            logging.getLogger("c2gr_fed").warning(
                "a department was still busy %.0f s after the coordinator ended: its actor is stopped", grace_s)
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone, or Ray is shutting down
                pass

    th = threading.Thread(target=reap, name="c2gr-release-departments", daemon=True)
    th.start()
    return th


def _released_when_done(server_app: Any, grace_s: float) -> None:
    """Wrap the ServerApp's main so that, when the coordinator ends (done, failed or stopped), departments still
    busy are released after `grace_s` (see release_busy_departments)."""
    main = getattr(server_app, "_main", None)
    if not callable(main) or getattr(main, "_c2gr_released", False):
        return

    def main_then_release(grid: Any, context: Any) -> None:
        try:
            main(grid, context)
        finally:
            release_busy_departments(grace_s)

    main_then_release._c2gr_released = True  # type: ignore[attr-defined]
    server_app._main = main_then_release


def launch(server_app: Any, client_app: Any, scenario: Scenario, verbose: bool = False,
           stop: StopSwitch | None = None, log_file: Path | None = None,
           release_grace_s: float = RELEASE_GRACE_S) -> None:
    """Run to completion; a ServerApp exception is re-raised here (Flower's own CLI would exit 0). A failure of the
    runtime sets `stop` (urgent), so that the coordinator's thread ends too and the process can exit."""
    quiet_environment(verbose)
    check_machine(scenario)
    _released_when_done(server_app, release_grace_s)
    import ray
    from flwr.simulation import run_simulation

    with logs_to_file(log_file, verbose), plain_client_errors():
        try:
            config = start_ray(scenario, verbose)
            if stop is not None:
                stop.install()  # after ray.init, which sets a SIGTERM handler of its own
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=len(scenario.departments),
                           backend_config=config, verbose_logging=verbose)
        except BaseException:
            if stop is not None:
                stop.request("the simulation runtime stopped", urgent=True)
            raise
        finally:
            if ray.is_initialized():
                ray.shutdown()
