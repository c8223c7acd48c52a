"""A registry file imported over HTTP (the web page's list import): in force when the
import says done, its progress told, bad options refused naming the field, nothing
of the file left behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from simulator.controller import Simulator

from .daemon_harness import running_daemon

LISTED = ("48600000007", "48600000008")


def _files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_a_registry_file_imported_over_http_blocks_its_numbers(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, http):
        async with http.get(f"/v1/check/+{LISTED[0]}") as r:
            before = (await r.json())["decision"]
        body = "# a registry\n" + "".join(f"+{n}\n" for n in LISTED) + "not a number\n"
        async with http.post(
            "/v1/lists/tps-extra/import?format=lines&version=2026-11-28&max_age_days=28",
            data=body.encode(),
        ) as r:
            assert r.status == 202, await r.text()
            started = await r.json()
            location = r.headers["Location"]
        assert started["state"] == "importing"
        assert started["bytes_total"] == len(body)
        assert daemon.list_imports is not None
        await daemon.list_imports.finished(started["id"])
        async with http.get(location) as r:
            done = await r.json()
        async with http.get(f"/v1/check/+{LISTED[0]}") as r:
            after = await r.json()
        async with http.get("/v1/lists") as r:
            lists = {x["name"]: x for x in (await r.json())["lists"]}
        data_dir = Path(daemon.config.store.data_dir)
    assert before == "allow"
    assert done["state"] == "done" and done["bytes_read"] == done["bytes_total"]
    assert done["info"]["numbers"] == 2 and done["info"]["invalid"] == 1
    assert done["info"]["version"] == "2026-11-28" and done["info"]["max_age_days"] == 28
    assert after["decision"] == "block" and "listed:tps-extra" in after["reasons"]
    assert lists["tps-extra"]["numbers"] == 2
    # The registry's plaintext is gone: only keyed hashes stay.
    assert list((data_dir / "lists" / "incoming").iterdir()) == []
    assert _files_holding(data_dir, LISTED[0].encode()) == []


async def test_bad_imports_are_refused_naming_the_field(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, http):
        for url, data, status, field in [
            ("/v1/lists/Bad Name/import", b"+48600000007\n", 400, "name"),
            ("/v1/lists/dnc/import", b"+48600000007\n", 400, "name"),
            ("/v1/lists/x/import?format=xml", b"+48600000007\n", 400, "format"),
            ("/v1/lists/x/import?change=maybe", b"+48600000007\n", 400, "change"),
            ("/v1/lists/x/import?region=Poland", b"+48600000007\n", 400, "region"),
            ("/v1/lists/x/import?max_age_days=-1", b"+48600000007\n", 400, "max_age_days"),
            ("/v1/lists/x/import?max_age_days=nan", b"+48600000007\n", 400, "max_age_days"),
            ("/v1/lists/x/import", b"", 400, "body"),
        ]:
            async with http.post(url, data=data) as r:
                got = (r.status, (await r.json())["error"].get("field"))
            assert got == (status, field), url
        # A change list for a list never imported fails, saying why, and changes nothing.
        async with http.post("/v1/lists/x/import?change=add", data=b"+48600000007\n") as r:
            started = await r.json()
        assert daemon.list_imports is not None
        failed = await daemon.list_imports.finished(started["id"])
        async with http.get("/v1/lists/imports/imp-nope") as r:
            unknown = r.status
        async with http.get("/v1/lists") as r:
            names = [x["name"] for x in (await r.json())["lists"]]
    assert failed.state == "failed" and failed.error is not None
    assert "import it in full first" in failed.error and "/" not in failed.error
    assert unknown == 404
    assert names == ["dnc"]


async def test_the_page_is_served_open_with_its_policy_and_the_root_leads_there(
    sim: Simulator,
) -> None:
    async with running_daemon(sim, http={"auth_tokens": ["t0ken"]}) as (_, http):
        async with http.get("/", allow_redirects=False) as r:
            root = (r.status, r.headers.get("Location"))
        async with http.get("/ui") as r:
            page = (r.status, r.headers["Content-Type"], r.headers["Content-Security-Policy"])
        async with http.get("/ui/app.js") as r:
            script = (r.status, r.headers["Content-Type"])
        async with http.get("/ui/other.js") as r:
            missing = r.status
        async with http.get("/v1/policies") as r:
            refused = r.status
        async with http.get("/v1/policies", headers={"Authorization": "Bearer t0ken"}) as r:
            policies = await r.json()
    assert root == (302, "/ui")
    assert page[:2] == (200, "text/html; charset=utf-8") and "script-src 'self'" in page[2]
    assert script == (200, "text/javascript; charset=utf-8")
    assert missing == 404
    assert refused == 401  # the page is open; what it shows is behind the token
    assert policies["default"] == "default"
    assert "default" in [p["name"] for p in policies["policies"]]
    assert json.dumps(policies).count('"version"') == len(policies["policies"])


async def test_a_second_import_while_one_is_received_is_refused(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, http):
        first_half = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b"+48600000007\n"
            first_half.set()
            await second_done.wait()
            yield b"+48600000008\n"

        second_done = asyncio.Event()
        first = asyncio.create_task(http.post("/v1/lists/one/import", data=slow_body()))
        await first_half.wait()
        async with http.post("/v1/lists/two/import", data=b"+48600000009\n") as r:
            second = (r.status, (await r.json())["error"]["code"])
        second_done.set()
        async with await first as r:
            started = await r.json()
        assert daemon.list_imports is not None
        done = await daemon.list_imports.finished(started["id"])
    assert second == (409, "import_running")
    assert done.state == "done" and done.info is not None and done.info["numbers"] == 2


async def test_a_file_the_reader_chokes_on_fails_the_import_and_frees_the_slot(
    sim: Simulator,
) -> None:
    mac_csv = b"name,phone\rAnna,+48600000007\rJan,+48600000008\r"  # Excel's "CSV (Macintosh)"
    async with running_daemon(sim) as (daemon, http):
        async with http.post("/v1/lists/x/import?format=csv&delimiter=ab", data=b"1\n") as r:
            refused = (r.status, (await r.json())["error"]["field"])
        async with http.post("/v1/lists/mac/import?format=csv", data=mac_csv) as r:
            started = await r.json()
        assert daemon.list_imports is not None
        failed = await daemon.list_imports.finished(started["id"])
        async with http.post("/v1/lists/next/import", data=b"+48600000009\n") as r:
            after = r.status
    assert refused == (400, "delimiter")
    assert failed.state in ("failed", "done") and failed.state != "importing"
    assert after == 202  # the slot is free again
