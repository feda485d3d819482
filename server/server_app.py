"""Flower ServerApp: the coordinator. Thin: read settings, run the round loop of c2gr_fed.federation.

Deployment engine: `flwr run . <federation> --run-config 'scenario="scenarios/smoke.yaml" run-dir="runs/x"'`.
Simulation: the CLI builds the app with `make_server_app(settings)`.
"""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from c2gr_fed.federation.coordinator import Coordinator
from c2gr_fed.federation.settings import AppSettings, settings_from_context


def make_server_app(settings: AppSettings | None = None) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        s = settings_from_context(settings, dict(context.run_config), {})
        Coordinator(s, grid).run_stream()

    return app


app = make_server_app()
