"""The Python SDK for a convolens server: `Client`, `AsyncClient` and their typed models.

    from convolens.client import Client

Only httpx and pydantic are needed; `convolens.client.models` holds the wire models.
"""

from convolens.client.sdk import (
    ApiError,
    AsyncClient,
    Client,
    JobFailed,
    JobTimeout,
    LiveStream,
    StreamEvent,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "JobFailed",
    "JobTimeout",
    "LiveStream",
    "StreamEvent",
]
