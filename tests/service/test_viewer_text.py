"""No conversation text where it does not belong, read from the response bodies of every
GET route and dashboard page, as every role.

A real server analyses a small corpus in which seven chats of the latest week share a
made-up product name (`planted_corpus`): it becomes their topic, their cluster's label, a
rising spike, friction and issue rows, a before/after value. Every GET route of the app
(enumerated from the app, path parameters filled with real ids, the analytics with every
dimension) and every dashboard page is then read as admin, analyst, agent, viewer and
with no key. Viewer and anonymous bodies must never hold a word of the name, nor the
agent's (its agent handled none of those chats); admin and analyst bodies must hold it
where the issue saw it leak, so the test is shown able to see it. A route the table
below does not know fails the test until someone says how to read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from live_server import Server, wait_job
from planted_corpus import ACCOUNTS_CSV, AGENT, OWN_WORD, PLANTED_PHRASE, PLANTED_WORDS
from planted_corpus import conversations as planted_conversations
from route_table import app_routes

from convolens.service.results import PARTS

ROLES = ("admin", "analyst", "agent", "viewer", "none")
PLANTED = re.compile("|".join(PLANTED_WORDS), re.IGNORECASE)
DIMENSIONS = ("intent", "topic", "tracker", "signal", "channel", "queue", "agent", "cluster")
COOKIE = "convolens_dashboard_key"


@dataclass
class Planted:
    server: Server
    keys: dict[str, str | None]
    ids: dict[str, str]  # source id -> conversation id
    job_id: str  # the ingest job of a planted chat
    cluster_id: str  # the planted chats' cluster
    annotation_id: int  # a release annotation watching the planted topic
    # The topics page before any clustering (it shows the keyphrase topic tree then).
    tree_pages: dict[str, str]
    bodies: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    from convolens.analytics.annotations import add_annotation
    from convolens.analytics.business_import import import_entities
    from convolens.store.warehouse import Warehouse

    folder = tmp_path_factory.mktemp("planted")
    db = folder / "planted.duckdb"
    (folder / "accounts.csv").write_text(ACCOUNTS_CSV)
    # Accounts (so lift and issues have data: jobs stitch each new conversation) and an
    # annotation watching the planted topic, both before the server holds the warehouse.
    with Warehouse(db) as warehouse:
        import_entities(warehouse, folder / "accounts.csv", "accounts")
        note = add_annotation(
            warehouse, "2026-10-24", "release", "Autumn release", "export changes",
            dimension="topic", value=PLANTED_PHRASE,
        )  # fmt: skip
    server = Server(db, folder / "server.log").start()
    try:
        with server.client() as admin:
            keys: dict[str, str | None] = {"admin": admin.headers["Authorization"].split()[1]}
            for role in ("analyst", "agent", "viewer"):
                body = {"name": f"text test {role}", "role": role}
                if role == "agent":
                    body["agent"] = AGENT
                made = admin.post("/v1/keys", json=body)
                assert made.status_code == 201, made.text
                keys[role] = made.json()["key"]
            keys["none"] = None
            accepted = {
                c["id"]: admin.post("/v1/conversations", json=c).json()
                for c in planted_conversations()
            }
            for source_id, a in accepted.items():
                job = wait_job(admin, a["job_id"])
                assert job["status"] == "completed", (source_id, job["error"])
            tree_pages = {
                role: httpx.get(
                    f"{server.url}/dashboard/topics", cookies={COOKIE: str(keys[role])}, timeout=120
                ).text
                for role in ("admin", "viewer")
            }
            refresh = admin.post("/v1/analytics/clusters/refresh").json()
            assert wait_job(admin, refresh["job_id"])["status"] == "completed"
            clusters = admin.get("/v1/analytics/clusters").json()
        planted_cluster = next(c["cluster_id"] for c in clusters if PLANTED.search(c["label"]))
        yield Planted(
            server=server,
            keys=keys,
            ids={s: a["conversation_id"] for s, a in accepted.items()},
            job_id=accepted["planted-0"]["job_id"],
            cluster_id=planted_cluster,
            annotation_id=note.id,
            tree_pages=tree_pages,
        )
    finally:
        server.stop()


# -- what to read for each GET route ----------------------------------------------------
def _conversation_urls(p: Planted, template: str) -> list[str]:
    """A planted chat (someone else's for the agent key) and the agent's own chat."""
    return [
        template.replace("{conversation_id}", p.ids[s]).replace("{ref:path}", p.ids[s])
        for s in ("planted-0", "own-0")
    ]


def _fixed(*urls: str) -> Callable[[Planted, str], list[str]]:
    return lambda p, template: list(urls)


def _analytics(p: Planted, template: str) -> list[str]:
    name = template.rsplit("/", 1)[1]
    phrase = PLANTED_PHRASE.replace(" ", "+")
    by_route: dict[str, list[str]] = {
        "trends": [f"?dimension={d}" for d in DIMENSIONS],
        "spikes": [f"?dimension={d}&min_count=1&all_values=true" for d in DIMENSIONS],
        "before-after": [
            f"?at={p.annotation_id}",
            f"?at=2026-10-24&dimension=topic&value={phrase}",
            "?at=2026-10-24&dimension=topic&value=topic+1",
            "?at=2026-10-24&dimension=cluster&value=cluster+" + p.cluster_id,
        ],
        "lift": ["", "?dimension=topic&signal=" + phrase, "?dimension=topic&signal=topic+1"],
        "issues": [f"?dimension={d}" for d in ("intent", "topic", "keyphrase")],
        "friction": [f"?dimension={d}" for d in ("intent", "topic", "keyphrase")],
        "agents": [""],
        "human-vs-ai": [""],
        "campaigns": [""],
        "clusters": ["?examples=5"],
        "members": [""],
    }
    base = template.replace("{cluster_id}", p.cluster_id)
    return [base + query for query in by_route[name]]


def _dashboard_topics(p: Planted, template: str) -> list[str]:
    return [f"{template}?dimension={d}" for d in DIMENSIONS]


def _parts(p: Planted, template: str) -> list[str]:
    return [
        url.replace("{part}", part) for url in _conversation_urls(p, template) for part in PARTS
    ]


READS: dict[str, Callable[[Planted, str], list[str]]] = {
    "/openapi.json": _fixed("/openapi.json"),
    "/docs": _fixed("/docs"),
    "/docs/oauth2-redirect": _fixed("/docs/oauth2-redirect"),
    "/redoc": _fixed("/redoc"),
    "/docs-assets/{asset}": _fixed(
        "/docs-assets/swagger-ui.css", "/docs-assets/redoc.standalone.js"
    ),
    "/v1/health": _fixed("/v1/health"),
    "/v1/aggregates": _fixed("/v1/aggregates"),
    "/v1/conversations": _fixed(
        "/v1/conversations", "/v1/conversations?q=quorvan", "/v1/conversations?topic=x"
    ),
    "/v1/conversations/{conversation_id}": _conversation_urls,
    "/v1/conversations/{conversation_id}/utterances": _conversation_urls,
    "/v1/conversations/{conversation_id}/metrics": _conversation_urls,
    "/v1/conversations/{conversation_id}/raw": lambda p, t: [
        u + "?confirm=true" for u in _conversation_urls(p, t)
    ],
    "/v1/conversations/{conversation_id}/{part}": _parts,
    "/v1/conversations/{conversation_id}/audio": _conversation_urls,
    "/dashboard/audio/{ref:path}": _conversation_urls,
    "/v1/jobs": _fixed("/v1/jobs?limit=500"),
    "/v1/jobs/{job_id}": lambda p, t: [t.replace("{job_id}", p.job_id)],
    "/v1/keys": _fixed("/v1/keys"),
    "/v1/quarantine": _fixed("/v1/quarantine", "/v1/quarantine?include_released=true"),
    "/v1/definitions/{kind}": _fixed(
        "/v1/definitions/taxonomy?content=true", "/v1/definitions/trackers?content=true"
    ),
    "/v1/webhooks": _fixed("/v1/webhooks"),
    "/v1/webhooks/deliveries": _fixed("/v1/webhooks/deliveries"),
    "/v1/scorecards": _fixed("/v1/scorecards"),
    "/v1/scorecards/conversations/{ref}": lambda p, t: [
        t.replace("{ref}", p.ids[s]) for s in ("planted-0", "own-0")
    ],
    "/v1/scorecards/calibration": _fixed("/v1/scorecards/calibration"),
    "/v1/scorecards/coaching": _fixed(
        "/v1/scorecards/coaching", "/v1/scorecards/coaching?scorecard=sales"
    ),
    "/v1/scorecards/coaching/impact": _fixed(
        "/v1/scorecards/coaching/impact?agent=Ada+Quinn&at=2026-10-24"
    ),
    "/v1/scorecards/{name}/diff": _fixed("/v1/scorecards/support/diff"),
    "/v1/drift": _fixed("/v1/drift", "/v1/drift?recent_days=3&reference_days=60"),
    "/v1/drift/checks": _fixed("/v1/drift/checks"),
    "/v1/data-health": _fixed("/v1/data-health", "/v1/data-health?format=csv"),
    "/v1/data-health/sources": _fixed("/v1/data-health/sources"),
    "/dashboard/data-health": _fixed("/dashboard/data-health"),
    "/v1/review/batches": _fixed("/v1/review/batches"),
    "/v1/review/next": _fixed("/v1/review/next"),
    "/v1/review/items/{item_id}": _fixed("/v1/review/items/ri-none"),
    "/v1/review/quality": _fixed("/v1/review/quality", "/v1/review/quality?min_reviews=1"),
    "/v1/review/candidates": _fixed("/v1/review/candidates"),
    "/v1/review/taxonomies": _fixed("/v1/review/taxonomies"),
    "/dashboard/review": _fixed("/dashboard/review"),
    "/dashboard/quality": _fixed("/dashboard/quality"),
    "/dashboard/review/keys.js": _fixed("/dashboard/review/keys.js"),
    "/dashboard/taxonomies": _fixed("/dashboard/taxonomies"),
    "/dashboard/erasure": _fixed("/dashboard/erasure"),
    "/dashboard": _fixed("/dashboard"),
    "/dashboard/": _fixed("/dashboard/"),
    "/dashboard/login": _fixed("/dashboard/login"),
    "/dashboard/conversations": _fixed(
        "/dashboard/conversations", "/dashboard/conversations?q=quorvan"
    ),
    "/dashboard/conversations/{ref:path}": _conversation_urls,
    "/dashboard/topics": _dashboard_topics,
    "/dashboard/agents": _fixed("/dashboard/agents"),
    "/dashboard/accounts": _fixed("/dashboard/accounts"),
    "/dashboard/scorecards": _fixed(
        "/dashboard/scorecards", "/dashboard/scorecards?scorecard=sales"
    ),
    "/dashboard/scorecards/{ref}": lambda p, t: [
        t.replace("{ref}", p.ids[s]) for s in ("planted-0", "own-0")
    ],
    "/v1/audit": _fixed("/v1/audit", "/v1/audit?format=csv"),
    "/v1/retention": _fixed("/v1/retention"),
    "/v1/speakers": _fixed("/v1/speakers"),
    "/dashboard/audit": _fixed("/dashboard/audit"),
    "/dashboard/audit.csv": _fixed("/dashboard/audit.csv"),
    "/dashboard/static/{name}": _fixed(
        "/dashboard/static/app.js", "/dashboard/static/dashboard.css"
    ),
    "/dashboard/upload": _fixed("/dashboard/upload"),
    "/dashboard/jobs/{job_id}": lambda p, t: [t.replace("{job_id}", p.job_id)],
    "/dashboard/jobs/{job_id}/status": lambda p, t: [t.replace("{job_id}", p.job_id)],
    "/dashboard/csv/{page}/{table}": _fixed(
        "/dashboard/csv/overview/alerts",
        "/dashboard/csv/overview/rising",
        "/dashboard/csv/topics/clusters",
        "/dashboard/csv/topics/spikes?dimension=topic",
        "/dashboard/csv/topics/topics",
        "/dashboard/csv/agents/scorecards",
        "/dashboard/csv/accounts/accounts",
        "/dashboard/csv/accounts/issues",
        "/dashboard/csv/scorecards/coaching",
        "/dashboard/csv/conversations/conversations",
    ),
}


def _get_templates(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    routes = app_routes(tmp_path_factory.mktemp("routes"))
    return sorted(path for method, path in routes if method == "GET")


@pytest.fixture(scope="module")
def urls(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out: list[str] = []
    for template in _get_templates(tmp_path_factory):
        if template.startswith("/v1/analytics/"):
            out += _analytics(planted, template)
        else:
            out += READS[template](planted, template)
    return out


def test_every_get_route_is_read(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A new GET route fails here until READS (or the analytics table) says how to read it."""
    unknown = [
        t for t in _get_templates(tmp_path_factory)
        if t not in READS and not t.startswith("/v1/analytics/")
    ]  # fmt: skip
    assert not unknown, f"GET routes the text test does not read: {unknown}"


def _read(p: Planted, role: str, urls: list[str]) -> dict[str, tuple[int, str]]:
    if role in p.bodies:
        return p.bodies[role]
    key = p.keys[role]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    cookies = {COOKIE: key} if key else {}
    found: dict[str, tuple[int, str]] = {}
    with httpx.Client(
        base_url=p.server.url, headers=headers, cookies=cookies, timeout=60
    ) as client:
        for url in urls:
            response = client.get(url)
            found[url] = (response.status_code, response.text)
    p.bodies[role] = found
    return found


@pytest.mark.parametrize("role", ["viewer", "none", "agent"])
def test_no_planted_words_reach_keys_that_may_not_read_them(
    planted: Planted, urls: list[str], role: str
) -> None:
    bodies = _read(planted, role, urls)
    leaks = {
        url: (status, PLANTED.search(body).group(0))  # type: ignore[union-attr]
        for url, (status, body) in bodies.items()
        if PLANTED.search(body)
    }
    assert not leaks, leaks
    # Never a crash: every answer is a page, data or a refusal.
    assert not [u for u, (status, _) in bodies.items() if status >= 500]


def test_viewer_reads_the_same_aggregates_by_opaque_names(
    planted: Planted, urls: list[str]
) -> None:
    """The viewer is refused nothing it should see: the analytics and pages where the
    planted words showed up for an admin answer the viewer too, with opaque names."""
    admin, viewer = _read(planted, "admin", urls), _read(planted, "viewer", urls)
    # (Asking by the words themselves is refused: see below.)
    shown = [u for u in urls if PLANTED.search(admin[u][1]) and not PLANTED.search(u)]
    aggregate = [
        u for u in shown
        if u.startswith(("/v1/analytics/", "/dashboard/topics")) and "/members" not in u
    ]  # fmt: skip
    refused = {u: viewer[u][0] for u in aggregate if viewer[u][0] != 200}
    assert aggregate and not refused, refused
    trends = viewer["/v1/analytics/trends?dimension=topic"][1]
    assert '"value":"topic 1"' in trends  # the planted topic: the most common one
    spikes = viewer["/v1/analytics/spikes?dimension=topic&min_count=1&all_values=true"][1]
    assert '"value":"topic 1","direction":"rising","significant":true' in spikes
    assert f"cluster {planted.cluster_id}" in viewer["/v1/analytics/clusters?examples=5"][1]
    # A viewer asks about a topic by its name; by its words is refused (no oracle).
    by_name = viewer["/v1/analytics/before-after?at=2026-10-24&dimension=topic&value=topic+1"]
    assert by_name[0] == 200 and '"matching":7' in by_name[1]
    phrase = PLANTED_PHRASE.replace(" ", "+")
    by_words = viewer[f"/v1/analytics/before-after?at=2026-10-24&dimension=topic&value={phrase}"]
    assert by_words[0] == 422


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_text_readers_see_the_planted_words_where_they_leaked(
    planted: Planted, urls: list[str], role: str
) -> None:
    """The test can see the words: they are in every place the issue found them."""
    bodies = _read(planted, role, urls)
    phrase = PLANTED_PHRASE.replace(" ", "+")
    expected = [
        "/v1/analytics/trends?dimension=topic",
        "/v1/analytics/trends?dimension=cluster",
        "/v1/analytics/spikes?dimension=topic&min_count=1&all_values=true",
        "/v1/analytics/spikes?dimension=cluster&min_count=1&all_values=true",
        f"/v1/analytics/before-after?at={planted.annotation_id}",
        f"/v1/analytics/before-after?at=2026-10-24&dimension=topic&value={phrase}",
        "/v1/analytics/friction?dimension=topic",
        "/v1/analytics/issues?dimension=topic",
        "/v1/analytics/clusters?examples=5",
        f"/v1/analytics/clusters/{planted.cluster_id}/members",
        "/dashboard/",
        "/dashboard/topics?dimension=topic",
        f"/v1/conversations/{planted.ids['planted-0']}",
        f"/dashboard/conversations/{planted.ids['planted-0']}",
    ]
    missing = [u for u in expected if not PLANTED.search(bodies[u][1])]
    assert not missing, {u: bodies[u][0] for u in missing}


def test_topic_tree_names_themes_not_phrases(planted: Planted) -> None:
    """Before any clustering the topics page shows the keyphrase topic tree: to a viewer as
    numbered themes, without its phrases."""
    admin, viewer = planted.tree_pages["admin"], planted.tree_pages["viewer"]
    assert 'id="topics"' in admin and PLANTED.search(admin)
    assert 'id="topics"' in viewer and "theme 1" in viewer
    assert not PLANTED.search(viewer)


def test_agent_reads_its_own_conversation_only(planted: Planted, urls: list[str]) -> None:
    bodies = _read(planted, "agent", urls)
    own, other = planted.ids["own-0"], planted.ids["planted-0"]
    assert OWN_WORD in bodies[f"/v1/conversations/{own}/utterances"][1]
    assert OWN_WORD in bodies[f"/dashboard/conversations/{own}"][1]
    assert bodies[f"/v1/conversations/{other}"][0] == 404
    assert bodies[f"/dashboard/conversations/{other}"][0] == 404
    # Team-wide analytics are not the agent's to read.
    assert {bodies[u][0] for u in urls if u.startswith("/v1/analytics/")} == {403}
    for role in ("viewer", "none"):
        assert not [u for u, (_, body) in _read(planted, role, urls).items() if OWN_WORD in body]
