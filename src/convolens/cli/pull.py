"""`convolens pull zendesk|intercom`: conversations straight from a helpdesk's API.

The token is read from the environment variable `--token-env` names (never from the
command line, where it would sit in the shell history and the process list).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err

__all__ = ["pull_command"]


class Helpdesk(StrEnum):
    zendesk = "zendesk"
    intercom = "intercom"


@app.command("pull")
def pull_command(
    source: Annotated[Helpdesk, typer.Argument(help="The helpdesk: zendesk or intercom.")],
    url: Annotated[
        str,
        typer.Option(
            help="The helpdesk's address: https://SUBDOMAIN.zendesk.com, or "
            "https://api.intercom.io (api.eu.intercom.io, api.au.intercom.io)."
        ),
    ],
    token_env: Annotated[
        str,
        typer.Option(
            help="Name of the environment variable holding the API token (Zendesk: an "
            "OAuth token or 'email/token:TOKEN'; Intercom: an access token)."
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(help="First pull only: changes since this day (YYYY-MM-DD)."),
    ] = None,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Pull tickets or conversations changed since the last pull (the cursor is kept in
    the warehouse), then ingest them like an exported file."""
    try:
        # httpx comes with the service extra: the rest of the CLI works without it.
        from convolens.ingest.pull import PullError, pull
    except ImportError as exc:
        err.print(
            f"[red]error:[/] convolens pull needs {escape(exc.name or 'httpx')}: "
            "pip install 'convolens[service]'"
        )
        raise typer.Exit(2) from None
    token = os.environ.get(token_env, "")
    if not token:
        err.print(f"[red]error:[/] the environment variable {escape(token_env)} is not set")
        raise typer.Exit(2)
    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            err.print(f"[red]error:[/] --since {escape(since)!s} is not a date (YYYY-MM-DD)")
            raise typer.Exit(2) from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    with _open(db) as warehouse:
        try:
            report = pull(warehouse, source.value, url, token, since=start)
        except PullError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
    console.print(escape(report.summary_line()), soft_wrap=True)
    if report.ingest is not None:
        for reject in report.ingest.rejects[:20]:
            console.print(f"  rejected {escape(reject.describe())}", soft_wrap=True)
        if report.ingest.rejects and not report.ingest.conversations:
            err.print("[red]error:[/] nothing ingested: every record was rejected")
            raise typer.Exit(1)
