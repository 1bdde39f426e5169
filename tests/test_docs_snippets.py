"""Every fenced snippet in README.md and docs/ is checked: JSON, TOML and YAML parse;
Python compiles, and runs against a live server where it calls one; `convolens` command
lines parse against the real CLI (options and arguments exist), and dry runs run. A
snippet that cannot run says so in the doc, on the line before its fence:
`<!-- snippet: skip (why) -->`. The API's /docs and /redoc work offline."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from typer.testing import CliRunner

from convolens.cli import app
from service.live_server import ADMIN_KEY, Server, unlabelled_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")


@dataclass
class Snippet:
    path: Path
    line: int
    lang: str
    text: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets() -> Iterator[Snippet]:
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            fence = re.match(r"^```(\w*)\s*$", lines[index])
            if fence is None:
                index += 1
                continue
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            marker = SKIP.search(lines[index - 1]) if index else None
            yield Snippet(
                path,
                index + 1,
                fence[1] or "text",
                "\n".join(lines[index + 1 : end]),
                marker["why"] if marker else None,
            )
            index = end + 1


ALL = list(snippets())


def _of(*langs: str) -> list[Snippet]:
    return [s for s in ALL if s.lang in langs]


def _id(snippet: Snippet) -> str:
    return snippet.where


def test_snippets_are_found_and_skips_stay_few() -> None:
    assert len(_of("json")) >= 10 and _of("python") and _of("sh", "bash")
    skipped = [s.where for s in ALL if s.skip]
    # Each skip is a snippet nobody checks: keep the list short.
    assert len(skipped) <= 12, skipped


@pytest.mark.parametrize("snippet", _of("json"), ids=_id)
def test_json_snippets_parse(snippet: Snippet) -> None:
    if snippet.skip:
        pytest.skip(snippet.skip)
    # One document, or several in a row (JSON Lines, a stream of events).
    decoder, text, position = json.JSONDecoder(), snippet.text, 0
    while position < len(text.rstrip()):
        _, position = decoder.raw_decode(text, position)
        while position < len(text) and text[position] in " \t\r\n":
            position += 1


@pytest.mark.parametrize("snippet", _of("toml"), ids=_id)
def test_toml_snippets_parse(snippet: Snippet) -> None:
    tomllib.loads(snippet.text)


@pytest.mark.parametrize("snippet", _of("yaml", "yml"), ids=_id)
def test_yaml_snippets_parse(snippet: Snippet) -> None:
    yaml.safe_load(snippet.text)


def test_the_conversation_json_example_ingests_without_colliding(tmp_path: Path) -> None:
    """The documented object is a valid conversation, and its id is no demo's."""
    (example,) = [s for s in _of("json") if '"messages"' in s.text and "formats.md" in s.where]
    record = json.loads(example.text)
    demo_ids = {
        json.loads(line)["id"]
        for line in (ROOT / "examples" / "chats" / "support_chats.jsonl").read_text().splitlines()
        if line.strip()
    }
    assert record["id"] not in demo_ids
    path = tmp_path / "example.json"
    path.write_text(example.text)
    result = CliRunner().invoke(app, ["ingest", str(path), "--db", str(tmp_path / "d.duckdb")])
    assert result.exit_code == 0 and "0 of 1 records rejected" in result.output, result.output


@pytest.mark.parametrize("snippet", _of("python"), ids=_id)
def test_python_snippets_compile(snippet: Snippet) -> None:
    compile(snippet.text, snippet.where, "exec")


# -- command lines --------------------------------------------------------------------------
def _command_lines(snippet: Snippet) -> Iterator[list[str]]:
    for raw in snippet.text.replace("\\\n", " ").splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line:
            yield shlex.split(line, comments=True)


def _parse_cli(args: list[str]) -> None:
    """Parse `args` as the real CLI would, without running the command."""
    command: click.Command = typer.main.get_command(app)
    ctx = command.make_context("convolens", list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
        assert sub is not None, name
        command, ctx = sub, sub.make_context(name, rest, parent=ctx)


SHELL = _of("sh", "bash")


@pytest.mark.parametrize("snippet", SHELL, ids=_id)
def test_shell_snippets_use_real_commands_and_options(
    snippet: Snippet, monkeypatch: pytest.MonkeyPatch
) -> None:
    if snippet.skip:
        pytest.skip(snippet.skip)
    makefile = (ROOT / "Makefile").read_text()
    for args in _command_lines(snippet):
        if args[0] == "convolens":
            try:
                _parse_cli(args[1:])
            except click.UsageError as exc:
                pytest.fail(f"{snippet.where}: `{shlex.join(args)}`: {exc.format_message()}")
            if args[1] == "ingest" and "--dry-run" in args and (ROOT / args[2]).exists():
                # Dry runs of files in the repository write nothing: run them for real.
                monkeypatch.chdir(ROOT)
                result = CliRunner().invoke(app, args[1:], catch_exceptions=False)
                assert result.exit_code == 0, result.output
        elif args[0] == "make":
            for target in args[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
        elif args[0].endswith("python") and len(args) > 1:
            assert (ROOT / args[1]).is_file(), args[1]
        elif args[0] in ("curl", "pip"):
            continue  # needs a running server / the network: shown, not run
        else:
            pytest.fail(f"{snippet.where}: no check for `{args[0]}` lines")


# -- against a live server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with unlabelled_server(tmp_path_factory.mktemp("docs")) as server:
        yield server


SERVER_SNIPPETS = [s for s in _of("python") if "BASE_URL" in s.text]


@pytest.mark.parametrize("snippet", SERVER_SNIPPETS, ids=_id)
def test_python_snippets_run_against_a_live_server(snippet: Snippet, plain: Server) -> None:
    exec(
        compile(snippet.text, snippet.where, "exec"), {"BASE_URL": plain.url, "API_KEY": ADMIN_KEY}
    )


def test_python_snippets_run_or_say_why_not() -> None:
    silent = [s.where for s in _of("python") if "BASE_URL" not in s.text and not s.skip]
    assert not silent, f"run these (BASE_URL/API_KEY) or mark them skipped with a reason: {silent}"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_only_local_assets(plain: Server, page: str) -> None:
    with plain.client(key=None) as client:
        response = client.get(page)
        assert response.status_code == 200
        parser = _Assets()
        parser.feed(response.text)
        scripts = re.findall(r"url:\s*'([^']+)'|spec-url=\"([^\"]+)\"", response.text)
        urls = parser.urls + [a or b for a, b in scripts]
        assert any(url.endswith(".js") for url in urls), urls
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200, url
        assert "cdn.jsdelivr" not in response.text and "fonts.googleapis" not in response.text


@pytest.mark.parametrize(("page", "ready"), [("/docs", ".swagger-ui .info .title"),
                                             ("/redoc", "h1")])  # fmt: skip
def test_api_docs_render_in_a_browser_with_no_network(plain: Server, page: str, ready: str) -> None:
    """In Chromium with every request off the server refused, the page draws the API."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail(f"{chromium} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            tab = browser.new_page()

            def route(request_route: Any) -> None:
                url = request_route.request.url
                if url.startswith(plain.url):
                    request_route.continue_()
                else:
                    elsewhere.append(url)
                    request_route.abort()

            tab.route("**/*", route)
            tab.goto(plain.url + page)
            tab.wait_for_selector(ready, timeout=30_000)
            assert "convolens" in tab.inner_text(ready)
        finally:
            browser.close()
    # ReDoc's "API docs by Redocly" badge is an image from its CDN: cosmetic, and refused
    # here like any other request off the server; nothing the page needs comes from there.
    assert [url for url in elsewhere if not url.endswith("redoc/logo-mini.svg")] == []
