"""Where webhooks may post: public http(s) hosts only, checked when a hook (or a job's
`webhook_url`) is given and again, after DNS resolution, at every delivery attempt.

Why: a webhook makes the server send a request wherever a caller says, from inside the
network it runs in. Left open, a hook to http://169.254.169.254/ reads cloud credentials,
one to http://localhost:6379/ talks to Redis, and a name that resolves to a public address
at registration and to 10.0.0.5 at delivery (DNS rebinding) gets past a check done once.
So `TargetPolicy.resolve` refuses a URL when any address its host resolves to is loopback,
private, link-local (cloud metadata), shared, multicast, reserved or unspecified, and
`WebhookTransport` connects to exactly the address it checked (the Host header and TLS
name stay the host's). Refused too: schemes other than http(s), user:password@ in the URL,
and IPv4 addresses spelled other than a.b.c.d (0x7f000001, 2130706433, 0177.0.0.1, 127.1),
which resolvers read as loopback while looking like names.

Operators whose receivers really live inside the network list them in
CONVOLENS_WEBHOOK_ALLOW_HOSTS: comma-separated host names (exact), IP addresses or CIDR
networks, e.g. `crm.internal,10.20.0.0/16,127.0.0.1`. A listed name may resolve anywhere;
otherwise every address must be public or inside a listed network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpx

from convolens.service.auth import Principal, Role
from convolens.service.errors import ApiError

__all__ = [
    "ALLOW_ENV",
    "JOB_WEBHOOK_ROLES",
    "TargetPolicy",
    "TargetRefused",
    "WebhookTransport",
    "api_target",
    "check_syntax",
    "job_webhook_url",
]

ALLOW_ENV = "CONVOLENS_WEBHOOK_ALLOW_HOSTS"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# A host made only of numbers, octal/hex numbers and dots: resolvers read it as an address.
_NUMERIC_HOST = re.compile(r"(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_RESOLVE_TIMEOUT_S = 5.0


class TargetRefused(ValueError):
    """A webhook URL the server will not post to; `code` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check_syntax(url: str) -> SplitResult:
    """The parts of `url` if its form is acceptable (before any DNS), else TargetRefused."""
    # urlsplit drops tabs and newlines that an HTTP client would not: refuse them outright.
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in url):
        raise TargetRefused(
            "invalid_webhook_url", "a webhook URL must not contain spaces, control characters "
            "or backslashes"
        )  # fmt: skip
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise TargetRefused("invalid_webhook_url", f"not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(
            "invalid_webhook_url", f"a webhook URL must be http(s)://host/...: {url!r}"
        )
    if "@" in parts.netloc:
        raise TargetRefused(
            "invalid_webhook_url",
            "a webhook URL must not carry a user name or password (user:pass@host); "
            "receivers check the X-Convolens-Signature header instead",
        )
    host = parts.hostname
    if "%" in host:
        raise TargetRefused("invalid_webhook_url", "IPv6 zone ids (%eth0) are not allowed")
    if _NUMERIC_HOST.match(host):
        try:
            ipaddress.IPv4Address(host)  # only the canonical a.b.c.d passes
        except ValueError:
            raise TargetRefused(
                "invalid_webhook_url",
                f"write IPv4 addresses as four decimal numbers a.b.c.d, not {host!r}",
            ) from None
    return parts


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def why_internal(address: IPAddress) -> str | None:
    """Which kind of non-public address this is, or None for a public one."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return why_internal(inner)
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives here)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return kind
    if not address.is_global:  # e.g. 100.64.0.0/10, shared (carrier-grade NAT) space
        return "not globally routable"
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class TargetPolicy:
    """Which webhook targets are allowed: public addresses, plus the operator's list."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    resolver: Resolver = field(default=_system_resolver, compare=False, repr=False)

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> TargetPolicy:
        """From 'name,10.0.0.0/8,127.0.0.1' (or a list): names, addresses and networks."""
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in items:
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not re.fullmatch(r"[a-z0-9._-]+", entry):
                    raise ValueError(
                        f"{ALLOW_ENV}: {raw.strip()!r} is not a host name, address or network"
                    ) from None
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def from_env(cls) -> TargetPolicy:
        return cls.parse(os.environ.get(ALLOW_ENV, ""))

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks if net.version == address.version)

    def resolve(self, url: str) -> list[IPAddress]:
        """The addresses a delivery to `url` may connect to, every one of them checked;
        TargetRefused when the URL's form, or any address its host resolves to, is refused."""
        parts = check_syntax(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self._lookup(host, port)]
        if host in self.hosts:
            return addresses
        for address in addresses:
            reason = why_internal(address)
            if reason is not None and not self._allowed(address):
                shown = host if literal is not None else f"{host} ({address})"
                raise TargetRefused(
                    "webhook_target_refused",
                    f"webhooks may not post to {shown}: a {reason} address; an operator can "
                    f"allow an internal receiver with {ALLOW_ENV}",
                )
        return addresses

    def _lookup(self, host: str, port: int) -> list[str]:
        # getaddrinfo has no timeout of its own: a stuck resolver must not hold a worker.
        pool = ThreadPoolExecutor(1, thread_name_prefix="webhook-dns")
        try:
            found = pool.submit(self.resolver, host, port).result(_RESOLVE_TIMEOUT_S)
        except FutureTimeout:
            raise TargetRefused(
                "webhook_target_unresolvable", f"looking up {host!r} timed out"
            ) from None
        except OSError as exc:
            raise TargetRefused(
                "webhook_target_unresolvable",
                f"cannot resolve {host!r} ({exc.strerror or exc}), so cannot check where it points",
            ) from None
        finally:
            pool.shutdown(wait=False)
        if not found:
            raise TargetRefused("webhook_target_unresolvable", f"{host!r} has no address")
        return found


class WebhookTransport(httpx.BaseTransport):
    """An httpx transport that checks every request's target with a `TargetPolicy` at send
    time and connects to the checked address itself, so DNS cannot change in between.

    The request keeps its Host header, and for https the TLS server name and certificate
    check stay the host's (httpcore's `sni_hostname` extension). Raises TargetRefused.
    """

    def __init__(self, policy: TargetPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        addresses = self.policy.resolve(str(request.url))
        pinned = addresses[0]
        host = request.url.host
        if str(pinned) != host:
            request.url = request.url.copy_with(host=str(pinned))
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


# Who may have a job call a URL of their choosing when it ends: as registering a hook
# (admin only), since it is the same power to make the server send requests.
JOB_WEBHOOK_ROLES = frozenset({Role.admin})


def api_target(url: str, policy: TargetPolicy) -> str:
    """`url` if `policy` allows it now (after DNS), else the API's 422 with the code."""
    try:
        policy.resolve(url)
        return url
    except TargetRefused as exc:
        raise ApiError(422, exc.code, exc.message) from None


def job_webhook_url(url: str | None, caller: Principal, policy: TargetPolicy) -> str | None:
    """The `webhook_url` given with a job or a stream, if `caller` may set one and it is a
    target `policy` allows; else the API's error (403 / 422)."""
    if url is None:
        return None
    if caller.role not in JOB_WEBHOOK_ROLES:
        raise ApiError(
            403,
            "webhook_url_forbidden",
            f"a {caller.role.value} key cannot set webhook_url (admin keys only: ask an admin "
            "to register a webhook for job.completed / job.failed)",
        )
    return api_target(url, policy)
