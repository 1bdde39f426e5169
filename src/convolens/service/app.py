"""The FastAPI application: `/v1` REST (and the realtime stream), over the library.

`create_app(settings)` builds it; `convolens serve` runs it with uvicorn. The app's
lifespan opens the warehouse, starts the job workers (recovering jobs a killed server
left running), and loads the models in the background.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from convolens import __version__
from convolens.service.auth import hand_over_generated_key
from convolens.service.definitions import overrides
from convolens.service.errors import install_error_handlers
from convolens.service.routes_audio import dashboard_router as audio_pages
from convolens.service.routes_audio import router as audio_router
from convolens.service.settings import ServiceSettings
from convolens.service.state import Service

__all__ = ["create_app"]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    service = Service(settings)
    service.queue.handlers["reprocess"] = service.pipeline.run_reprocess_job
    service.pipeline.overrides = overrides(service.warehouse)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        retention.start()
        if service.admin_key:
            # Shown once (only its hash is stored), and never into a log file.
            line = hand_over_generated_key(
                service.admin_key, settings.db, terminal=sys.stdout.isatty()
            )
            print(line, flush=True)
        try:
            yield
        finally:
            retention.stop()
            service.stop()

    app = FastAPI(
        title="convolens",
        version=__version__,
        summary="Self-hosted conversation intelligence: submit conversations, get insights.",
        lifespan=lifespan,
        # /docs and /redoc are served with local assets (api_docs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    from convolens.service import api_docs

    api_docs.install(app)
    from convolens.service import (
        routes_admin,
        routes_analytics,
        routes_conversations,
        routes_governance,
        routes_scorecards,
        routes_stream,
    )

    # Before the conversations' routes: their /conversations/{id}/{part} would take /audio.
    app.include_router(audio_router)
    app.include_router(audio_pages)
    app.include_router(routes_conversations.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_stream.router)
    app.include_router(routes_analytics.router)
    app.include_router(routes_scorecards.router)
    from convolens.service import routes_review

    app.include_router(routes_review.router)
    service.queue.handlers["taxonomy_validate"] = routes_review.run_validation_job
    app.include_router(routes_governance.router)
    from convolens.service import routes_quarantine

    app.include_router(routes_quarantine.router)
    retention = routes_governance.scheduler(app, service)
    from convolens.service import routes_health

    app.include_router(routes_health.router)
    from convolens.service import routes_speakers

    app.include_router(routes_speakers.router)  # enrolled voices (#14), admins only
    service.queue.handlers["clusters"] = routes_analytics.run_clusters_job
    service.queue.handlers["scorecards"] = routes_scorecards.run_scoring_job
    from convolens.dashboard import review as dashboard_review
    from convolens.dashboard import routes as dashboard_routes

    app.include_router(dashboard_review.router)
    from convolens.dashboard import erasure as dashboard_erasure
    from convolens.dashboard import taxonomies as dashboard_taxonomies

    app.include_router(dashboard_taxonomies.router)
    app.include_router(dashboard_erasure.router)

    app.include_router(dashboard_routes.router)
    from convolens.dashboard import audit as dashboard_audit

    app.include_router(dashboard_audit.router)
    from convolens.dashboard import health as dashboard_health

    app.include_router(dashboard_health.router)
    from convolens.service import bridge

    bridge.install(app)  # CLI commands run through the server that holds the warehouse
    from convolens.audit.http import AuditMiddleware

    # Outermost but the error handler: every audited request gets its row (and its id).
    app.add_middleware(AuditMiddleware)
    return app
