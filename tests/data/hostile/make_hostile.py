#!/usr/bin/env python3
"""Write the hostile intake corpus in this folder, and `expected.json`: what ingest must
make of each file (how many conversations stored, and words every reject reason holds).

Run from the repository root: `.venv/bin/python tests/data/hostile/make_hostile.py`.
Each file is what a careless export or an attacker produces; none may crash a batch.
Nothing here unzips archives, so there is no zip bomb to try.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MSG = {"author": "ann", "text": "hello"}
# file name -> (content, conversations stored, words each reject reason must contain)
CORPUS: dict[str, tuple[bytes, int, list[str]]] = {}


def add(name: str, content: bytes | str, stored: int = 0, *reasons: str) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    CORPUS[name] = (data, stored, list(reasons))


def conversation(**fields: Any) -> dict[str, Any]:
    return {"id": "h", "messages": [MSG], **fields}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def nested(depth: int, inner: str = "1") -> str:
    return '{"a":' * depth + inner + "}" * depth


# -- conversation JSON / JSONL --------------------------------------------------------------
add("json/deep_array.json", "[" * 1000 + "]" * 1000, 0, "nested too deeply")
add("json/deep_object.json", nested(1000), 0, "nested too deeply")
add("json/deep_meta.json", dumps(conversation(id="dm")).replace('"h"', '"dm"')[:-1]
    + ', "meta": ' + nested(200) + "}", 0, "nested deeper than")  # fmt: skip
add("json/started_at_huge.json", dumps(conversation(id="s1", started_at=-1e20)), 0,
    "started_at", "out of range")  # fmt: skip
add("json/sent_at_huge.json", dumps({"id": "s2", "messages": [{**MSG, "sent_at": 1e30}]}), 0,
    "sent_at", "out of range")  # fmt: skip
add("json/sent_at_before_year_1.json",
    dumps({"id": "s3", "messages": [{**MSG, "sent_at": "0001-01-01T00:00:00+05:00"}]}), 0,
    "sent_at", "out of range")  # fmt: skip
add("json/links_list.json", dumps(conversation(id="l1", links=[1])), 0, "'links' must be")
WRONG = [
    {"id": "w1", "messages": "hello"},
    {"id": "w2", "messages": [MSG], "participants": 7},
    {"id": "w3", "messages": [MSG], "participants": [{"id": "a", "external_ids": [1]}]},
    {"id": "w4", "messages": [MSG], "tags": {"a": 1}},
    {"id": {"x": 1}, "messages": [MSG]},
    {"id": "w6", "messages": [MSG], "meta": [1, 2]},
    {"id": "w7", "messages": [{"author": "a", "text": 42}]},
    {"id": "w8", "messages": [{**MSG, "channel_index": 10**12}]},
    {"id": "w9", "messages": [{**MSG, "start": 1, "end": 1e400}]},
    {"id": "w10", "messages": [MSG], "duration_seconds": float("nan")},
    {"id": "w11", "messages": [{"author": ["a"], "text": "x"}]},
    {"id": "w12", "messages": [MSG], "channel": "carrier pigeon"},
    "just a string",
    None,
]
add("json/wrong_types.json", json.dumps(WRONG), 0)
add("json/huge_integer.json", '[{"id": "n1", "messages": [{"author": "a", "text": "x", '
    '"start": ' + "9" * 5000 + ', "end": 1}]}]', 0, "integer")  # fmt: skip
add("json/surrogate.jsonl", '{"id": "u1", "messages": [{"author": "a", "text": "x\\ud800y"}]}\n',
    0, "invalid Unicode")  # fmt: skip
add("json/nul_bytes.json", b'{"id": "z1", "messages": [{"author": "a", "text": "x\x00y"}]}', 0,
    "invalid JSON")  # fmt: skip
add("json/empty.jsonl", "", 0, "empty")
add("json/empty.ndjson", "", 0, "empty")
add("json/blank_lines.jsonl", "\n\n   \n", 0, "no records")
add("json/empty_array.json", "[]", 0, "no records")
add("json/empty.json", "", 0, "empty")
add("json/truncated_mid_string.json", '[{"id": "t1", "messages": [{"author": "a", "text": "cut',
    0, "invalid JSON")  # fmt: skip
add("json/invalid_utf8.json", b"\xff\xfe\xfa\x00\x9c garbage \xc3\x28 {[", 0, "")
add("json/random_binary.jsonl", bytes(range(256)) * 4, 0, "")
# Hostile encodings of good content: read, not lost.
GOOD = {"id": "enc", "source": "hostile", "messages": [{"author": "Zoë", "text": "Grüße"}]}
add("json/utf16_bom.json", "\ufeff".encode("utf-16-le") + dumps({**GOOD, "id": "enc16"}).encode(
    "utf-16-le"), 1)  # fmt: skip
add("json/utf8_bom.jsonl", b"\xef\xbb\xbf" + dumps({**GOOD, "id": "enc8"}).encode() + b"\n", 1)
add("json/latin1.jsonl", dumps({**GOOD, "id": "enc1"}).encode("latin-1") + b"\n", 1)
# One id in two files with different content: the first is kept, the second rejected.
add("json/dup_a.json", dumps({"id": "dup", "source": "hostile", "messages": [MSG]}), 1)
add("json/dup_b.json", dumps({"id": "dup", "source": "hostile",
    "messages": [{"author": "ann", "text": "changed"}]}), 0, "duplicate", "dup_a.json")  # fmt: skip

# -- CSV ------------------------------------------------------------------------------------
add("csv/giant_field.csv", "author,text\nann," + "x" * 140_000 + "\n", 1)
add("csv/header_only.csv", "author,text\n", 0, "header row only")
add("csv/empty.csv", "", 0, "empty file")
add("csv/nul_bytes.csv", b"author,text\nann,a\x00b\n", 1)
add("csv/unbalanced_quote.csv", 'author,text\nann,"never closed\nbob,hi\n', 1)
add("csv/utf16_bom.csv", "\ufeffauthor,text\nzoë,grüße\n".encode("utf-16-le"), 1)
add("csv/bad_timestamps.csv", "conversation_id,author,text,sent_at\nc1,ann,hi,1e30\n"
    "c2,bob,yo,-99999999999999999999\n", 0, "not a timestamp")  # fmt: skip
add("csv/wrong_numbers.csv", "author,text,start,end\nann,hi,inf,nan\nbob,yo,x,1\n", 0,
    "")  # fmt: skip

# -- email ----------------------------------------------------------------------------------
add("email/empty.eml", "", 0, "empty")
add("email/binary.eml", bytes(range(256)) * 8, 0, "")
add("email/overflow_date.eml", "From: a@x.com\nTo: support@acme.com\nSubject: hi\n"
    "Date: Mon, 1 Jan 99999 00:00:00 +0000\nMessage-ID: <od@x>\n\nhello\n", 1)  # fmt: skip
add("email/raw_8bit_headers.eml", b"From: Jos\xe9 <j@x.com>\nSubject: Caf\xe9 \xff\xfe\n"
    b"Message-ID: <eb@x>\n\nbody text\n", 1)  # fmt: skip
add("email/truncated.mbox", "From a@x Mon Jan  1 00:00:00 2026\nFrom: a@x.com\nSubject: cut\n"
    "Content-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/pl", 0, "")  # fmt: skip

# -- helpdesk (Zendesk) -----------------------------------------------------------------------
add("helpdesk/deep_tickets.json", '{"tickets": [' + nested(1000) + "]}", 0, "nested too deeply")
add("helpdesk/wrong_types.json", json.dumps({"tickets": [
    {"id": 1, "subject": "s", "requester_id": 2, "comments": "nope"},
    {"id": 2, "subject": "s", "requester_id": 2, "comments": [
        {"id": 1, "author_id": 2, "body": "hi", "created_at": 1e30}]},
    {"id": 3, "subject": "s", "requester_id": 2, "created_at": -1e20, "custom_fields": [1],
     "comments": [{"id": 1, "author_id": {"x": 1}, "body": "hi", "created_at": 1}]},
    {"id": 4, "subject": ["s"], "via": "web", "group": [1], "tags": "x", "requester_id": [],
     "comments": [{"id": 1, "author_id": 2, "body": "hi", "created_at": "2026-01-01T00:00:00Z"}]},
    7,
]}), 1)  # fmt: skip
add("helpdesk/users_not_a_list.json", json.dumps({"tickets": [], "users": {"x": 1}}), 0, "users")
add("helpdesk/empty_tickets.json", '{"tickets": []}', 0, "no tickets")

# -- subtitles and sidecars -------------------------------------------------------------------
add("subtitles/empty.vtt", "", 0, "")
add("subtitles/garbage.srt", bytes(range(256)) * 2, 0, "")
add("subtitles/huge_timestamps.vtt", "WEBVTT\n\n99999999999:00:00.000 --> 99999999999:00:01.000\n"
    "<v Ann>hello\n", 0, "")  # fmt: skip
add("subtitles/bad_sidecar.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\n<v Ann>hello\n", 0, "sidecar")
add("subtitles/bad_sidecar.meta.json", '{"started_at": -1e20, "meta": ' + nested(900) + "}", 0)
add("subtitles/deep_meta.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\n<v Ann>hello\n", 0, "meta")
add("subtitles/deep_meta.meta.json", '{"id": "dmv", "meta": ' + nested(100) + "}", 0)

# -- audio ------------------------------------------------------------------------------------
add("audio/random.wav", bytes((i * 97 + 13) % 256 for i in range(4096)), 0, "")
add("audio/riff_header_only.wav", b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\x00\x00\x00\x01\x00\x02"
    b"\x00\xff\xff\xff\x7f\x00\x00\x00\x00\x04\x00\x10\x00data\xff\xff\xff\x7f", 0, "")  # fmt: skip
add("audio/empty.mp3", b"", 0, "")
add("audio/text.ogg", b"this is not audio at all\n" * 40, 0, "")


def main() -> None:
    for folder in ("json", "csv", "email", "helpdesk", "subtitles", "audio"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    expected = {}
    for name, (data, stored, reasons) in CORPUS.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if not name.endswith(".meta.json"):  # a sidecar is read with the file it describes
            expected[name] = {"stored": stored, "reason_words": reasons}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"{len(CORPUS)} files in {HERE}")


if __name__ == "__main__":
    main()
