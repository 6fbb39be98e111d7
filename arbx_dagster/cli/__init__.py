"""``arbx``: the command line — demo, status, ui, config, watch, backfill, bench,
matches, model, opportunities, serve, up/down."""

from __future__ import annotations

import warnings

import typer

from arbx_dagster.cli import (
    backfill,
    bench,
    config_cmd,
    demo,
    deploy,
    import_cmd,
    matches_cmd,
    model_cmd,
    opportunities_cmd,
    serve,
    sources_cmd,
    status,
    ui,
    watch_cmd,
)

app = typer.Typer(
    name="arbx",
    help="ArbX: cross-retailer price intelligence (Falabella, Ripley, Paris) on Dagster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Click's plain layout: one option a line, help wrapped to the terminal. Rich's panels
    # squeeze option names ("--no-proxy-heade…") and keep docstring line breaks at 80
    # columns; sub-commands inherit this.
    rich_markup_mode=None,
)
app.command("demo")(demo.demo)
app.command("status")(status.status)
app.command("ui")(ui.ui)
app.command("backfill")(backfill.backfill)
app.command("import")(import_cmd.import_)
app.command("up")(deploy.up)
app.command("down")(deploy.down)
app.command("serve")(serve.serve)
app.add_typer(config_cmd.app, name="config")
app.add_typer(watch_cmd.app, name="watch")
app.add_typer(bench.app, name="bench")
app.add_typer(matches_cmd.app, name="matches")
app.add_typer(model_cmd.app, name="model")
app.add_typer(opportunities_cmd.app, name="opportunities")
app.add_typer(sources_cmd.app, name="sources")


def main() -> None:
    # Dagster flags beta parameters (backfill policies) at import; users cannot act on it.
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    warnings.filterwarnings("ignore", message=r"Parameter `\w+` .* is currently in beta")
    app()
