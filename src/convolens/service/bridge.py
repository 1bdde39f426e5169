"""The server's half of running CLI commands while `convolens serve` holds the warehouse.

DuckDB lets one process open a warehouse file, so the server cannot hand out connections
to other processes; instead a CLI command that finds the server runs inside it (see
cli/remote.py). The same Typer command function runs here on a cursor of the server's
connection, its output streamed back as it is printed; the CLI, the API and this bridge
share every line of library code, and every command behaves as it does without a server.

Guarded hard, since it runs any CLI command with the server's rights:
- the token is random per server start and lives only in memory and in the discovery
  file beside the warehouse, mode 0600: only the user who runs the server (who could
  open the warehouse anyway) can read it; API keys do not work here;
- loopback clients only (uvicorn reports the forwarded client behind a local proxy);
- not in the OpenAPI schema;
- `--db` must name this server's warehouse; `serve` is refused;
- a command that writes takes the pipeline's labelling lock for as long as it holds the
  warehouse, as the job workers do to measure and label, so a CLI `analyze` never runs
  alongside a job's labelling run (which would label conversations twice).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from io import TextIOBase
from pathlib import Path
from typing import IO, Any, cast

import typer
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from rich.console import Console
from rich.markup import escape

from convolens import __version__
from convolens.cli.remote import (
    COMMAND_PATH,
    HEARTBEAT_S,
    TOKEN_HEADER,
    BridgedRun,
    CommandRequest,
    ServerInfo,
    TerminalInfo,
    discovery_path,
    enter,
)
from convolens.service.errors import ApiError
from convolens.service.state import Service, get_service
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["install", "publish", "remove_discovery", "write_discovery"]

log = logging.getLogger("convolens.service.bridge")
router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the route; the token is made here and written out by `write_discovery`."""
    app.state.local_token = secrets.token_urlsafe(32)
    app.include_router(router)


# -- the discovery file ----------------------------------------------------------------------
def _loopback_url(host: str, port: int) -> str | None:
    """Where a CLI on this machine reaches the server; None if not over loopback."""
    if host in ("", "0.0.0.0", "localhost"):
        return f"http://127.0.0.1:{port}"
    if host == "::":
        return f"http://[::1]:{port}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_loopback:
        return None
    return f"http://[{host}]:{port}" if address.version == 6 else f"http://{host}:{port}"


def write_discovery(db: Path, host: str, port: int, token: str) -> Path | None:
    """Publish the server beside its warehouse (0600, written whole then renamed, so a
    CLI never reads half a file). None where the server does not listen on loopback."""
    url = _loopback_url(host, port)
    if url is None:
        log.warning("listening on %s only: the CLI cannot run commands through this server", host)
        return None
    info = ServerInfo(
        url=url, pid=os.getpid(), token=token, version=__version__, db=str(db.resolve())
    )
    path = discovery_path(db.resolve())  # the same file whatever path names the warehouse
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        partial.unlink(missing_ok=True)
        # A new file (never a planted one or a link to one), owner-only from its creation.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, info.model_dump_json().encode())
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError as exc:  # the API still serves; only the CLI cannot go through it
        log.warning("cannot publish the server for the CLI (%s)", exc.strerror)
        return None
    return path


def remove_discovery(path: Path | None) -> None:
    """Remove the file on shutdown, if it is still this process's."""
    if path is None:
        return
    try:
        if ServerInfo.model_validate_json(path.read_bytes()).pid == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def publish(app: FastAPI, db: Path, host: str, port: int) -> None:
    """Write the discovery file once the app has started and remove it when it stops:
    inside the app's lifespan, since uvicorn re-raises SIGTERM after its shutdown (code
    after `uvicorn.run` does not run). A killed server leaves the file; its dead pid makes
    the CLI ignore it."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with started(application) as state:
            path = write_discovery(db, host, port, application.state.local_token)
            try:
                yield state
            finally:
                remove_discovery(path)

    app.router.lifespan_context = lifespan


# -- running a command -----------------------------------------------------------------------
class _Stream(TextIOBase):
    """A console's file: every write becomes one message for the caller."""

    def __init__(self, messages: queue.Queue[dict[str, Any]], name: str) -> None:
        self.messages, self.name = messages, name

    def write(self, text: str) -> int:
        if text:
            self.messages.put({self.name: text})
        return len(text)

    def isatty(self) -> bool:
        return False


def _console(stream: _Stream, terminal: TerminalInfo, *, live: bool) -> Console:
    """A console that renders as the caller's would. Only stderr, where the progress bars
    are, may act as a terminal: their cursor movements reach the caller's terminal as they
    would locally. stdout never does, because a live display on a terminal console swaps
    the process-wide sys.stdout (rich's redirect), and this process is the server."""
    return Console(
        file=cast(IO[str], stream),
        width=max(20, terminal.width),
        height=25,
        color_system=terminal.color_system,  # type: ignore[arg-type]
        no_color=terminal.no_color,
        force_terminal=live and terminal.terminal,
        force_interactive=live and terminal.terminal,
        legacy_windows=False,
    )


def _opener(service: Service, stderr: Console) -> Any:
    def open_warehouse(db: Path, read_only: bool) -> Warehouse:
        if db.resolve() != service.settings.db.resolve():
            raise WarehouseError(
                f"{db}: the server that runs this command serves another warehouse; "
                "give its --db, or stop it"
            )
        if read_only:
            return service.warehouse.cursor()
        lock = service.pipeline.label_lock
        if not lock.acquire(blocking=False):
            stderr.print("waiting for the server's labelling run to finish", highlight=False)
            lock.acquire()
        try:
            return service.warehouse.cursor(on_close=lock.release)
        except BaseException:
            lock.release()
            raise

    return open_warehouse


def _invoke(args: list[str], stderr: Console) -> int:
    from convolens.cli import app as cli_app  # every command registered

    try:
        # Not standalone: typer.Exit comes back as the exit code, nothing calls sys.exit.
        result = cli_app(args=args, prog_name="convolens", standalone_mode=False)
    except typer.Abort:
        return 1
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        if not isinstance(code, int):  # not click's usage error: a failure of the command
            raise
        stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return code
    return result if isinstance(result, int) else 0


def _run(service: Service, request: CommandRequest, messages: queue.Queue[dict[str, Any]]) -> None:
    stdout = _console(_Stream(messages, "stdout"), request.stdout, live=False)
    stderr = _console(_Stream(messages, "stderr"), request.stderr, live=True)
    run = BridgedRun(
        open=_opener(service, stderr), stdout=stdout, stderr=stderr, cwd=Path(request.cwd)
    )
    leave = enter(run)
    code = 1
    try:
        code = _invoke(request.args, stderr)
    except Exception as exc:  # the caller gets one line; the log keeps the traceback
        log.exception("convolens %s (run for the CLI) failed", " ".join(request.args[:1]))
        stderr.print(f"[red]error:[/] {type(exc).__name__}: {escape(str(exc))}", highlight=False)
    finally:
        leave()
        messages.put({"exit": code})


def _authorize(request: Request, token: str | None) -> None:
    client = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(client)
        mapped = getattr(address, "ipv4_mapped", None)
        loopback = (mapped or address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ApiError(404, "not_found", "Not Found")
    expected: str = request.app.state.local_token
    if not token or not secrets.compare_digest(token.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "this route takes the local token of this server only")


@router.post(COMMAND_PATH)
def run_command(request: Request, body: CommandRequest) -> StreamingResponse:
    _authorize(request, request.headers.get(TOKEN_HEADER))
    if body.version != __version__:
        raise ApiError(
            409, "version_mismatch",
            f"it runs convolens {__version__}, this command line is {body.version}: use the "
            "same installation, or stop the server",
        )  # fmt: skip
    if body.args[:1] == ["serve"]:
        raise ApiError(400, "bad_request", "'serve' does not run through a server")
    service = get_service(request)
    messages: queue.Queue[dict[str, Any]] = queue.Queue()
    # Its own thread, not the request's: the command goes on (and releases what it holds)
    # even if the caller goes away; the response only relays what it prints.
    threading.Thread(
        target=_run, args=(service, body, messages), name="convolens-cli", daemon=True
    ).start()

    def relay() -> Iterator[bytes]:
        while True:
            try:
                message = messages.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                yield b"\n"  # heartbeat: the command is still running
                continue
            yield json.dumps(message).encode() + b"\n"
            if "exit" in message:
                return

    return StreamingResponse(relay(), media_type="application/x-ndjson")
