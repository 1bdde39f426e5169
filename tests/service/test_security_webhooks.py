"""Webhooks cannot be aimed inside the network: internal targets are refused when a hook
or a job's webhook_url is given (after DNS resolution) and again at delivery, before any
connection; only admins may set them. No test sends traffic beyond loopback: every refused
target is refused before a connection, and the loopback listeners prove none was made."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
from live_server import ADMIN_KEY, Server
from live_server import role_keys as make_role_keys
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from convolens.service.jobs import Job
from convolens.service.webhook_dispatch import WebhookDispatcher, dispatch_due
from convolens.service.webhook_targets import TargetPolicy, TargetRefused, WebhookTransport
from convolens.service.webhooks import (
    DeliverySettings,
    WebhookCreate,
    create_webhook,
    enqueue,
    list_deliveries,
)
from convolens.store.warehouse import Warehouse

SECRET = "server-default-secret-0123456789"
FAST = DeliverySettings(backoff_base_s=0.05, timeout_s=2.0, lease_s=10.0, poll_interval_s=0.02)
DEFAULT = TargetPolicy()  # public hosts only: a server without CONVOLENS_WEBHOOK_ALLOW_HOSTS

# (URL, the error code): the examples and the other spellings of the same places.
REFUSED = [
    ("http://169.254.169.254/latest/meta-data/iam/", "webhook_target_refused"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "webhook_target_refused"),
    ("http://10.0.0.5/hook", "webhook_target_refused"),
    ("http://172.16.3.4/hook", "webhook_target_refused"),
    ("https://192.168.1.1/hook", "webhook_target_refused"),
    ("http://100.64.0.1/hook", "webhook_target_refused"),
    ("http://[::1]:8080/hook", "webhook_target_refused"),
    ("http://[::ffff:127.0.0.1]/hook", "webhook_target_refused"),
    ("http://[64:ff9b::7f00:1]/hook", "webhook_target_refused"),  # NAT64 of 127.0.0.1
    ("http://[2002:7f00:1::]/hook", "webhook_target_refused"),  # 6to4 of 127.0.0.1
    ("http://[fe80::1]/hook", "webhook_target_refused"),
    ("http://0.0.0.0:8000/hook", "webhook_target_refused"),
    ("http://224.0.0.1/hook", "webhook_target_refused"),
    ("http://255.255.255.255/hook", "webhook_target_refused"),
    ("http://240.0.0.1/hook", "webhook_target_refused"),
    ("http://127.0.0.1:6379/", "webhook_target_refused"),
    ("http://localhost:6379/", "webhook_target_refused"),  # a name: refused by what it resolves to
    ("http://LOCALHOST./", "webhook_target_refused"),
    ("http://0x7f000001/hook", "invalid_webhook_url"),
    ("http://2130706433/hook", "invalid_webhook_url"),
    ("http://0177.0.0.1/hook", "invalid_webhook_url"),
    ("http://127.1/hook", "invalid_webhook_url"),
    ("http://0x7f.0.0.1/hook", "invalid_webhook_url"),
    ("http://user:pw@hooks.example.com/x", "invalid_webhook_url"),
    ("https://hooks.example.com@127.0.0.1/x", "invalid_webhook_url"),
    ("http://[fe80::1%25eth0]/hook", "invalid_webhook_url"),
    ("gopher://127.0.0.1:6379/_INFO", "invalid_webhook_url"),
    ("file:///etc/passwd", "invalid_webhook_url"),
    ("ftp://files.example.com/x", "invalid_webhook_url"),
    ("http://host.invalid/hook", "webhook_target_unresolvable"),
    ("http://hooks.example.com\r\nX-Injected: 1/", "invalid_webhook_url"),
    ("http://hooks.example.com\\@127.0.0.1/", "invalid_webhook_url"),
    ("http://127.0.0.1#@hooks.example.com/", "webhook_target_refused"),
]


@pytest.mark.parametrize(("url", "code"), REFUSED)
def test_internal_and_malformed_targets_are_refused(url: str, code: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        DEFAULT.resolve(url)
    assert refused.value.code == code
    assert "CONVOLENS_WEBHOOK_ALLOW_HOSTS" in refused.value.message or code != (
        "webhook_target_refused"
    )


def test_public_and_allow_listed_targets_pass() -> None:
    # Address literals resolve without DNS and nothing is contacted.
    assert [str(a) for a in DEFAULT.resolve("https://93.184.215.14/hook")] == ["93.184.215.14"]
    assert DEFAULT.resolve("https://[2606:4700::1111]/x")
    allowed = TargetPolicy.parse("127.0.0.1, 10.20.0.0/16 ,localhost")
    assert allowed.resolve("http://127.0.0.1:9/x") and allowed.resolve("http://10.20.3.4/")
    assert allowed.resolve("http://localhost:6379/")  # listed by name
    with pytest.raises(TargetRefused):
        allowed.resolve("http://10.21.0.1/")  # outside the listed network
    with pytest.raises(TargetRefused):
        allowed.resolve("http://169.254.169.254/")
    with pytest.raises(ValueError, match="CONVOLENS_WEBHOOK_ALLOW_HOSTS"):
        TargetPolicy.parse("crm.internal, not a host!")


def test_every_resolved_address_must_pass() -> None:
    # A name with a public and a private address (or one that rebinds) is refused whole;
    # the resolver stands in for DNS answers that cannot be arranged here.
    mixed = TargetPolicy(resolver=lambda host, port: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(TargetRefused, match=r"hooks\.example\.com \(10\.0\.0\.7\)"):
        mixed.resolve("https://hooks.example.com/x")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket nobody should connect to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(0.3)
        yield sock


def assert_no_connection(sock: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        sock.accept()


def test_delivery_rechecks_the_target_and_never_connects(
    warehouse: Warehouse, listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook stored while its name pointed outside (or a job URL) that now resolves to
    loopback, as after DNS rebinding: refused at send time, no retries, logged."""
    port = listener.getsockname()[1]
    create_webhook(warehouse, WebhookCreate(url=f"http://localhost:{port}/x", events=["alert"]))
    [hook_delivery] = enqueue(warehouse, "alert", {"alert": "x"})
    common: dict[str, Any] = {"kind": "ingest", "attempts": 1, "max_attempts": 3,
                              "created_at": "2025-01-01"}  # fmt: skip
    job = Job(job_id="job_a", status="completed", webhook_url=f"http://localhost:{port}/cb",
              **common)  # fmt: skip
    caplog.set_level(logging.WARNING, logger="convolens.service.webhooks")
    with WebhookDispatcher(warehouse, default_secret=SECRET, settings=FAST, policy=DEFAULT) as d:
        job_ids = d.job_finished(job)
        d.notify()
        deadline = 50
        while {x.status for x in list_deliveries(warehouse)} != {"failed"} and deadline:
            deadline -= 1
            listener.settimeout(0.1)
            with pytest.raises(TimeoutError):
                listener.accept()
    deliveries = {x.delivery_id: x for x in list_deliveries(warehouse)}
    assert set(deliveries) == {hook_delivery, *job_ids} and len(deliveries) == 2
    for delivery in deliveries.values():
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, None)
        assert delivery.last_error is not None
        assert delivery.last_error.startswith("refused: webhooks may not post to localhost")
    assert_no_connection(listener)
    logged = [r.getMessage() for r in caplog.records]
    refused = sorted(m.split()[2] for m in logged if " refused: webhooks may not post" in m)
    assert refused == sorted(deliveries)  # each refusal logged once, naming the delivery
    assert all("localhost (127.0.0.1): a loopback address" in m for m in logged)


def test_transport_connects_to_the_address_it_checked(warehouse: Warehouse) -> None:
    """The name is looked up once, checked, and that address is the one connected to (the
    system resolver does not know `receiver.test`: the request can only arrive pinned)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=http.serve_forever, args=(0.02,), daemon=True).start()
    port = http.server_address[1]
    lookups: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    policy = TargetPolicy.parse("127.0.0.1")
    policy = TargetPolicy(policy.hosts, policy.networks, resolver=resolver)
    try:
        create_webhook(
            warehouse, WebhookCreate(url=f"http://receiver.test:{port}/h", events=["alert"])
        )
        enqueue(warehouse, "alert", {"alert": "x"})
        assert dispatch_due(warehouse, default_secret=SECRET, settings=FAST, policy=policy) == 1
        assert seen == [f"receiver.test:{port}"] and lookups == ["receiver.test"]
        assert [d.status for d in list_deliveries(warehouse)] == ["delivered"]
        # Without the pin the same client could not even find the host.
        with (
            httpx.Client(transport=WebhookTransport(DEFAULT)) as client,
            pytest.raises(TargetRefused),
        ):
            client.post(f"http://receiver.test:{port}/h")
    finally:
        http.shutdown()
        http.server_close()


def test_https_delivery_pinned_to_the_address_still_verifies_the_host(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """Connecting to the checked address must not weaken TLS: the server name sent and the
    certificate checked are the host's, not the address's."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=receiver.test", "-addext", "subjectAltName=DNS:receiver.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    def record_name(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    server_tls.sni_callback = record_name  # type: ignore[assignment]
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.socket = server_tls.wrap_socket(http.socket, server_side=True)
    Thread(target=http.serve_forever, args=(0.02,), daemon=True).start()
    port = http.server_address[1]
    base = TargetPolicy.parse("127.0.0.1")
    policy = TargetPolicy(base.hosts, base.networks, resolver=lambda host, _: ["127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        transport = WebhookTransport(policy, httpx.HTTPTransport(verify=trust))
        with httpx.Client(transport=transport) as client:
            assert client.post(f"https://receiver.test:{port}/h", content=b"{}").status_code == 200
            assert names == ["receiver.test"]
            # The same server under another name: the certificate does not match, refused.
            other = TargetPolicy(base.hosts, base.networks, resolver=lambda host, _: ["127.0.0.1"])
            with (
                httpx.Client(
                    transport=WebhookTransport(other, httpx.HTTPTransport(verify=trust))
                ) as wrong,
                pytest.raises(httpx.ConnectError, match=r"certificate|hostname"),
            ):
                wrong.post(f"https://elsewhere.test:{port}/h", content=b"{}")
    finally:
        http.shutdown()
        http.server_close()


# -- over HTTP, against a server started without the allow-list ----------------------------
@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("strict")
    server = Server(
        folder / "strict.duckdb", folder / "server.log", CONVOLENS_WEBHOOK_ALLOW_HOSTS="",
        CONVOLENS_WORKERS="0", CONVOLENS_PRELOAD="0",
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def role_keys(strict: Server) -> dict[str, str]:
    return make_role_keys(strict, agent="Dana")


def test_registration_refuses_internal_targets_over_http(
    strict: Server, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    urls = [*REFUSED, (f"http://localhost:{port}/hook", "webhook_target_refused")]
    with strict.client() as admin:
        for url, code in urls:
            response = admin.post("/v1/webhooks", json={"url": url, "events": ["*"]})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["error"]["code"] == code, url
        assert admin.get("/v1/webhooks").json() == []
    assert_no_connection(listener)


def test_only_admins_register_hooks_or_set_job_webhooks(
    strict: Server, role_keys: dict[str, str]
) -> None:
    public = "https://93.184.215.14/hook"  # allowed as a target, never contacted here
    conversation = {"id": "w-1", "messages": [{"author": "c", "text": "hello"}]}
    for role in ("analyst", "agent", "viewer"):
        with strict.client(role_keys[role]) as client:
            hook = client.post("/v1/webhooks", json={"url": public, "events": ["*"]})
            assert hook.status_code == 403, role
            submit = client.post(
                "/v1/conversations", params={"webhook_url": public}, json=conversation
            )
            assert submit.status_code == 403, role
            if role != "viewer":
                assert submit.json()["error"]["code"] == "webhook_url_forbidden"
            upload = client.post(
                "/v1/uploads", files={"file": ("c.json", b'{"id": "w-2", "messages": []}')},
                data={"webhook_url": public},
            )  # fmt: skip
            assert upload.status_code == 403, role
    with strict.client() as admin:
        for url, code in (("http://169.254.169.254/", "webhook_target_refused"),
                          ("http://0x7f000001/", "invalid_webhook_url")):  # fmt: skip
            submit = admin.post("/v1/conversations", params={"webhook_url": url}, json=conversation)
            assert (submit.status_code, submit.json()["error"]["code"]) == (422, code)
            upload = admin.post(
                "/v1/uploads", files={"file": ("c.json", b'{"id": "w-2", "messages": []}')},
                data={"webhook_url": url},
            )  # fmt: skip
            assert (upload.status_code, upload.json()["error"]["code"]) == (422, code)
        # A public target is fine for an admin (no worker runs here: nothing is sent).
        accepted = admin.post(
            "/v1/conversations", params={"webhook_url": public}, json=conversation
        )
        assert accepted.status_code == 202, accepted.text
        assert admin.get(accepted.json()["status_url"]).json()["webhook_url"] == public


def test_stream_webhook_url_is_admin_only_and_checked(
    strict: Server, role_keys: dict[str, str]
) -> None:
    base = strict.url.replace("http", "ws") + "/v1/stream"
    for key, url, status in (
        (role_keys["analyst"], "https://93.184.215.14/h", 403),
        (role_keys["agent"], "https://93.184.215.14/h", 403),
        (ADMIN_KEY, "http://[::1]/h", 422),
        (ADMIN_KEY, "http://localhost:6379/", 422),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{base}?webhook_url={url}", additional_headers={
                "Authorization": f"Bearer {key}"}).close()  # fmt: skip
        assert refused.value.response.status_code == status, url


def test_server_refuses_to_start_with_a_malformed_allow_list(tmp_path: Path) -> None:
    server = Server(tmp_path / "x.duckdb", tmp_path / "server.log",
                    CONVOLENS_WEBHOOK_ALLOW_HOSTS="10.0.0.0/8, not a host!")  # fmt: skip
    with pytest.raises(RuntimeError, match="server exited"):
        server.start(timeout=60)
    text = server.log.read_text()
    assert "CONVOLENS_WEBHOOK_ALLOW_HOSTS" in text and "Traceback" not in text
