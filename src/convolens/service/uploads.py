"""What every multipart upload route shares: refusing unknown form fields, and copying the
file to disk under a size limit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile

from convolens.service.errors import ApiError
from convolens.store.private import private_file

__all__ = ["known_form_fields", "receive"]


def known_form_fields(*fields: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A route dependency refusing form fields not in `fields` with a 422: a misspelt
    `mapping` or `role` must not silently fall back to a default."""

    async def check(request: Request) -> None:
        form = await request.form()  # Starlette caches it: the route's own parsing reuses it
        unknown = sorted(set(form.keys()) - set(fields))
        if unknown:
            shown = ", ".join(repr(name[:40]) for name in unknown[:5])
            raise ApiError(
                422,
                "unknown_field",
                f"unknown form field(s) {shown}; the fields are: {', '.join(fields)}",
            )

    return check


def receive(file: UploadFile, path: Path, limit: int) -> tuple[str, int]:
    """Copy the upload to `path` (owner-only); (sha256, size). 413 past `limit` bytes."""
    digest = hashlib.sha256()
    size = 0
    with private_file(path) as out:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413,
                    "upload_too_large",
                    f"the file is over the {limit // (1024 * 1024)} MiB upload limit",
                )
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size
