"""`convolens serve`: the REST API, realtime stream and webhooks (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from convolens.cli.main import _DEFAULT_DB, DbOption, app, err
from convolens.speech.models import DEFAULT_MODEL

__all__: list[str] = []


@app.command()
def serve(
    db: DbOption = _DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option(envvar="CONVOLENS_WORKERS", help="Job worker threads (0: none).")
    ] = 2,
    config: Annotated[
        Path | None,
        typer.Option(envvar="CONVOLENS_CONFIG", help="TOML with [components.NAME] settings."),
    ] = None,
    asr_model: Annotated[
        str,
        typer.Option(
            envvar="CONVOLENS_ASR_MODEL",
            help="Whisper model for uploaded recordings: 'base', 'tiny.en' or a model directory.",
        ),
    ] = DEFAULT_MODEL,
    stream_asr_model: Annotated[
        str,
        typer.Option(envvar="CONVOLENS_STREAM_ASR_MODEL", help="Whisper model for live streams."),
    ] = "tiny.en",
    preload: Annotated[
        bool,
        typer.Option(
            envvar="CONVOLENS_PRELOAD", help="Load the models at start rather than on first use."
        ),
    ] = True,
) -> None:
    """Serve the API (/v1, OpenAPI at /docs). On a warehouse with no API key yet it
    creates an admin key and shows it once (on a terminal; else in <db>.admin-key)."""
    try:
        import uvicorn

        from convolens.service.app import create_app
        from convolens.service.auth import check_key_strength
        from convolens.service.log_redaction import log_config
        from convolens.service.settings import ServiceSettings
    except ImportError as exc:
        err.print(f"[red]error:[/] the service needs its extra ({exc.name}): "
                  "pip install 'convolens[service]'")  # fmt: skip
        raise typer.Exit(2) from None
    from pydantic import ValidationError

    try:
        settings = ServiceSettings(
            db=db,
            workers=workers,
            components_config=config,
            asr_model=asr_model,
            stream_asr_model=stream_asr_model,
            preload=preload,
        )
    except ValidationError as exc:  # e.g. an unknown Whisper model: say so before serving
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem["loc"])
            err.print(f"[red]error:[/] {where}: {problem['msg']}")
        raise typer.Exit(2) from None
    if settings.bootstrap_admin_key:
        try:
            check_key_strength(settings.bootstrap_admin_key)
        except ValueError as exc:
            err.print(f"[red]error:[/] CONVOLENS_ADMIN_KEY: {exc}")
            raise typer.Exit(2) from None
    from convolens.service.bridge import publish
    from convolens.store.warehouse import WarehouseError

    try:
        application = create_app(settings)  # opens the warehouse: held until shutdown
    except WarehouseError as exc:  # e.g. another process has it open
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(f"convolens: serving {db} on http://{host}:{port} (API docs: /docs)")
    # CLI commands on this warehouse find the server (a file beside it) and run in it.
    publish(application, db, host, port)
    # Every log line goes through a filter that masks API keys and other credentials.
    uvicorn.run(application, host=host, port=port, log_level="info", log_config=log_config())
