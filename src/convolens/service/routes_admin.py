"""Management: API keys, taxonomies and tracker sets (versioned)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from convolens.service import definitions, webhooks
from convolens.service.auth import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyInfo,
    Role,
    create_key,
    list_keys,
    require,
    revoke_key,
)
from convolens.service.definitions import COMPONENT, Definition, DefinitionCreate, Kind
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.state import Caller, Db, get_service
from convolens.service.webhook_targets import api_target
from convolens.service.webhooks import Delivery, DeliveryStatus, Webhook, WebhookCreate

__all__ = ["router"]

router = APIRouter(
    prefix="/v1",
    responses={code: {"model": ErrorResponse} for code in (401, 403, 404, 422)},
)


@router.post("/keys", status_code=201, response_model=ApiKeyCreated, tags=["admin"])
def new_key(body: ApiKeyCreate, db: Db, caller: Caller) -> ApiKeyCreated:
    """Create an API key; the key itself is in this response only (it is stored hashed)."""
    require(caller, Role.admin)
    return create_key(db, body, caller.key_id)


@router.get("/keys", response_model=list[ApiKeyInfo], tags=["admin"])
def keys(db: Db, caller: Caller) -> list[ApiKeyInfo]:
    require(caller, Role.admin)
    return list_keys(db)


@router.delete("/keys/{key_id}", status_code=204, tags=["admin"])
def delete_key(key_id: str, db: Db, caller: Caller) -> None:
    require(caller, Role.admin)
    if not revoke_key(db, key_id):
        raise ApiError(404, "key_not_found", f"no active key {key_id!r}")


KindPath = Annotated[Kind, Path(description="taxonomy or trackers")]


@router.post("/definitions/{kind}", status_code=201, response_model=Definition, tags=["admin"])
def create_definition(
    kind: KindPath, body: DefinitionCreate, request: Request, db: Db, caller: Caller
) -> Definition:
    """Store a new version of a taxonomy or a tracker set (validated first). With
    `activate`, the pipeline labels with it from now on and a job relabels the current
    conversations (its id is in `summary.job_id`)."""
    require(caller, Role.admin)
    created = definitions.store_definition(db, kind, body, caller.key_id)
    if body.activate:
        service = get_service(request)
        config = definitions.overrides(db)[COMPONENT[kind]]
        job_id = service.queue.submit(
            db,
            "reprocess",
            {"component": COMPONENT[kind], "config": config},
            created_by=caller.key_id,
        )
        created.summary["job_id"] = job_id
    return created


@router.get("/definitions/{kind}", response_model=list[Definition], tags=["admin"])
def get_definitions(
    kind: KindPath, db: Db, caller: Caller, content: bool = False
) -> list[Definition]:
    """Every version of every taxonomy (or tracker set), which one is active."""
    require(caller, Role.admin, Role.analyst)
    return definitions.list_definitions(db, kind, content=content)


class WebhookCreated(Webhook):
    secret: str  # shown once: receivers verify X-Convolens-Signature with it


@router.post("/webhooks", status_code=201, response_model=WebhookCreated, tags=["webhooks"])
def new_webhook(body: WebhookCreate, request: Request, db: Db, caller: Caller) -> WebhookCreated:
    """Register a URL for events (job.completed, job.failed, alert, tracker.hit,
    signal.churn_risk, sentiment.negative_streak, or "*"), optionally filtered by a rule;
    deliveries are signed (HMAC-SHA256) and retried with backoff."""
    require(caller, Role.admin)
    # Only public hosts (plus CONVOLENS_WEBHOOK_ALLOW_HOSTS), checked after DNS resolution.
    api_target(body.url, get_service(request).webhook_policy)
    hook, secret = webhooks.create_webhook(db, body, caller.key_id)
    return WebhookCreated(**hook.model_dump(), secret=secret)


@router.get("/webhooks", response_model=list[Webhook], tags=["webhooks"])
def get_webhooks(db: Db, caller: Caller) -> list[Webhook]:
    require(caller, Role.admin)
    return webhooks.list_webhooks(db)


@router.delete("/webhooks/{hook_id}", status_code=204, tags=["webhooks"])
def delete_webhook(hook_id: str, db: Db, caller: Caller) -> None:
    require(caller, Role.admin)
    if not webhooks.delete_webhook(db, hook_id):
        raise ApiError(404, "webhook_not_found", f"no active webhook {hook_id!r}")


@router.get("/webhooks/deliveries", response_model=list[Delivery], tags=["webhooks"])
def deliveries(
    db: Db,
    caller: Caller,
    hook_id: str | None = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Delivery]:
    """The delivery log, newest first: attempts, response status, last error."""
    require(caller, Role.admin)
    return webhooks.list_deliveries(db, hook_id, status=status, limit=limit)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", status_code=202, tags=["webhooks"])
def redeliver(delivery_id: str, request: Request, db: Db, caller: Caller) -> dict[str, str]:
    require(caller, Role.admin)
    if not webhooks.redeliver(db, delivery_id):
        raise ApiError(404, "delivery_not_found", f"no finished delivery {delivery_id!r}")
    get_service(request).webhooks.notify()
    return {"delivery_id": delivery_id, "status": "pending"}
