"""Errors as JSON with a stable code and a message that says what to fix.

Every error body is `{"error": {"code": "...", "message": "...", "detail": ...}}`; clients
switch on `code` (stable across versions), people read `message`. No error, whether an
HTTP answer, a failed job or a webhook payload, carries a traceback or a server path:
`public_reason` and `without_paths` make an exception fit to show.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorResponse",
    "conflict",
    "install_error_handlers",
    "public_reason",
    "without_paths",
]

log = logging.getLogger("convolens.service")


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def conflict() -> ApiError:
    """The one answer to "this write collides with something you may not change". It
    says no more: neither whose the conversation is nor whether anyone else holds it."""
    return ApiError(
        409,
        "conflict",
        "this conversation cannot be written with this key: submit it under another id",
    )


# An absolute POSIX path (two or more parts, not an API route) or a Windows drive path.
_PATH = re.compile(
    r"(?<![\w.:/-])(?!/v1/|/dashboard/)(?:/[^\s'\"/:,;()\[\]{}<>]+){2,}/?|[A-Za-z]:\\[^\s'\"]+"
)


def _basename(match: re.Match[str]) -> str:
    parts = [p for p in re.split(r"[\\/]", match.group(0)) if p]
    return parts[-1] if parts else ""


def without_paths(value: Any) -> Any:
    """`value` with every absolute path cut to its file name (strings inside lists and
    dicts too): a reason may name the file, never where the server keeps it."""
    if isinstance(value, str):
        return _PATH.sub(_basename, value)
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    return value


def public_reason(exc: BaseException) -> str:
    """What went wrong, for a client: the exception's type and message, paths cut to
    file names, bounded in length; never the traceback (the server log has that)."""
    text = without_paths(str(exc)).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason[:500]


def _body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, exc.detail), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return JSONResponse(
            _body("invalid_request", f"{first['where']}: {first['problem']}", problems),
            status_code=422,
        )

    @app.exception_handler(duckdb.TransactionException)
    async def _busy(_: Request, exc: duckdb.TransactionException) -> JSONResponse:
        # Two writers met on one table (e.g. a delete rewriting it): nothing was written,
        # and the same request a moment later succeeds.
        log.warning("write conflict answered 503: %s", exc)
        return JSONResponse(
            _body("busy", "the warehouse was busy with another write: retry in a moment"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: logged with its traceback, answered without one.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            _body("internal_error", "the server failed on this request; its log has the cause"),
            status_code=500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
