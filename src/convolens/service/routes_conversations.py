"""Submitting work and reading results: conversations, uploads, jobs, aggregates."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam

from convolens.client.models import (
    Accepted,
    Aggregates,
    ConversationIn,
    ConversationList,
    ConversationSummary,
    Deleted,
)
from convolens.ingest.audio import MEDIA_SUFFIXES
from convolens.ingest.json_conversations import RecordError, conversation_from_record
from convolens.ingest.mapping import MappingError, parse_mapping_text
from convolens.ingest.registry import adapter_names
from convolens.model import conversation_id_for
from convolens.service import results, understanding
from convolens.service.auth import Principal, Role, require
from convolens.service.errors import ApiError, ErrorResponse, public_reason
from convolens.service.jobs import Job, JobQueue
from convolens.service.params import Moment
from convolens.service.schemas import ConversationOut, LabelOut, MetricsOut, UtteranceOut
from convolens.service.state import Caller, Db, Service, get_service
from convolens.service.uploads import known_form_fields, receive
from convolens.service.webhook_targets import job_webhook_url
from convolens.store.erase import erase_conversation
from convolens.store.private import private_dir, private_file

__all__ = ["router"]

log = logging.getLogger("convolens.service")
# Far past any real list, and small enough for DuckDB's OFFSET (a BIGINT).
MAX_OFFSET = 1_000_000_000

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422)
}
router = APIRouter(prefix="/v1", responses=ERRORS)
ConversationRef = Annotated[
    str,
    PathParam(
        description="The conversation: its convolens id (cv-...) or its source id, e.g. "
        "the ticket number or chat id it had where it came from (409 if ambiguous).",
        examples=["cv-7a7cfeadef9138b29bc8", "chat-20261106-0010"],
    ),
]


def _spool(service: Service, name: str) -> Path:
    # Spooled bodies and files hold raw text: owner-only, like the warehouse.
    folder = private_dir(service.settings.spool_dir() / datetime.now().strftime("%Y%m%d"))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-100:] or "upload"
    return folder / f"{uuid.uuid4().hex[:12]}-{safe}"


def _accepted(job_id: str, ids: list[str]) -> Accepted:
    return Accepted(
        conversation_id=ids[0] if ids else None,
        conversation_ids=ids,
        job_id=job_id,
        status_url=f"/v1/jobs/{job_id}",
    )


@router.post("/conversations", status_code=202, response_model=Accepted, tags=["submit"])
def submit_conversation(
    body: ConversationIn,
    request: Request,
    db: Db,
    caller: Caller,
    webhook_url: Annotated[str | None, Query(description="Called when the job ends.")] = None,
) -> Accepted:
    """Submit a text conversation; returns at once with its id and the job that labels it."""
    service = get_service(request)
    require(caller, Role.admin, Role.analyst, Role.agent)
    hook = job_webhook_url(webhook_url, caller, service.webhook_policy)
    record = body.model_dump(exclude_none=True)
    if caller.role == Role.agent:
        record["agent"] = caller.agent  # an agent submits their own conversations
    try:
        encoded = json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):  # a lone surrogate ("\ud800") is not text
        raise ApiError(
            422, "invalid_conversation", "the body holds a string that is not valid Unicode"
        ) from None
    try:
        conversation = conversation_from_record(
            record, default_system="api", default_channel="chat"
        )
    except (RecordError, ValueError) as exc:
        raise ApiError(422, "invalid_conversation", str(exc)) from None
    except Exception as exc:  # no body may make a 500
        # An adapter bug on an odd body (the adapter should have said RecordError): the
        # client still learns it is the body, and what kind of problem, never a trace.
        log.warning("submitted conversation not readable: %s", public_reason(exc))
        raise ApiError(
            422,
            "invalid_conversation",
            f"the conversation could not be read ({public_reason(exc)}): check field types",
        ) from None
    # A new version only from a key allowed to write this conversation (409 otherwise).
    results.check_writable(db, caller, conversation.conversation_id)
    path = _spool(service, f"{body.id or 'conversation'}.json")
    with private_file(path) as out:
        out.write(encoded)
    job_id = service.queue.submit(
        db,
        "ingest",
        {"input_path": str(path), "format": "json", "source_system": "api",
         "conversation_ids": [conversation.conversation_id]},
        conversation_id=conversation.conversation_id,
        input_path=path,
        webhook_url=hook,
        created_by=caller.key_id,
    )  # fmt: skip
    return _accepted(job_id, [conversation.conversation_id])


_UPLOAD_FIELDS = ("file", "format", "metadata", "language", "webhook_url", "mapping")


@router.post(
    "/uploads",
    status_code=202,
    response_model=Accepted,
    tags=["submit"],
    dependencies=[Depends(known_form_fields(*_UPLOAD_FIELDS))],
)
def upload(
    request: Request,
    db: Db,
    caller: Caller,
    file: Annotated[UploadFile, File(description="Audio/video, or a chat/email/ticket export.")],
    format: Annotated[str | None, Form(description="Input format; detected if absent.")] = None,
    metadata: Annotated[
        str | None, Form(description="JSON sidecar for a recording (speakers, roles, id).")
    ] = None,
    language: Annotated[str | None, Form()] = None,
    webhook_url: Annotated[str | None, Form()] = None,
    mapping: Annotated[
        str | None,
        Form(
            description="Field mapping for JSON/JSONL or CSV of another shape: the text of a "
            "mapping file (TOML, as in examples/mappings/) or the same as JSON, e.g. "
            '{"messages": {"path": "dialogContent[*]", "text": "message", '
            '"author": "sender.name"}, "roles": {"client": "customer"}}. See docs/ingest.md.'
        ),
    ] = None,
) -> Accepted:
    """Upload a file; returns at once with the job that ingests and labels it."""
    service = get_service(request)
    require(caller, Role.admin, Role.analyst, Role.agent)
    # Everything that can refuse the request is checked before a byte is spooled.
    format = format or None  # an empty form field: detect the format
    if format is not None and format not in adapter_names():
        known = ", ".join(adapter_names())
        raise ApiError(422, "invalid_format", f"unknown format {format!r}; formats: {known}")
    hook = job_webhook_url(webhook_url, caller, service.webhook_policy)
    sidecar = _sidecar(metadata)
    field_mapping: dict[str, Any] = {}
    if mapping:
        try:
            parsed_mapping = parse_mapping_text(mapping, source="mapping")
        except MappingError as exc:
            raise ApiError(422, "invalid_mapping", str(exc)[:500]) from None
        field_mapping = parsed_mapping.model_dump(exclude_defaults=True)
        format = format or parsed_mapping.format
    limit = service.settings.max_upload_bytes
    path = _spool(service, file.filename or "upload")
    try:
        digest, size = receive(file, path, limit)
        if size == 0:
            raise ApiError(422, "empty_upload", "the uploaded file is empty")
        ids: list[str] = []
        if path.suffix.lower() in MEDIA_SUFFIXES:
            if sidecar.get("id") is not None:
                source = str(sidecar.get("source") or "audio")
                ids = [conversation_id_for(source, str(sidecar["id"]))]
            else:
                ids = [conversation_id_for("audio", f"sha256:{digest[:32]}")]
        for cid in ids:  # known now: refuse at once (the job checks each one again)
            results.check_writable(db, caller, cid)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if metadata:
        with private_file(path.with_name(path.stem + ".meta.json")) as out:
            out.write(metadata.encode("utf-8"))
    job_id = service.queue.submit(
        db,
        "ingest",
        {"input_path": str(path), "format": format, "language": language,
         "conversation_ids": ids, "filename": file.filename, "mapping": field_mapping},
        conversation_id=ids[0] if ids else None,
        input_path=path,
        webhook_url=hook,
        created_by=caller.key_id,
    )  # fmt: skip
    return _accepted(job_id, ids)


def _sidecar(metadata: str | None) -> dict[str, Any]:
    if not metadata:
        return {}
    try:
        sidecar = json.loads(metadata)
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, "invalid_metadata", f"metadata is not JSON: {exc}") from None
    if not isinstance(sidecar, dict):
        raise ApiError(422, "invalid_metadata", "metadata must be a JSON object")
    try:
        metadata.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "invalid_metadata", "metadata is not valid Unicode") from None
    return sidecar


@router.get("/jobs/{job_id}", response_model=Job, tags=["jobs"])
def get_job(job_id: str, db: Db, caller: Caller) -> Job:
    """Status (scheduled, running, completed, failed), progress, error detail, result."""
    job = JobQueue.get(db, job_id)
    if job is None or (
        caller.role not in (Role.admin, Role.analyst) and job.created_by != caller.key_id
    ):
        raise ApiError(404, "job_not_found", f"no job {job_id!r}")
    return job


@router.get("/jobs", response_model=list[Job], tags=["jobs"])
def list_jobs(
    db: Db,
    caller: Caller,
    status: Annotated[str | None, Query(pattern="^(scheduled|running|completed|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Job]:
    mine = None if caller.role in (Role.admin, Role.analyst) else caller.key_id
    return JobQueue.list(db, status=status, created_by=mine, limit=limit)


def _text_reader(caller: Principal) -> None:
    if not caller.reads_text:
        raise ApiError(403, "forbidden", "a viewer key sees aggregates only (GET /v1/aggregates)")


@router.get("/conversations", response_model=ConversationList, tags=["results"])
def list_conversations(
    db: Db,
    caller: Caller,
    channel: str | None = None,
    agent: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    intent: str | None = None,
    topic: str | None = None,
    sentiment: Annotated[str | None, Query(pattern="^(negative|neutral|positive)$")] = None,
    tracker: str | None = None,
    signal: str | None = None,
    q: Annotated[str | None, Query(description="Free text in subject or messages.")] = None,
    conversation_type: Annotated[
        str | None,
        Query(
            alias="type",
            pattern="^(support|sales|meeting|interview|other)$",
            description="The conversation type (support, sales, meeting, interview, other).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ConversationList:
    """Conversations, newest first, filtered by channel, dates, agent, labels or text."""
    _text_reader(caller)
    where, params = results.conversation_filter_sql(
        caller, channel=channel, agent=agent, since=since, until=until, intent=intent,
        topic=topic, sentiment=sentiment, tracker=tracker, signal=signal, q=q,
        conversation_type=conversation_type,
    )  # fmt: skip
    total = db.query(f"SELECT count(*) AS n FROM conversations_current c{where}", params)[0]["n"]
    rows = db.query(
        "SELECT c.conversation_id, c.source_id, c.channel, c.started_at, c.subject, c.agent, "
        "c.utterance_count, "
        "(SELECT l.value->>'intent' FROM labels_current l WHERE l.conversation_id = "
        "c.conversation_id AND l.label = 'intent.primary' LIMIT 1) AS primary_intent, "
        "(SELECT l.value->>'label' FROM labels_current l WHERE l.conversation_id = "
        "c.conversation_id AND l.label = 'sentiment.conversation' LIMIT 1) AS sentiment, "
        "(SELECT l.value->>'type' FROM labels_current l WHERE l.conversation_id = "
        "c.conversation_id AND l.label = 'conversation.type' LIMIT 1) AS conversation_type "
        f"FROM conversations_current c{where} "
        f"ORDER BY c.started_at DESC NULLS LAST, c.conversation_id LIMIT {limit} OFFSET {offset}",
        params,
    )
    return ConversationList(
        total=total,
        items=[ConversationSummary(**{**r, "started_at": _iso(r["started_at"])}) for r in rows],
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get(
    "/conversations/{conversation_id}",
    tags=["results"],
    response_model=ConversationOut,
    response_model_exclude_unset=True,  # a part not asked for is absent, not null
)
def get_conversation(
    conversation_id: ConversationRef,
    db: Db,
    caller: Caller,
    words: Annotated[bool, Query(description="Include word timings.")] = False,
    parts: Annotated[
        str | None,
        Query(
            description="Comma-separated parts to include; default all: "
            + ", ".join(results.PARTS),
            examples=["sentiment,intents,summary"],
        ),
    ] = None,
) -> dict[str, Any]:
    """Everything about one conversation in one call: header, utterances, metrics, and
    each part's labels with evidence and lineage."""
    _text_reader(caller)
    header = results.find_conversation(db, caller, conversation_id)
    cid = header["conversation_id"]
    chosen = [p.strip() for p in parts.split(",")] if parts else list(results.PARTS)
    out: dict[str, Any] = {
        "conversation": header,
        "utterances": results.utterances(db, cid, words=words),
        "metrics": results.metrics(db, cid),
    }
    for name in chosen:
        out[name] = results.part(db, cid, name)
    # The type and the structured summary read for a person, beside their labels.
    if "type" in out:
        out["conversation_type"] = understanding.conversation_type(out["type"])
    if "summary" in out:
        out["structured_summary"] = understanding.structured_summary(out["summary"])
    return out


@router.get(
    "/conversations/{conversation_id}/utterances",
    tags=["results"],
    response_model=list[UtteranceOut],
    response_model_exclude_unset=True,
)
def get_utterances(
    conversation_id: ConversationRef,
    db: Db,
    caller: Caller,
    words: Annotated[bool, Query(description="Include word timings (recordings).")] = False,
) -> list[dict[str, Any]]:
    """The messages or speech turns in order, text as stored (redacted at intake)."""
    _text_reader(caller)
    cid = results.find_conversation(db, caller, conversation_id)["conversation_id"]
    return results.utterances(db, cid, words=words)


@router.get(
    "/conversations/{conversation_id}/metrics",
    tags=["results"],
    response_model=MetricsOut,
    response_model_exclude_unset=True,
)
def get_metrics(conversation_id: ConversationRef, db: Db, caller: Caller) -> dict[str, Any]:
    """Conversation dynamics (docs/metrics.md): the conversation's and each participant's."""
    _text_reader(caller)
    cid = results.find_conversation(db, caller, conversation_id)["conversation_id"]
    return results.metrics(db, cid)


@router.get("/conversations/{conversation_id}/raw", tags=["results"])
def get_raw(
    conversation_id: ConversationRef,
    db: Db,
    caller: Caller,
    confirm: Annotated[
        bool, Query(description="Must be true: raw records hold unredacted PII.")
    ] = False,
) -> list[dict[str, Any]]:
    """The raw records as received (unredacted): admin keys only, and only with confirm=true."""
    require(caller, Role.admin)
    if not confirm:
        raise ApiError(
            422, "confirm_required", "raw records hold unredacted text: pass confirm=true"
        )
    cid = results.find_conversation(db, caller, conversation_id)["conversation_id"]
    rows = db.query(
        "SELECT raw_id, version, source_format, locator, encoding, received_at, "
        "decode(payload) AS payload FROM raw_interactions WHERE conversation_id = ? "
        "ORDER BY version, raw_id",
        [cid],
    )
    return [{**r, "received_at": _iso(r["received_at"])} for r in rows]


@router.get(
    "/conversations/{conversation_id}/{part}",
    tags=["results"],
    response_model=list[LabelOut],
    response_model_exclude_unset=True,
)
def get_part(
    conversation_id: ConversationRef,
    part: Annotated[
        str,
        PathParam(description="The part: " + ", ".join(results.PARTS) + ".", examples=["trackers"]),
    ],
    db: Db,
    caller: Caller,
) -> list[dict[str, Any]]:
    """One part: type, sentiment, intents, topics, entities, questions, action_items,
    trackers, signals, resolution, summary or pii."""
    _text_reader(caller)
    cid = results.find_conversation(db, caller, conversation_id)["conversation_id"]
    return results.part(db, cid, part)


@router.delete("/conversations/{conversation_id}", response_model=Deleted, tags=["results"])
def delete_conversation(
    conversation_id: ConversationRef, request: Request, db: Db, caller: Caller
) -> Deleted:
    """Delete a conversation (all versions) and every copy of it: everything derived, the
    raw layer, its jobs, webhook deliveries and spooled uploads, and the freed bytes of
    the warehouse file."""
    require(caller, Role.admin)
    cid = results.find_conversation(db, caller, conversation_id)["conversation_id"]
    service = get_service(request)
    # A running job would write the conversation again after the delete.
    running = db.query(
        "SELECT 1 FROM jobs WHERE status = 'running' AND (conversation_id = ? OR "
        "contains(coalesce(CAST(request AS VARCHAR), ''), ?)) LIMIT 1",
        [cid, cid],
    )
    if running:
        raise ApiError(
            409,
            "job_running",
            "a job is processing this conversation: delete it once the job has ended",
        )
    # Not while a labelling run may be writing rows for it.
    with service.pipeline.label_lock:
        erased = erase_conversation(db, cid, spool=service.settings.spool_dir())
    return Deleted(conversation_id=cid, rows=erased.rows)


@router.get("/aggregates", response_model=Aggregates, tags=["results"])
def aggregates(
    db: Db,
    caller: Caller,
    since: Moment | None = None,
    until: Moment | None = None,
    channel: str | None = None,
) -> Aggregates:
    """Counts across conversations (every role; agents see their own conversations')."""
    where, params = results.conversation_filter_sql(
        caller, since=since, until=until, channel=channel
    )
    scope = f"SELECT conversation_id FROM conversations_current c{where}"

    def counts(label: str, field: str) -> dict[str, int]:
        rows = db.query(
            f"SELECT value->>'{field}' AS k, count(DISTINCT conversation_id) AS n "
            f"FROM labels_current WHERE label = '{label}' AND conversation_id IN ({scope}) "
            "GROUP BY 1 ORDER BY 2 DESC, 1",
            params,
        )
        return {str(r["k"]): int(r["n"]) for r in rows if r["k"] is not None}

    head = db.query(
        f"SELECT count(*) AS n, coalesce(sum(utterance_count), 0) AS u "
        f"FROM conversations_current c{where}",
        params,
    )[0]
    channels = db.query(
        f"SELECT channel, count(*) AS n FROM conversations_current c{where} GROUP BY 1", params
    )
    mean = db.query(
        "SELECT avg(CAST(value->>'score' AS DOUBLE)) AS m FROM labels_current "
        f"WHERE label = 'sentiment.conversation' AND conversation_id IN ({scope})",
        params,
    )[0]["m"]
    return Aggregates(
        conversations=int(head["n"]),
        utterances=int(head["u"]),
        by_channel={r["channel"]: int(r["n"]) for r in channels},
        primary_intents=counts("intent.primary", "intent"),
        sentiment=counts("sentiment.conversation", "label"),
        signals=counts("signal", "signal"),
        trackers=counts("tracker.match", "tracker"),
        mean_sentiment=round(float(mean), 4) if mean is not None else None,
    )


@router.get("/health", tags=["service"], responses={})
def health(request: Request) -> dict[str, Any]:
    service = get_service(request)
    # `ready`: the models have loaded (a readiness probe; the API answers before that).
    return {"status": "ok", "workers": service.settings.workers, "ready": service.ready}
