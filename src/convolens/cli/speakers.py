"""`convolens speakers ...`: enrol known voices (agents), list them, remove them.

Recordings ingested afterwards name the separated speakers that match an enrolled voice
and give them its role (speech/identity.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from convolens.cli.main import _DEFAULT_DB, DbOption, _open, app, console, err
from convolens.model import Role

__all__: list[str] = []

speakers_app = typer.Typer(
    help="Known voices: enrol an agent from a few seconds of audio; recordings ingested "
    "afterwards name the speakers that match.",
    no_args_is_help=True,
)
app.add_typer(speakers_app, name="speakers")


@speakers_app.command("enrol")
def enrol(
    name: Annotated[str, typer.Argument(help="The name speakers who match will take.")],
    file: Annotated[
        Path, typer.Argument(help="A recording of this person alone (>= 3 s of speech).")
    ],
    role: Annotated[Role, typer.Option(help="The role that comes with the name.")] = Role.agent,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Enrol (or re-enrol) a voice from a recording of that person speaking alone."""
    from convolens.speech.decode import AudioDecodeError
    from convolens.speech.identity import EnrolmentError
    from convolens.speech.voices import enrol_voice

    if not file.is_file():
        err.print(f"[red]error:[/] {escape(file.name)}: no such file", soft_wrap=True)
        raise typer.Exit(1)
    with _open(db) as warehouse:
        try:
            done = enrol_voice(warehouse, name, file, role=role)
        except (EnrolmentError, AudioDecodeError) as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
    verb = "re-enrolled" if done["replaced"] else "enrolled"
    console.print(
        f"{verb} {escape(done['name'])} ({done['role']}) from {done['speech_seconds']:.1f} s "
        f"of speech in {escape(file.name)}"
    )


@speakers_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """The enrolled voices (names and roles; the prints themselves are never shown)."""
    from convolens.speech.voices import list_voices

    with _open(db, read_only=True) as warehouse:
        rows = list_voices(warehouse)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("no voices enrolled; add one with: convolens speakers enrol NAME FILE")
        return
    table = Table("name", "role", "speech s", "model", "enrolled")
    for row in rows:
        table.add_row(
            escape(row["name"]),
            row["role"],
            f"{row['speech_seconds']:.1f}",
            row["model"],
            f"{row['enrolled_at']:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@speakers_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The enrolled name.")],
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Forget an enrolled voice (conversations already named keep their names)."""
    from convolens.speech.voices import remove_voice

    with _open(db) as warehouse:
        removed = remove_voice(warehouse, name)
    if not removed:
        err.print(f"[red]error:[/] no voice enrolled as {escape(name)!r}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"removed {escape(name)}")
