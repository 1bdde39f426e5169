"""`/docs` (Swagger UI) and `/redoc` with their scripts served by the server itself.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, so on a self-hosted,
offline or firewalled install they are blank. The assets ship in the `fastapi-offline`
wheel (MIT); only its static files are used, the pages are FastAPI's own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["ASSETS_URL", "install"]

ASSETS_URL = "/docs-assets"
# The only files served: a fixed list, never a path from the request.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def _assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc from local assets (the app is made with docs_url=None), and
    describe every parameter the schema they show lists (openapi_params.py)."""
    from convolens.service import openapi_params

    openapi_params.install(app)
    title = f"{app.title} API"
    openapi_url = app.openapi_url or "/openapi.json"
    folder = _assets_dir()

    @app.get(ASSETS_URL + "/{asset}", include_in_schema=False)
    def docs_asset(asset: str) -> FileResponse:
        if asset not in _ASSETS:
            raise HTTPException(404, "no such asset")
        return FileResponse(
            folder / asset,
            media_type=_ASSETS[asset],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get(_OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            oauth2_redirect_url=_OAUTH2_REDIRECT,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
