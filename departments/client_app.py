"""Flower ClientApp: one hospital department node. Thin: unpack, call c2gr_fed, pack.

Deployment engine: `flower-supernode ... --node-config 'department="cardiology-siemens" data-root="/data"'`.
Simulation: the CLI builds the app with `make_client_app(settings)`.
"""

from __future__ import annotations

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from c2gr_fed.federation.department import (handle_audit, handle_discover, handle_evaluate, handle_train,
                                            where_errors_go)
from c2gr_fed.federation.error_replies import with_error_codes
from c2gr_fed.federation.settings import AppSettings, settings_from_context


def make_client_app(settings: AppSettings | None = None, mods: list | None = None) -> ClientApp:
    """`mods` are Flower client mods (tests use them to build leaky departments)."""
    app = ClientApp(mods=mods or [])

    def _settings(context: Context) -> AppSettings:
        return settings_from_context(settings, dict(context.run_config), dict(context.node_config))

    def _where(msg: Message):
        return lambda context: where_errors_go(_settings(context), context, msg)

    @app.query("discover")
    def discover(msg: Message, context: Context) -> Message:
        return with_error_codes(lambda m, c: handle_discover(_settings(c), m, c), _where(msg))(msg, context)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return with_error_codes(lambda m, c: handle_train(_settings(c), m, c), _where(msg))(msg, context)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return with_error_codes(lambda m, c: handle_evaluate(_settings(c), m, c), _where(msg))(msg, context)

    @app.query("audit")
    def audit(msg: Message, context: Context) -> Message:
        return with_error_codes(lambda m, c: handle_audit(_settings(c), m, c), _where(msg))(msg, context)

    return app


app = make_client_app()
