"""The analytics routes on the real server: the library's answers over HTTP, per role."""

from __future__ import annotations

import json

import httpx
from live_server import EXAMPLES, Server, wait_job


def _submit_support_chats(admin: httpx.Client) -> list[str]:
    ids = []
    for line in (EXAMPLES / "chats" / "support_chats.jsonl").read_text().splitlines()[:6]:
        accepted = admin.post("/v1/conversations", json=json.loads(line)).json()
        ids.append(accepted["job_id"])
    return [wait_job(admin, job)["status"] for job in ids]


PROBLEMS = {
    "login": [
        "The password reset email never arrives in my inbox.",
        "I asked for a reset link three times and got no email at all.",
        "Reset password mail is not coming through, can't log in.",
        "No password reset message shows up, even in spam.",
    ],
    "billing": [
        "I was billed two times for my subscription this month.",
        "There are two identical charges on my card for the same plan.",
        "You billed me double for the monthly subscription.",
        "My card got charged two times for one renewal.",
    ],
}


def _submit_problems(admin: httpx.Client) -> dict[str, str]:
    jobs, ids = [], {}
    for group, texts in PROBLEMS.items():
        for n, text in enumerate(texts):
            record = {
                "id": f"analytics-{group}-{n}",
                "channel": "chat",
                "started_at": f"2026-11-0{n + 2}T10:00:00Z",
                "participants": [{"id": "c", "role": "customer"}, {"id": "a", "role": "agent"}],
                "messages": [
                    {"author": "c", "text": text},
                    {"author": "a", "text": "Sorry about that, let me look into it."},
                ],
            }
            accepted = admin.post("/v1/conversations", json=record).json()
            jobs.append(accepted["job_id"])
            ids[accepted["conversation_id"]] = group
    assert {wait_job(admin, job)["status"] for job in jobs} == {"completed"}
    return ids


def test_trends_agents_and_clusters_over_http(server: Server, admin: httpx.Client) -> None:
    assert set(_submit_support_chats(admin)) == {"completed"}
    groups = _submit_problems(admin)
    trends = admin.get("/v1/analytics/trends", params={"dimension": "channel", "top": 5})
    assert trends.status_code == 200, trends.text
    points = trends.json()["points"]
    assert sum(p["conversations"] for p in points if p["value"] == "chat") >= 6
    assert all(0 < p["share"] <= 1 for p in points)

    team = admin.get("/v1/analytics/agents").json()
    names = {card["agent"] for card in team["agents"]}
    assert "Sam Patel" in names  # the agent of chat-20260903-0001

    accepted = admin.post("/v1/analytics/clusters/refresh", params={"refit": True}).json()
    job = wait_job(admin, accepted["job_id"])
    assert job["status"] == "completed" and job["result"]["statements"] >= 6
    clusters = admin.get("/v1/analytics/clusters").json()
    assert clusters and all(c["size"] >= 1 and c["label"] for c in clusters)
    assert any(c["representative"] for c in clusters)
    # Worded differently, grouped by meaning: each problem's chats share one cluster.
    where: dict[str, set[str]] = {}
    for cluster in clusters:
        members = admin.get(f"/v1/analytics/clusters/{cluster['cluster_id']}/members").json()
        for member in members:
            if member["conversation_id"] in groups:
                where.setdefault(groups[member["conversation_id"]], set()).add(
                    cluster["cluster_id"]
                )
    assert set(where) == {"login", "billing"}
    assert all(len(found) == 1 for found in where.values()) and where["login"] != where["billing"]

    viewer_key = admin.post("/v1/keys", json={"name": "analytics viewer", "role": "viewer"})
    with server.client(viewer_key.json()["key"]) as viewer:
        seen = viewer.get("/v1/analytics/clusters").json()
    # Aggregates only: the same clusters, without a word of conversation text.
    assert [c["cluster_id"] for c in seen] == [c["cluster_id"] for c in clusters]
    assert all(c["representative"] == "" and c["examples"] == [] for c in seen)


def test_bad_parameters_say_what_to_fix(admin: httpx.Client) -> None:
    wrong = admin.get("/v1/analytics/trends", params={"dimension": "colour"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "invalid_analytics_request"
    assert "colour" in wrong.json()["error"]["message"]
    lift = admin.get("/v1/analytics/lift")
    assert lift.status_code == 422 and lift.json()["error"]["code"] == "no_business_data"
    assert "convolens import accounts" in lift.json()["error"]["message"]
    date = admin.get("/v1/analytics/before-after", params={"at": "last tuesday"})
    assert date.status_code == 422 and date.json()["error"]["code"] == "invalid_date"
