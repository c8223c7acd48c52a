"""/docs as a person sees it: Debian's Chromium, headless, driven by chromedriver.

The page must show every operation, every status it can answer and every schema of
the document; load nothing but itself (no CDN, no font, no favicon: hlrd runs where
there is no internet) and break no rule of its Content-Security-Policy; and work as a
page: the menu jumps to an operation, an example opens. Screenshots are written to
$HLRD_SCREENSHOTS when set (else the test's tmp dir) to be looked at.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.common.by import By

from hlrd.frontends.api_docs import render_docs
from hlrd.frontends.openapi import load_spec
from simulator.controller import Simulator

from .daemon_harness import running_daemon

SPEC = load_spec()
T = TypeVar("T")


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in SPEC["paths"].items() for m, op in item.items()]


class _Page(HTMLParser):
    """Tags, ids and the resources an HTML page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: set[str] = set()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if a.get("src") or (tag == "link" and a.get("href")):
            self.loads.append(str(a.get("src") or a.get("href")))


def test_the_page_has_every_operation_and_schema_and_loads_nothing_else() -> None:
    """Without a browser: what the page is made of (runs where Chromium is missing)."""
    html = render_docs(SPEC)
    page = _Page()
    page.feed(html)
    assert {f"op-{op['operationId']}" for _, _, op in _operations()} <= page.ids
    assert {f"schema-{name}" for name in SPEC["components"]["schemas"]} <= page.ids
    assert "script" not in page.tags
    assert page.loads == ["data:,"]  # the favicon, inline
    assert "url(" not in html and "@import" not in html  # no font or image from CSS


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """WebDriver blocks; the daemon serving the page runs on this event loop."""
    return await asyncio.to_thread(call, *args)


async def test_the_docs_page_in_chromium(
    sim: Simulator, browser: webdriver.Chrome, shots: Path
) -> None:
    async with running_daemon(sim) as (daemon, _):
        url = f"http://127.0.0.1:{daemon.http_port}/docs"
        await off_loop(browser.get, url)
        assert browser.title == f"{SPEC['info']['title']} {SPEC['info']['version']}"
        await off_loop(browser.save_screenshot, str(shots / "docs-top.png"))
        browser.execute_script("document.getElementById('auth').scrollIntoView()")
        await off_loop(browser.save_screenshot, str(shots / "docs-auth-errors.png"))
        # Every operation is shown with its method, path and every status it answers.
        for path, method, op in _operations():
            section = browser.find_element(By.ID, f"op-{op['operationId']}")
            heading = section.find_element(By.TAG_NAME, "h2").text
            assert method.upper() in heading and path in heading
            rows = section.find_elements(By.CSS_SELECTOR, "table.resp tbody tr")
            statuses = {r.find_element(By.CSS_SELECTOR, ".st").text for r in rows}
            assert statuses == set(op["responses"]), (path, method)
        for name in SPEC["components"]["schemas"]:
            assert browser.find_element(By.ID, f"schema-{name}").is_displayed()
        # The menu sits left of the content and jumps to an operation.
        nav = browser.find_element(By.TAG_NAME, "nav")
        main = browser.find_element(By.TAG_NAME, "main")
        assert nav.rect["x"] + nav.rect["width"] <= main.rect["x"] + 1
        await off_loop(browser.find_element(By.CSS_SELECTOR, 'nav a[href="#op-check"]').click)
        top = browser.execute_script(
            "return document.getElementById('op-check').getBoundingClientRect().top"
        )
        assert -2 < top < 50  # scrolled to it (sub-pixel rounding aside)
        await off_loop(browser.save_screenshot, str(shots / "docs-check.png"))
        responses = browser.find_element(By.CSS_SELECTOR, "#op-check table.resp")
        browser.execute_script("arguments[0].scrollIntoView()", responses)
        await off_loop(browser.save_screenshot, str(shots / "docs-responses.png"))
        # A closed example opens when its summary is clicked.
        closed = browser.find_element(By.CSS_SELECTOR, "#op-check details:not([open])")
        await off_loop(closed.find_element(By.TAG_NAME, "summary").click)
        assert closed.get_attribute("open") is not None
        assert closed.find_element(By.TAG_NAME, "pre").is_displayed()
        await off_loop(browser.save_screenshot, str(shots / "docs-example-open.png"))
        schema = browser.find_element(By.ID, "schema-LookupResult")
        browser.execute_script("arguments[0].scrollIntoView()", schema)
        await off_loop(browser.save_screenshot, str(shots / "docs-schema.png"))
        # A phone's width: one column, nothing wider than the screen.
        await off_loop(browser.set_window_size, 400, 900)
        browser.execute_script("window.scrollTo(0, 0)")
        wide = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0
        await off_loop(browser.save_screenshot, str(shots / "docs-narrow.png"))
        console = await off_loop(browser.get_log, "browser")
        network = await off_loop(browser.get_log, "performance")
    # Nothing complained (a CSP violation or a failed load is a console error) ...
    assert [e for e in console if e["level"] in ("SEVERE", "WARNING")] == []
    # ... and the page loaded nothing but itself.
    requested = set()
    for entry in network:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"])
    assert {u for u in requested if not u.startswith("data:")} == {url}
    sizes = _png_sizes(shots)
    assert len(sizes) == 7
    assert {name: size for name, size in sizes.items() if size < 10_000} == {}  # blank: ~2 KB


def _png_sizes(where: Path) -> dict[str, int]:
    return {png.name: png.stat().st_size for png in where.glob("docs-*.png")}
