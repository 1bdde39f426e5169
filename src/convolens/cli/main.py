"""The `convolens` command line: parses options, calls the library, renders with Rich."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from convolens import __version__, render
from convolens.analyze import analyze as run_analyze
from convolens.cli import remote
from convolens.cli.engine_options import (
    AddressOption,
    EngineChoice,
    EngineOption,
    LakeOption,
    WorkersOption,
    opened_engine,
    use_lake,
)
from convolens.engine import Engine
from convolens.engine.recordings import ingest_on
from convolens.enrich.config import ComponentSettings, active_definitions, load_component_settings
from convolens.enrich.pii.policy import PiiConfig
from convolens.enrich.registry import (
    DEFAULT_COMPONENTS,
    component_class,
    component_names,
    get_component,
)
from convolens.enrich.runner import enrich
from convolens.ingest.audio import MEDIA_SUFFIXES
from convolens.ingest.base import IngestOptions, describe_validation_error, parse_timestamp
from convolens.ingest.csv_messages import CANONICAL_COLUMNS
from convolens.ingest.mapping import FieldMapping, MappingError, load_mapping, mapping_from_pairs
from convolens.ingest.pipeline import dry_run_preview
from convolens.ingest.redact_intake import intake_redactor
from convolens.ingest.registry import adapter_names
from convolens.speech.audio_redaction import recordings_without_copy, redact_recordings
from convolens.speech.options import SpeechOptions
from convolens.store.warehouse import Warehouse, WarehouseError

app = typer.Typer(
    name="convolens",
    help="Conversation intelligence on your own machine: ingest chats, emails, tickets and "
    "transcripts into a DuckDB warehouse, measure conversation dynamics, and report.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
# Plain consoles in a CLI process; inside `convolens serve`, running a command for the CLI
# (see cli/remote.py), each prints to that command's caller.
console = remote.routed_console()
err = remote.routed_console(stderr=True)

DbOption = Annotated[
    Path,
    typer.Option("--db", envvar="CONVOLENS_DB", help="Warehouse file (DuckDB).", show_default=True),
]
_DEFAULT_DB = Path("convolens.duckdb")


def _open(db: Path, *, read_only: bool = False) -> Warehouse:
    """The warehouse for a command. While `convolens serve` holds the file (DuckDB lets one
    process open it), the whole command runs in that server instead and this process only
    prints what it sends back; see cli/remote.py."""
    try:
        bridged = remote.current()
        if bridged is not None:  # this is the server, running the command for a CLI
            return bridged.open(db, read_only)
        server = remote.find_server(db)
        if server is not None:
            code = remote.run_through(server, db, remote.current_context(), err)
            if code is not None:
                raise typer.Exit(code)
        return Warehouse(db, read_only=read_only)
    except WarehouseError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


def _progress() -> Progress:
    # Elapsed and remaining: labelling 500 conversations or transcribing an hour of audio
    # takes minutes, and a bar without an estimate does not say whether to wait.
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=remote.console_for(err),
        transient=True,
        # In a server running this command, sys.stdout is the server's, not the caller's.
        redirect_stdout=remote.current() is None,
        redirect_stderr=remote.current() is None,
    )


def _version(value: bool) -> None:
    if value:
        console.print(f"convolens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """convolens command line."""
    # Warehouses, spools and exports hold raw conversation text: whatever this process
    # creates is owner-only (0600 files, 0700 folders).
    from convolens.store.private import restrict_umask

    restrict_umask()


# -- ingest -------------------------------------------------------------------------------
def _mapping(pairs: list[str], mapping_file: Path | None) -> FieldMapping:
    """The mapping file (if any) with the `--map` pairs on top; exit 2 on a bad one."""
    try:
        base = load_mapping(mapping_file) if mapping_file is not None else None
        return mapping_from_pairs(pairs, base, csv_fields=CANONICAL_COLUMNS)
    except MappingError as exc:
        where = "--mapping" if mapping_file is not None and not pairs else "--map/--mapping"
        err.print(f"[red]error:[/] {where}: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Force a format instead of detecting it (see `convolens formats`).",
        ),
    ] = None,
    db: DbOption = _DEFAULT_DB,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=PATH (repeatable): a CSV column (--map text=body) or a JSON path "
            "(--map messages='dialogContent[*]' --map author=sender.name); see docs/ingest.md.",
        ),
    ] = None,
    mapping_file: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            "--mapping-file",
            help="Mapping file (TOML): JSON paths, role values, CSV columns; "
            "examples in examples/mappings/.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what the first records become; write nothing."),
    ] = False,
    channel: Annotated[
        str | None, typer.Option(help="Channel for sources that do not say.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source system to record (overrides).")] = None,
    agent_domain: Annotated[
        list[str] | None,
        typer.Option("--agent-domain", help="Email domain of your agents (repeatable)."),
    ] = None,
    analyze: Annotated[
        bool, typer.Option("--analyze", help="Compute metrics right after.")
    ] = False,
    engine: EngineOption = EngineChoice.local,
    address: AddressOption = None,
    workers: WorkersOption = 2,
    model: Annotated[
        str, typer.Option(help="Whisper model: base, tiny.en, or a CTranslate2 model folder.")
    ] = "base",
    language: Annotated[
        str | None, typer.Option(help="Spoken language (e.g. en); detected when omitted.")
    ] = None,
    speakers: Annotated[
        int | None, typer.Option(help="Speakers in mono recordings (default 2 for calls).")
    ] = None,
    channels: Annotated[
        str, typer.Option(help="auto (split differing channels), split, or mono.")
    ] = "auto",
    batch_size: Annotated[
        int | None, typer.Option(help="Batched transcription (faster on long files).")
    ] = None,
    hotwords: Annotated[
        str | None, typer.Option(help="Words to favour: product and company names.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="CONVOLENS_CONFIG",
            help="TOML with [components.NAME] settings: [components.pii] is the redaction "
            "policy applied before anything is stored.",
        ),
    ] = None,
) -> None:
    """Ingest conversations from files or folders (formats auto-detected); text is
    redacted before it is stored (docs/privacy.md)."""
    if fmt is not None and fmt not in adapter_names():
        err.print(
            f"[red]error:[/] unknown format {fmt!r}; choose one of: {', '.join(adapter_names())}"
        )
        raise typer.Exit(2)
    try:
        speech = SpeechOptions(
            model=model,
            language=language,
            num_speakers=speakers,
            channels=channels,  # type: ignore[arg-type]
            batch_size=batch_size,
            hotwords=hotwords,
        )
    except ValidationError as exc:
        err.print(f"[red]error:[/] {describe_validation_error(exc)}")
        raise typer.Exit(2) from None
    mapping = _mapping(map_ or [], mapping_file)
    fmt = fmt or mapping.format
    try:
        settings = load_component_settings(config)
        pii = PiiConfig.model_validate(settings.config("pii"))
    except ValueError as exc:  # pydantic.ValidationError too
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    options = IngestOptions(
        csv_mapping=mapping.columns,
        mapping=mapping.model_dump(exclude_defaults=True),
        default_channel=channel,
        source_system=source,
        agent_domains=agent_domain or [],
        speech=speech,
    )
    if dry_run:
        # No warehouse is opened: nothing is written, not even an empty file.
        code = render.print_dry_run(console, dry_run_preview(paths, fmt=fmt, options=options))
        raise typer.Exit(code)
    redaction = intake_redactor(pii) if settings.enabled("pii") else None
    with (
        _open(db) as warehouse,
        opened_engine(engine, address, workers) as running,
        _progress() as progress,
    ):
        task = progress.add_task("Ingesting", total=None)
        media: dict[Path, TaskID] = {}
        waiting: set[Path] = set()  # recordings with no progress yet

        def media_progress(path: Path, done: float, total: float) -> None:
            waiting.discard(path)
            if path not in media:
                media[path] = progress.add_task("", total=total)
            progress.update(
                media[path],
                total=total,
                completed=done,
                description=f"Transcribing {path.name} (s of audio)",
            )
            if done >= total:
                progress.remove_task(media.pop(path))

        def file_started(path: Path) -> None:
            progress.update(task, advance=1, description=f"Ingesting {path.name}")
            # A recording says nothing until its first words are recognised (the model
            # loads, the audio decodes): show it is being worked on from the start.
            for earlier in list(waiting):  # read from the warehouse, or rejected: done
                waiting.discard(earlier)
                progress.remove_task(media.pop(earlier))
            if path.suffix.lower() in MEDIA_SUFFIXES:
                waiting.add(path)
                media[path] = progress.add_task(
                    f"Transcribing {path.name} (loading the model, decoding)", total=None
                )

        report = ingest_on(
            running,
            warehouse,
            paths,
            fmt=fmt,
            options=options,
            on_start=lambda total: progress.update(task, total=total),
            on_file=file_started,
            on_media_progress=media_progress,
            redaction=redaction,
            redact=redaction is not None,
        )
        progress.stop()
        render.print_ingest(console, report)
        if report.rejects and not report.conversations:
            # Nothing good went in: a script must not mistake this for success.
            err.print("[red]error:[/] nothing ingested: every record was rejected")
            raise typer.Exit(1)
        # Each recording gets the copy with its PII beeped out that the dashboard plays.
        pii_config = settings.config("pii") if settings.enabled("pii") else None
        redact_recordings(warehouse, recordings_without_copy(warehouse), pii_config)
        if analyze:
            _analyze(warehouse, recompute=False, settings=settings)


# -- analyze ------------------------------------------------------------------------------
def _analyze(
    warehouse: Warehouse,
    *,
    recompute: bool,
    components: list[str] | None = None,
    settings: ComponentSettings | None = None,
    skip: list[str] | None = None,
    engine: Engine | None = None,
) -> None:
    with _progress() as progress:
        task = progress.add_task("Measuring dynamics", total=None)
        report = run_analyze(
            warehouse,
            recompute=recompute,
            on_start=lambda total: progress.update(task, total=total),
            on_progress=lambda n: progress.update(task, advance=n),
            engine=engine,
        )
    console.print(
        f"metrics: {report.conversations:,} conversation(s), {report.utterances:,} utterances "
        f"in {report.elapsed_s:.2f} s" + ("" if report.conversations else " (nothing was missing)")
    )
    settings = settings or ComponentSettings()
    chosen = []
    for name in DEFAULT_COMPONENTS if components is None else components:
        if name in (skip or []) or (components is None and not settings.enabled(name)):
            continue
        try:
            chosen.append(get_component(name, settings.config(name)))
        except (ImportError, ValueError) as exc:
            err.print(f"[yellow]skipped component {name}:[/] {exc}")
    if not chosen:
        return
    # One run for all components: they share each batch's utterance embeddings.
    with _progress() as progress:
        labelling = progress.add_task("Labelling: " + ", ".join(c.name for c in chosen), total=None)
        labelled = enrich(
            warehouse,
            chosen,
            recompute=recompute,
            on_start=lambda total: progress.update(labelling, total=total),
            on_progress=lambda n: progress.update(labelling, advance=n),
            engine=engine,
        )
    for component in chosen:
        found = labelled.labels.get(component.name, 0)
        console.print(f"{component.name} v{component.version}: {found:,} labels")
    console.print(
        f"labelled {labelled.conversations:,} conversation(s) in {labelled.elapsed_s:.2f} s"
    )


@app.command()
def analyze(
    db: DbOption = _DEFAULT_DB,
    recompute: Annotated[bool, typer.Option(help="Recompute even what is up to date.")] = False,
    component: Annotated[
        list[str] | None,
        typer.Option("--component", "-c", help="Only these components (repeatable)."),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Leave these components out (repeatable).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="CONVOLENS_CONFIG",
            help="TOML with [components.NAME] settings (e.g. pii operator, intents taxonomy).",
        ),
    ] = None,
    metrics_only: Annotated[
        bool, typer.Option("--metrics-only", help="Dynamics metrics only, no labelling.")
    ] = False,
    engine: EngineOption = EngineChoice.local,
    address: AddressOption = None,
    workers: WorkersOption = 2,
    lake: LakeOption = None,
) -> None:
    """Compute what is missing: dynamics metrics, then labels (PII redaction first, then
    sentiment, intents, entities, questions and action items, trackers, topics,
    resolution, signals and the summary)."""
    try:
        settings = load_component_settings(config)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    with _open(db) as warehouse, opened_engine(engine, address, workers) as running:
        use_lake(warehouse, lake)
        _analyze(
            warehouse,
            recompute=recompute,
            components=[] if metrics_only else component,
            # A taxonomy or trackers activated over the API or `convolens taxonomy
            # activate` label CLI runs too, as they do the server's.
            settings=settings.with_overrides(active_definitions(warehouse)),
            skip=skip,
            engine=running,
        )
        if not metrics_only:
            from convolens.analytics.upkeep import after_labelling

            done = after_labelling(warehouse)
            if done.stitched is not None:
                console.print(f"accounts: {done.stitched} conversations stitched")
            if done.clustered is not None:
                console.print(
                    f"clusters: {done.clustered} new conversations placed, "
                    f"{done.unclustered} unclustered"
                )


@app.command()
def components() -> None:
    """List the understanding components: what each assigns, and its version."""
    rows = []
    for name in component_names():
        try:
            cls = component_class(name)
        except ImportError as exc:
            rows.append({"component": name, "version": "-", "assigns": f"(unavailable: {exc})"})
            continue
        rows.append(
            {
                "component": name,
                "version": cls.version,
                "assigns": ", ".join(cls.assigns),
                "what": cls.description,
            }
        )
    console.print(render.table(rows, title="components"))


# -- list / show --------------------------------------------------------------------------
def _date(value: str | None, name: str) -> datetime | None:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        err.print(f"[red]error:[/] --{name}: {exc}")
        raise typer.Exit(2) from None
