"""The browser dashboard served by `convolens serve` under /dashboard.

Server-rendered pages (Jinja2) over the same library functions as the CLI and the REST
API, with charts built server-side as Plotly figure JSON and drawn by the plotly.js that
ships inside the `plotly` package (no CDN: deployments may have no internet). The same
API keys and role rules as /v1 apply: a login page turns a key into an HttpOnly cookie.
"""
