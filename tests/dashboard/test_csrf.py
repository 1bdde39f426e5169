"""The dashboard's login and logout refuse forged requests (CSRF): a real server, real HTTP
posts without the page's token or from another origin, and a real browser on another
origin auto-posting the login form with an attacker's key -- refused, no cookie set --
while the ordinary sign-in and sign-out in the browser still work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import ADMIN_KEY, Server

from convolens.dashboard.session import COOKIE, CSRF_COOKIE, CSRF_FIELD


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An empty warehouse is enough: sign-in does not read conversations."""
    folder = tmp_path_factory.mktemp("csrf")
    running = Server(
        folder / "csrf.duckdb", folder / "server.log", CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0"
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def attacker_key(server: Server) -> str:
    with server.client() as admin:
        return str(admin.post("/v1/keys", json={"name": "mallory", "role": "viewer"}).json()["key"])


def _form(client: httpx.Client, path: str = "/dashboard/login") -> str:
    """The CSRF token the page at `path` puts in its forms (its cookie lands in `client`)."""
    html = client.get(path).text
    marker = f'name="{CSRF_FIELD}" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def _login(client: httpx.Client, key: str, **extra: Any) -> httpx.Response:
    data = {"api_key": key, "next": "/dashboard/", **extra.pop("data", {})}
    return client.post("/dashboard/login", data=data, **extra)


def test_login_page_sets_a_token_cookie_and_puts_it_in_the_form(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        token = _form(client)
        assert len(token) >= 32 and client.cookies[CSRF_COOKIE] == token
        set_cookie = client.get("/dashboard/login").headers.get("set-cookie")
        assert set_cookie is None  # the browser's token stays the same across pages
        fresh = httpx.get(f"{server.url}/dashboard/login").headers["set-cookie"]
        assert "HttpOnly" in fresh and "SameSite=strict" in fresh and "Path=/dashboard" in fresh
        assert "Secure" not in fresh  # plain http here


@pytest.mark.parametrize(
    "forgery",
    ["no token", "wrong token", "token without cookie", "foreign origin", "foreign referer",
     "cross-site fetch", "null origin"],
)  # fmt: skip
def test_forged_login_is_refused_and_sets_no_cookie(
    server: Server, attacker_key: str, forgery: str
) -> None:
    with httpx.Client(base_url=server.url) as client:
        token = _form(client)
        data: dict[str, str] = {CSRF_FIELD: token}
        headers: dict[str, str] = {"Origin": server.url}
        if forgery == "no token":
            data = {}
        elif forgery == "wrong token":
            data = {CSRF_FIELD: "x" * 43}
        elif forgery == "token without cookie":
            client.cookies.clear()
        elif forgery == "foreign origin":
            headers = {"Origin": "https://evil.example"}
        elif forgery == "foreign referer":
            headers = {"Referer": "https://evil.example/page.html"}
        elif forgery == "cross-site fetch":
            headers = {"Sec-Fetch-Site": "cross-site"}
        elif forgery == "null origin":
            headers = {"Origin": "null"}
        response = _login(client, attacker_key, data=data, headers=headers)
        assert response.status_code == 403, forgery
        assert "set-cookie" not in response.headers
        assert "did not come from this dashboard" in response.text
        assert attacker_key not in response.text
        # The same request from the page itself is accepted (the check is not just closed).
        client.cookies.set(CSRF_COOKIE, token, path="/dashboard")
        ok = _login(client, attacker_key, data={CSRF_FIELD: token}, headers={"Origin": server.url})
        assert ok.status_code == 303 and ok.cookies.get(COOKIE) == attacker_key


def test_cookies_are_secure_behind_an_https_proxy(server: Server) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (its --forwarded-allow-ips default).
    https = {"X-Forwarded-Proto": "https"}
    own = server.url.replace("http://", "https://")
    with httpx.Client(base_url=server.url, headers=https) as client:
        first = client.get("/dashboard/login")
        assert "Secure" in first.headers["set-cookie"]
        token = client.cookies[CSRF_COOKIE]
        # A browser sends Secure cookies to the https proxy; this client talks http behind it.
        sent = {CSRF_FIELD: token}
        cookie = f"{CSRF_COOKIE}={token}"
        # Behind the proxy the page's origin is https: the http origin is another one.
        wrong = _login(
            client, ADMIN_KEY, data=sent, headers={"Origin": server.url, "Cookie": cookie}
        )
        assert wrong.status_code == 403
        ok = _login(client, ADMIN_KEY, data=sent, headers={"Origin": own, "Cookie": cookie})
        assert ok.status_code == 303
        cookies = ok.headers.get_list("set-cookie")
        assert len(cookies) == 2 and all("Secure" in c and "HttpOnly" in c for c in cookies)


def test_logout_needs_the_token_too(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        token = _form(client)
        assert _login(client, ADMIN_KEY, data={CSRF_FIELD: token}).status_code == 303
        # Signing in gives the browser a new token; the old one is no use any more.
        new = _form(client, "/dashboard/")
        assert new != token and client.cookies[CSRF_COOKIE] == new
        forged = client.post("/dashboard/logout", data={CSRF_FIELD: token})
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        assert client.get("/dashboard/").status_code == 200  # still signed in
        done = client.post("/dashboard/logout", data={CSRF_FIELD: new})
        assert done.status_code == 303 and done.headers["location"] == "/dashboard/login"
        assert COOKIE not in client.cookies
        assert client.get("/dashboard/").status_code == 303  # to the login form


@pytest.fixture
def evil_site(attacker_key: str, server: Server) -> Iterator[str]:
    """Another origin serving a page that auto-posts the dashboard's login form."""
    page = f"""<!doctype html><html><body>
<form id="f" method="post" action="{server.url}/dashboard/login">
<input name="api_key" value="{attacker_key}"><input name="next" value="/dashboard/">
</form><script>document.getElementById("f").submit()</script></body></html>""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True).start()
    try:  # 'localhost' vs the dashboard's 127.0.0.1: another site, as well as another origin
        yield f"http://localhost:{http.server_address[1]}/"
    finally:
        http.shutdown()
        http.server_close()


def test_cross_site_auto_posting_form_does_not_sign_the_browser_in(
    browser: Any, server: Server, evil_site: str, screenshots: Path
) -> None:
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/dashboard/login")  # the victim has the dashboard open: a token cookie
        with page.expect_response(f"{server.url}/dashboard/login") as posted:
            page.goto(evil_site)
        assert posted.value.status == 403
        page.wait_for_load_state()
        page.screenshot(path=str(screenshots / "csrf-refused.png"))
        assert COOKIE not in {c["name"] for c in context.cookies()}
        page.goto("/dashboard/")
        page.wait_for_url("**/dashboard/login?next=/dashboard/")  # still signed out
    finally:
        context.close()


def test_browser_sign_in_and_sign_out_still_work(signed_in: Any, server: Server) -> None:
    page = signed_in(ADMIN_KEY)
    assert page.locator(".role").inner_text() == "admin"
    page.click("text=Sign out")
    page.wait_for_url("**/dashboard/login")
    assert COOKIE not in {c["name"] for c in page.context.cookies()}
