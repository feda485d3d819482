"""Run the apps on Flower's simulation engine, with Ray placing the department nodes on CPUs/GPUs.

Each department is a virtual SuperNode; Ray runs them in an actor pool sized by
`federation.cpus_per_department` / `gpus_per_department` (Ray sets CUDA_VISIBLE_DEVICES per actor). With
RAY_ADDRESS set, the existing Ray cluster is used and its resources decide the pool.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from ..scenario import Scenario


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
        init_args["num_cpus"] = max(int(os.cpu_count() or 1), int(fed.cpus_per_department))
        import torch

        if torch.cuda.is_available():
            init_args["num_gpus"] = torch.cuda.device_count()
    return {"client_resources": {"num_cpus": fed.cpus_per_department, "num_gpus": fed.gpus_per_department},
            "init_args": init_args}


def launch(server_app: Any, client_app: Any, scenario: Scenario, verbose: bool = False) -> None:
    """Run to completion; a ServerApp exception is re-raised here (Flower's own CLI would exit 0)."""
    quiet_environment(verbose)
    from flwr.simulation import run_simulation

    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=len(scenario.departments),
                   backend_config=backend_config(scenario, verbose), verbose_logging=verbose)
