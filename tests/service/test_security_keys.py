"""Admin key lifecycle against a real `convolens serve`, restarted with and without
CONVOLENS_ADMIN_KEY: the environment key is a bootstrap only, a revoked key stays revoked,
a key from the environment stops working when the server starts without the variable, and
easy-to-guess keys are refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from live_server import ADMIN_KEY, Server

from convolens.service.auth import check_key_strength

# The Makefile's demo key: public, so it may only work while the server runs with it.
DEMO_KEY = "clk_demo_change-me-in-production-0000"
QUIET = {"CONVOLENS_WORKERS": "0", "CONVOLENS_PRELOAD": "0"}
WEAK_KEYS = [
    "clk_a_" + "a" * 26,  # the example: 32 characters, one repeated
    "clk_admin_" + "s3cret" * 6,  # a repeated pattern
    "clk_admin_abcdefghijklmnopqrstuvwxyz",  # a run
    "clk_admin_Short1234",  # too short
    "clk_admin_" + "x" * 40 + "Ab1",  # one character dominates
    "admin_0vdzjXPvEL8hnuORqR2MMQHPu_e4zMknTWOTnS8tjYc",  # not clk_<id>_<secret>
    "clk_ad min_0vdzjXPvEL8hnuORqR2MMQHPu_e4zMknTWOTnS8tjYc",
]


def status(server: Server, key: str) -> int:
    with server.client(key) as client:
        return client.get("/v1/keys").status_code


def generated_keys(server: Server) -> list[str]:
    """The keys the server generated: announced in its log, handed over in a file beside
    the warehouse (the log is no terminal), never written to the log itself."""
    log = server.log.read_text()
    announced = re.findall(r"created an admin API key \((\w+)\); it is in (\S+) ", log)
    keys = []
    for key_id, path in announced:
        handed = Path(path)
        assert handed == server.db.with_name(server.db.name + ".admin-key")
        assert handed.stat().st_mode & 0o777 == 0o600
        key = handed.read_text().strip()
        assert key.startswith(f"clk_{key_id}_") and key.split("_", 2)[2] not in log
        keys.append(key)
    return keys


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_weak_keys_fail_the_strength_check(key: str) -> None:
    with pytest.raises(ValueError, match=r"too easy to guess|must read clk_"):
        check_key_strength(key)


def test_strong_keys_pass() -> None:
    for key in (ADMIN_KEY, DEMO_KEY, "clk_ops-1_" + "Zq8-fT3_mW9.pL2~xR7kB4vN6cY1hJ5s"):
        check_key_strength(key)


def test_server_refuses_to_start_with_a_weak_key(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONVOLENS_ADMIN_KEY": WEAK_KEYS[0]}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("convolens")), "serve", "--db",
         str(tmp_path / "weak.duckdb"), "--port", "9"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "CONVOLENS_ADMIN_KEY" in output and "too easy to guess" in output
    assert "Traceback" not in output and WEAK_KEYS[0] not in output


def test_revoked_environment_key_stays_revoked_across_restarts(tmp_path: Path) -> None:
    server = Server(tmp_path / "keys.duckdb", tmp_path / "server.log", **QUIET).start()
    try:
        assert status(server, ADMIN_KEY) == 200
        with server.client() as admin:
            listed = admin.get("/v1/keys").json()
            assert [(k["key_id"], k["source"]) for k in listed] == [("testadmin", "environment")]
            second = admin.post("/v1/keys", json={"name": "ops", "role": "admin"}).json()
            # Generated keys carry 256 bits: clk_<12 hex>_<43 url-safe characters>.
            assert re.fullmatch(r"clk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", second["key"])
            check_key_strength(second["key"])
        with server.client(second["key"]) as ops:
            assert ops.delete("/v1/keys/testadmin").status_code == 204
        assert status(server, ADMIN_KEY) == 401

        server.stop()
        server.start()  # the same CONVOLENS_ADMIN_KEY again: it must not come back
        assert status(server, ADMIN_KEY) == 401
        assert status(server, second["key"]) == 200
        with server.client(second["key"]) as ops:
            keys = {k["key_id"]: k for k in ops.get("/v1/keys").json()}
        assert keys["testadmin"]["revoked"] is True
        assert generated_keys(server) == []  # an admin key still works: none generated
        assert "CONVOLENS_ADMIN_KEY 'testadmin' was revoked" in server.log.read_text()
    finally:
        server.stop()


def test_environment_key_works_only_while_the_variable_is_set(tmp_path: Path) -> None:
    server = Server(
        tmp_path / "demo.duckdb", tmp_path / "server.log", CONVOLENS_ADMIN_KEY=DEMO_KEY, **QUIET
    ).start()
    try:
        assert status(server, DEMO_KEY) == 200

        server.stop()
        del server.env["CONVOLENS_ADMIN_KEY"]  # as `convolens serve` without the variable
        server.start()
        assert status(server, DEMO_KEY) == 401
        [generated] = generated_keys(server)  # no usable admin left: one is made, once
        assert status(server, generated) == 200
        with server.client(generated) as admin:
            keys = {k["key_id"]: k for k in admin.get("/v1/keys").json()}
        assert keys["demo"]["disabled"] is True and keys["demo"]["revoked"] is False

        server.stop()
        server.start()  # still without it: nothing new generated, the demo key still off
        assert len(generated_keys(server)) == 1
        assert status(server, DEMO_KEY) == 401

        # Another key in the variable now that an admin key exists: ignored (bootstrap only).
        other = "clk_other_" + "Zq8-fT3_mW9.pL2~xR7kB4vN6cY1hJ5s"
        server.stop()
        server.env["CONVOLENS_ADMIN_KEY"] = other
        server.start()
        assert status(server, other) == 401
        assert "CONVOLENS_ADMIN_KEY ignored" in server.log.read_text()

        # The demo variable back (make demo again): its key works again, as it was only off.
        server.stop()
        server.env["CONVOLENS_ADMIN_KEY"] = DEMO_KEY
        server.start()
        assert status(server, DEMO_KEY) == 200
        assert status(server, generated) == 200
    finally:
        server.stop()


def test_first_start_without_variable_generates_a_strong_key(tmp_path: Path) -> None:
    server = Server(tmp_path / "fresh.duckdb", tmp_path / "server.log", **QUIET)
    del server.env["CONVOLENS_ADMIN_KEY"]
    server.start()
    try:
        [key] = generated_keys(server)
        check_key_strength(key)
        assert status(server, key) == 200
        with httpx.Client(base_url=server.url) as anonymous:
            assert anonymous.get("/v1/keys").status_code == 401
    finally:
        server.stop()
