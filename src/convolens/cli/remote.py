"""Running a CLI command through the `convolens serve` that holds the warehouse.

DuckDB lets one process open a warehouse file, so while a server runs, a second process
(any `convolens` command) cannot even read it. The server therefore publishes how to reach
it in a discovery file beside the warehouse (`<db>.server.json`, mode 0600: URL, pid and a
random token, see `convolens.service.bridge`), and a command that would open the file
sends its own parsed arguments there instead. The server runs the very same command
function on its open connection and streams back what it prints and its exit code, so
every command behaves the same either way, with no second copy of any command.

This module is both halves of that, seen from the CLI: finding the server and talking to
it (the client), and the context a command runs in on the server (`BridgedRun`: which
warehouse `_open` returns and where `console` and `err` print).
"""

from __future__ import annotations

import enum
import http.client
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from rich.console import Console

from convolens import __version__
from convolens.store.warehouse import Warehouse

__all__ = [
    "BridgedRun",
    "CommandRequest",
    "ServerInfo",
    "TerminalInfo",
    "console_for",
    "current",
    "current_context",
    "discovery_path",
    "find_server",
    "invocation_args",
    "local_path",
    "routed_console",
    "run_through",
]

TOKEN_HEADER = "X-Convolens-Local-Token"
COMMAND_PATH = "/_local/cli"
# The server sends an empty line at least this often, so a silent long command (the
# transcription of a recording, a labelling run) is told apart from a dead server.
HEARTBEAT_S = 5.0
READ_TIMEOUT_S = 60.0
STARTING_TRIES = 20


class ServerInfo(BaseModel):
    """The discovery file's content."""

    url: str
    pid: int
    token: str
    version: str
    db: str


class TerminalInfo(BaseModel):
    """How the caller's stdout or stderr renders, so the server's output looks the same."""

    width: int = 80
    color_system: str | None = None
    no_color: bool = False
    # A terminal gets live progress bars (their cursor movements pass through unchanged).
    terminal: bool = False

    @classmethod
    def of(cls, console: Console) -> TerminalInfo:
        return cls(
            width=console.width,
            color_system=console.color_system,
            no_color=console.no_color,
            terminal=console.is_terminal and not console.is_dumb_terminal,
        )


class CommandRequest(BaseModel):
    """One command for the server to run: argv with every path already absolute."""

    args: list[str]
    version: str
    # For the paths a command makes up itself (export's default LAYER.FORMAT).
    cwd: str
    stdout: TerminalInfo = TerminalInfo()
    stderr: TerminalInfo = TerminalInfo()


# -- the server side's context -------------------------------------------------------------
@dataclass
class BridgedRun:
    """A command running inside the server: `open(db, read_only)` hands out the server's
    own connection; `stdout` and `stderr` are consoles that stream back to the caller."""

    open: Callable[[Path, bool], Warehouse]
    stdout: Console
    stderr: Console
    cwd: Path


_RUN: ContextVar[BridgedRun | None] = ContextVar("convolens_bridged_run", default=None)


def current() -> BridgedRun | None:
    """The bridged run this thread executes, None in an ordinary CLI process."""
    return _RUN.get()


def local_path(path: Path) -> Path:
    """`path` as the caller meant it: relative to the caller's working directory."""
    run = _RUN.get()
    return run.cwd / path if run is not None and not path.is_absolute() else path


def enter(run: BridgedRun) -> Callable[[], None]:
    """Make this thread (context) run `run`; call the returned function to leave."""
    token = _RUN.set(run)
    return lambda: _RUN.reset(token)


class _RoutedConsole:
    """Looks like a rich Console. In a bridged run it forwards to that run's console (each
    server thread prints to its own caller); anywhere else to the process' own console, as
    a plain `Console()` would."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._default = Console(stderr=stderr)

    def resolve(self) -> Console:
        run = _RUN.get()
        if run is None:
            return self._default
        return run.stderr if self._stderr else run.stdout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)

    def __enter__(self) -> Console:
        return self.resolve().__enter__()

    def __exit__(self, *exc: object) -> None:
        self.resolve().__exit__(*exc)  # type: ignore[arg-type]


def routed_console(*, stderr: bool = False) -> Console:
    return cast(Console, _RoutedConsole(stderr=stderr))


def console_for(console: Console) -> Console:
    """The actual console behind a routed one, for objects that keep it and use it from
    another thread (a Progress refreshes from its own thread, outside the bridged run)."""
    return console.resolve() if isinstance(console, _RoutedConsole) else console


# -- the client ----------------------------------------------------------------------------
def discovery_path(db: Path) -> Path:
    return db.with_name(db.name + ".server.json")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's: its file is not ours to use anyway
        return True
    return True


def find_server(db: Path) -> ServerInfo | None:
    """The server that published itself beside `db`, if its process is alive. A file left
    by a killed server (its pid gone) is ignored; one whose pid was reused fails the token
    check later, and the command then opens the file itself."""
    path = discovery_path(db.resolve())  # the same file whatever path names the warehouse
    try:
        stat = path.stat()
        # Only a file of our own that nobody else could have written: in a shared folder
        # another user's file could send our arguments (paths) to their server.
        if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
            return None
        info = ServerInfo.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None
    try:
        loopback = ipaddress.ip_address(urlsplit(info.url).hostname or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback or Path(info.db) != db.resolve():
        return None
    return info if _pid_alive(info.pid) else None


def current_context() -> Any:
    """The running command's (click) context. Recent Typer carries its own copy of click;
    older versions use click itself."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import get_current_context  # type: ignore[no-redef]
    return get_current_context()


def _text(param: Any, value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    is_path = isinstance(value, PurePath) or "Path" in type(getattr(param, "type", None)).__name__
    if is_path and str(value) != "-":
        # The server has another working directory: paths travel absolute.
        return os.path.abspath(os.fspath(value))
    return str(value)


def _params(ctx: Any) -> list[str]:
    # Duck-typed (param_type_name, opts, is_flag ...): the same in click and Typer's copy.
    options: list[str] = []
    arguments: list[str] = []
    for param in ctx.command.get_params(ctx):
        if not param.expose_value or param.name is None or param.name not in ctx.params:
            continue
        value = ctx.params[param.name]
        if value is None:
            continue
        if param.param_type_name == "argument":
            values = value if isinstance(value, list | tuple) else [value]
            arguments.extend(_text(param, v) for v in values)
            continue
        if param.param_type_name != "option":
            continue
        longest = max(param.opts, key=len)
        if param.is_flag:
            if param.secondary_opts:
                options.append(longest if value else max(param.secondary_opts, key=len))
            elif value:
                options.append(longest)
        elif param.count:
            options.extend([longest] * int(value))
        elif param.multiple:
            options.extend(f"{longest}={_text(param, v)}" for v in value)
        else:
            options.append(f"{longest}={_text(param, value)}")
    # Options first, then '--': an argument that starts with '-' stays an argument.
    return options + (["--", *arguments] if arguments else [])


def invocation_args(ctx: Any) -> list[str]:
    """The argv that runs this invocation again elsewhere: subcommand names and every
    parameter as parsed (defaults and environment values included, paths absolute)."""
    chain = []
    while ctx.parent is not None:
        chain.append(ctx)
        ctx = ctx.parent
    args: list[str] = []
    for link in reversed(chain):
        assert link.info_name is not None
        args.append(link.info_name)
        args.extend(_params(link))
    return args


def _print_stream(
    line: bytes, out: Callable[[str], None], errs: Callable[[str], None]
) -> int | None:
    message = json.loads(line) if line.strip() else {}
    if "stdout" in message:
        out(message["stdout"])
    if "stderr" in message:
        errs(message["stderr"])
    return int(message["exit"]) if "exit" in message else None


def _write(stream: Any) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def run_through(server: ServerInfo, db: Path, ctx: Any, err: Console) -> int | None:
    """Run this invocation on `server`; its exit code, or None where the server cannot
    be reached or does not know the token (the caller then opens the file itself)."""
    request = CommandRequest(
        args=invocation_args(ctx),
        version=__version__,
        cwd=os.getcwd(),
        stdout=TerminalInfo.of(Console()),
        stderr=TerminalInfo.of(Console(stderr=True)),
    )
    url = urlsplit(server.url)
    # A server publishes itself once started, just before it listens: a refused
    # connection from a live server is retried for a few seconds.
    for attempt in range(STARTING_TRIES):
        connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port or 80, timeout=READ_TIMEOUT_S
        )
        try:
            connection.request(
                "POST",
                COMMAND_PATH,
                body=request.model_dump_json(),
                headers={"Content-Type": "application/json", TOKEN_HEADER: server.token},
            )
            response = connection.getresponse()
            break
        except ConnectionRefusedError:
            connection.close()
            if attempt + 1 == STARTING_TRIES or not _pid_alive(server.pid):
                return None
            time.sleep(0.25)
        except OSError:
            connection.close()
            return None
    try:
        if response.status in (403, 404):
            return None  # a stale file whose pid was reused: not our server
        if response.status != 200:
            try:
                message = json.loads(response.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status}"
            err.print(
                f"[red]error:[/] the server at {server.url}: {message}",
                highlight=False,
                soft_wrap=True,
            )
            return 1
        err.print(
            f"convolens: {db} is held by the server at {server.url}; "
            "running this command through it",
            highlight=False,
            soft_wrap=True,
        )
        out, errs = _write(sys.stdout), _write(sys.stderr)
        try:
            for line in response:
                code = _print_stream(line, out, errs)
                if code is not None:
                    return code
        except OSError:
            pass
        err.print(
            f"[red]error:[/] lost the server at {server.url} before the command finished "
            "(it may still be running there)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h\n")  # a progress bar may have hidden the cursor
        err.print(
            "interrupted: the command goes on in the server until it finishes",
            highlight=False,
        )
        return 130
    finally:
        connection.close()
