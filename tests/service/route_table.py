"""The routes the application serves, read from the app itself, so that the access tests
cover a route as soon as it exists (and fail until someone says who may call it)."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIWebSocketRoute, iter_route_contexts


def app_routes(folder: Path) -> set[tuple[str, str]]:
    """(method, path template) of every route, WEBSOCKET for WebSocket routes; the app is
    built over a throwaway warehouse in `folder` and never started."""
    from convolens.service.app import create_app
    from convolens.service.settings import ServiceSettings

    settings = ServiceSettings(
        db=folder / "routes.duckdb", workers=0, preload=False, bootstrap_admin_key=None
    )
    app = create_app(settings)
    try:
        found: set[tuple[str, str]] = set()
        # Routers included in the app are flattened to their routes, prefixes applied.
        for route in iter_route_contexts(app.routes):
            assert route.path, f"a route without a path: {route.original_route!r}"
            if isinstance(route.original_route, APIWebSocketRoute):
                found.add(("WEBSOCKET", route.path))
            else:
                assert route.methods, f"a route without methods: {route.path}"
                found |= {(m, route.path) for m in route.methods if m != "HEAD"}
        return found
    finally:
        app.state.service.warehouse.close()
