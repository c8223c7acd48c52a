"""/ui as compliance staff use it: Debian's Chromium, headless, driven by chromedriver.

Each test works the page as a person would (file inputs, forms, buttons, links) and
holds what it shows to what the API answers for the same thing: the preview and the
summary of a wash, the annotated file downloaded through the page's own link, the
verdict and reasons of a check, a list imported through the form, the token form, an
erasure's receipt. The page must load nothing but the daemon's own URLs, break no
rule of its Content-Security-Policy (a violation is a SEVERE console entry) and fit
a phone's width. Screenshots go to $HLRD_SCREENSHOTS when set (else the test's tmp
dir), to be looked at.

The browser runs in a thread (`off_loop`): the daemon serving the page runs on the
test's event loop, which must stay free while the page talks to it. The API is asked
from that thread too, with urllib.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from simulator.controller import Simulator

from .conftest import ROOT
from .daemon_harness import running_daemon
from .test_docs_page import off_loop

DEMO_CALLS = ROOT / "config" / "demo-calls.csv"
TOKEN = "secret-token"
WAIT_S = 20.0


# -- helpers (all called in the browser's thread) ----------------------------------------


class Api:
    """The daemon's API as the tests ask it (from the browser's thread, with urllib)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def raw(self, method: str, path: str) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.base + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str) -> Any:
        return json.loads(self.raw(method, path)[1])

    def upload(self, path: str, body: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def check(self, number: str) -> Any:
        return self.json("GET", f"/v1/check/{urllib.parse.quote(number, safe='')}")


def waiter(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(
        browser,
        WAIT_S,
        poll_frequency=0.05,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )


def wait_for(browser: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any]) -> Any:
    return waiter(browser).until(condition)


def by_id(browser: webdriver.Chrome, element_id: str) -> WebElement:
    return browser.find_element(By.ID, element_id)


def visible(browser: webdriver.Chrome, element_id: str) -> WebElement:
    def shown(d: webdriver.Chrome) -> WebElement | bool:
        element = d.find_element(By.ID, element_id)
        return element if element.is_displayed() else False

    found: WebElement = wait_for(browser, shown)
    return found


def open_section(browser: webdriver.Chrome, name: str) -> None:
    """Through the tab bar, as a person does (the hash follows)."""
    browser.find_element(By.CSS_SELECTOR, f'nav a[data-section="{name}"]').click()
    visible(browser, f"sec-{name}")
    assert browser.execute_script("return location.hash") == f"#{name}"


def type_into(browser: webdriver.Chrome, element_id: str, text: str) -> None:
    field = by_id(browser, element_id)
    field.clear()
    field.send_keys(text)


def shoot(
    browser: webdriver.Chrome,
    shots: Path,
    name: str,
    element_id: str | None = None,
    where: str = "start",
) -> None:
    """A screenshot, with that element scrolled to the top (or the centre) first."""
    if element_id is not None:
        browser.execute_script(
            "arguments[0].scrollIntoView({block: arguments[1]})", by_id(browser, element_id), where
        )
    browser.save_screenshot(str(shots / f"web-{name}.png"))


def no_horizontal_scroll(browser: webdriver.Chrome) -> None:
    wide = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wide <= 0, f"{wide} px wider than the window"


def chart(browser: webdriver.Chrome, chart_id: str) -> dict[str, str]:
    """A chart read as its table: the row's code -> the count shown."""
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{chart_id} tbody tr[data-code]")
    return {
        str(r.get_attribute("data-code")): r.find_element(By.CSS_SELECTOR, "td.count").text
        for r in rows
    }


def check_number(browser: webdriver.Chrome, number: str) -> dict[str, Any]:
    """Types the number and submits with Enter (the keyboard, not a click); what the
    page then shows of the verdict."""
    previous = browser.execute_script(
        "const v = document.getElementById('check-decision-id'); return v && v.textContent"
    )
    type_into(browser, "check-number", number)
    by_id(browser, "check-number").send_keys(Keys.ENTER)

    def answered(d: webdriver.Chrome) -> bool:
        shown = d.execute_script(
            "const v = document.getElementById('check-decision-id'); return v && v.textContent"
        )
        return bool(shown) and shown != previous

    wait_for(browser, answered)
    verdict = by_id(browser, "verdict")
    reasons = browser.find_elements(By.CSS_SELECTOR, "#check-reasons li")
    return {
        "decision": verdict.get_attribute("data-decision"),
        "call": verdict.get_attribute("data-call") == "true",
        "title": by_id(browser, "verdict-title").text,
        "reasons": [str(li.get_attribute("data-code")) for li in reasons],
        "reason_texts": [li.find_element(By.CLASS_NAME, "reason-text").text for li in reasons],
        "decision_id": by_id(browser, "check-decision-id").text,
    }


def assert_clean(
    browser: webdriver.Chrome, port: int, expected_refusals: tuple[int, ...] = ()
) -> set[str]:
    """No console complaint (a CSP violation is SEVERE) but the API's expected refusals
    (Chromium logs a fetch answered 4xx as a failed load); nothing requested but the
    daemon's own URLs; no phone number kept in the hash or in storage. The URLs asked."""
    get_log: Callable[[str], list[dict[str, Any]]] = browser.get_log  # untyped in Selenium
    console, network = get_log("browser"), get_log("performance")
    refused = tuple(f"status of {status} " for status in expected_refusals)
    complaints = [
        e
        for e in console
        if e["level"] in ("SEVERE", "WARNING")
        and not (refused and "/v1/" in e["message"] and any(r in e["message"] for r in refused))
    ]
    assert complaints == []
    requested = set()
    for entry in network:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"])
    origin = f"http://127.0.0.1:{port}/"
    assert {u for u in requested if not u.startswith(("data:", origin))} == set()
    assert browser.execute_script("return localStorage.length") == 0
    stored = browser.execute_script("return JSON.stringify(Object.entries(sessionStorage))")
    assert "486" not in stored and "486" not in browser.execute_script("return location.hash")
    return requested


# -- the tests -------------------------------------------------------------------------


def _wash(browser: webdriver.Chrome, port: int, shots: Path, downloads: Path, tmp: Path) -> None:
    api = Api(port)
    browser.get(f"http://127.0.0.1:{port}/ui")
    assert browser.title.endswith("· hlrd")
    visible(browser, "sec-wash")  # the first section when the hash names none
    wait_for(browser, lambda d: by_id(d, "up-policy").get_attribute("value") == "default")
    shoot(browser, shots, "wash-empty")
    by_id(browser, "up-file").send_keys(str(DEMO_CALLS))
    type_into(browser, "up-name", "December campaign")
    by_id(browser, "up-submit").click()
    # The preview, once the daemon has read the file: what the page says is the API's.
    visible(browser, "job-preview")
    start = visible(browser, "job-start")
    jobs = api.json("GET", "/v1/jobs")["jobs"]
    assert len(jobs) == 1 and jobs[0]["state"] == "ready"
    job = jobs[0]
    layout, preview = job["layout"], job["preview"]
    assert by_id(browser, "job-name").text == "Job “December campaign”"
    assert by_id(browser, "layout-column").text == (
        f"“{layout['phone_column_name']}”, column {layout['phone_column'] + 1}"
    )
    assert "header" in by_id(browser, "layout-detected").text
    assert by_id(browser, "layout-delimiter").text.startswith("semicolon")
    assert by_id(browser, "layout-header").text == f"Yes — {len(layout['header'])} columns"
    shown = {
        key: by_id(browser, f"pv-{name}").text
        for key, name in (
            ("rows", "rows"),
            ("valid", "valid"),
            ("duplicates", "duplicates"),
            ("blocked_by_lists", "blocked"),
            ("cached", "cached"),
            ("to_look_up", "lookups"),
        )
    }
    assert shown == {key: str(preview[key]) for key in shown}
    assert by_id(browser, "pv-invalid").text == str(sum(preview["invalid"].values()))
    for problem, count in preview["invalid"].items():
        assert by_id(browser, f"pv-invalid-{problem}").text == str(count)
    assert by_id(browser, "job-state").text == "Ready to start"
    phone = browser.find_element(By.CSS_SELECTOR, "#layout-columns li.phone")
    assert phone.text == f"{layout['phone_column_name']} — the phone column"
    shoot(browser, shots, "wash-preview", "job")
    # Started: the bar, fed by the event stream, reaches 100 %; then the summary.
    start.click()
    wait_for(browser, lambda d: by_id(d, "job-progress").get_attribute("value") == "100")
    visible(browser, "job-summary")
    wait_for(browser, lambda d: by_id(d, "job-state").text == "Done")
    total = preview["rows"]
    assert by_id(browser, "job-progress-text").text == f"{total} of {total} rows (100.0 %)"
    done = api.json("GET", f"/v1/jobs/{job['id']}")
    summary = done["summary"]
    allowed = summary["by_decision"]["allow"]
    assert by_id(browser, "job-headline").text.startswith(
        f"{allowed} of {summary['rows']} rows may be called; {summary['rows'] - allowed} may not"
    )
    assert chart(browser, "chart-decisions") == {
        k: str(v) for k, v in summary["by_decision"].items()
    }
    assert chart(browser, "chart-countries") == {
        k: str(v) for k, v in summary["by_country"].items()
    }
    assert chart(browser, "chart-reasons") == {k: str(v) for k, v in summary["by_reason"].items()}
    decisions = by_id(browser, "chart-decisions")
    assert "Do not call" in decisions.text and "May be called" in decisions.text
    assert "Poland (PL)" in by_id(browser, "chart-countries").text
    assert "Roaming outside the EEA" in by_id(browser, "chart-reasons").text
    # The bars are drawn in proportion (the table is what a screen reader reads).
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('#chart-decisions .bar-fill')].map(e => "
        "e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width)"
    )
    counts = [summary["by_decision"][code] for code in chart(browser, "chart-decisions")]
    assert len(drawn) == len(counts) > 1
    for share, count in zip(drawn, counts, strict=True):
        assert abs(share - count / summary["rows"]) < 0.01, (drawn, counts)
    shoot(browser, shots, "wash-done", "job-summary")
    browser.execute_script(
        "document.getElementById('job-downloads').scrollIntoView({block: 'center'})"
    )
    shoot(browser, shots, "wash-downloads")
    # annotated.csv through the page's link: the API's bytes, exactly.
    link = browser.find_element(By.CSS_SELECTOR, '#job-downloads a[data-file="annotated.csv"]')
    assert link.get_attribute("href") == (
        f"http://127.0.0.1:{port}/v1/jobs/{job['id']}/files/annotated.csv"
    )
    link.click()

    # Chromium writes <name>.crdownload and renames it once whole: the name is the signal.
    saved = downloads / f"{job['id']}-annotated.csv"
    wait_for(browser, lambda _: saved.exists())
    status, body = api.raw("GET", f"/v1/jobs/{job['id']}/files/annotated.csv")
    assert status == 200 and saved.read_bytes() == body
    assert [p.name for p in downloads.iterdir()] == [saved.name]
    # A second list with its phone column named: a name that is none is refused beside
    # the field, in the API's words; the right one is used as chosen.
    small = tmp / "small.csv"
    small.write_text("id,tel\n1,+48600000001\n2,+48600000002\n")
    by_id(browser, "up-file").send_keys(str(small))
    type_into(browser, "up-column", "phone number")
    by_id(browser, "up-submit").click()
    error = visible(browser, "up-column-error")
    status, refusal = api.upload("/v1/jobs?column=phone%20number", small.read_bytes())
    assert status == 400 and refusal["error"]["field"] == "column"
    assert error.text.lower() == refusal["error"]["message"].lower()
    assert by_id(browser, "up-column").get_attribute("aria-invalid") == "true"
    shoot(browser, shots, "wash-column-refused", "upload-form")
    type_into(browser, "up-column", "tel")
    by_id(browser, "up-submit").click()
    wait_for(browser, lambda d: by_id(d, "layout-detected").text == "as you chose it")
    visible(browser, "job-start")
    second = next(j for j in api.json("GET", "/v1/jobs")["jobs"] if j["id"] != job["id"])
    assert by_id(browser, "job-name").text == "Unnamed job"
    assert by_id(browser, "pv-rows").text == str(second["preview"]["rows"]) == "2"
    # Cancelled before it ran, then deleted through the table (asked twice).
    by_id(browser, "job-cancel").click()
    wait_for(browser, lambda d: by_id(d, "job-state").text == "Cancelled")
    assert not by_id(browser, "job-start").is_displayed()
    row = browser.find_element(By.CSS_SELECTOR, f'#jobs-table tr[data-job="{second["id"]}"]')
    row.find_element(By.XPATH, ".//button[text()='Delete']").click()
    confirm = row.find_element(By.XPATH, ".//button[text()='Yes, delete']")
    assert "Delete the job and its files?" in row.text
    shoot(browser, shots, "wash-delete-confirm", "jobs-table", "center")
    confirm.click()
    wait_for(browser, lambda d: not by_id(d, "job").is_displayed())
    assert [j["id"] for j in api.json("GET", "/v1/jobs")["jobs"]] == [job["id"]]
    # The first job is still in the table, done, and opens again with its summary.
    row = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, f'#jobs-table tr[data-job="{job["id"]}"]'),
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr")) == 1
    assert "Done" in row.text and "December campaign" in row.text
    shoot(browser, shots, "wash-jobs", "jobs-table", "center")
    row.find_element(By.XPATH, ".//button[text()='Open']").click()
    visible(browser, "job-summary")
    assert chart(browser, "chart-decisions") == {
        k: str(v) for k, v in summary["by_decision"].items()
    }
    # A phone's width: one column, nothing wider than the screen.
    browser.set_window_size(400, 900)
    wait_for(browser, lambda d: d.execute_script("return window.innerWidth") <= 400)
    no_horizontal_scroll(browser)
    browser.execute_script("window.scrollTo(0, 0)")
    shoot(browser, shots, "wash-narrow-top")
    shoot(browser, shots, "wash-narrow-summary", "job-summary")
    shoot(browser, shots, "wash-narrow-jobs", "jobs-table")
    requested = assert_clean(browser, port, expected_refusals=(400,))
    assert any(u.endswith(f"/v1/jobs/{job['id']}/events") for u in requested)  # the stream


async def test_a_list_is_uploaded_previewed_washed_and_downloaded_in_the_page(
    sim: Simulator, browser: webdriver.Chrome, shots: Path, downloads: Path, tmp_path: Path
) -> None:
    async with running_daemon(sim) as (daemon, _):
        await off_loop(_wash, browser, daemon.http_port, shots, downloads, tmp_path)


def _check(browser: webdriver.Chrome, port: int, shots: Path) -> None:
    api = Api(port)
    browser.get(f"http://127.0.0.1:{port}/ui")
    visible(browser, "sec-wash")
    wait_for(browser, lambda d: by_id(d, "check-policy").get_attribute("value") == "default")
    # By keyboard alone: the skip link, the tabs (with a visible focus ring), Enter on
    # one, then on into its form.
    focused: list[str] = []
    for key in (Keys.TAB, Keys.TAB, Keys.TAB, Keys.ENTER, Keys.TAB):
        ActionChains(browser).send_keys(key).perform()
        active = browser.switch_to.active_element
        focused.append(str(active.get_attribute("id") or active.get_attribute("class")))
        if key == Keys.TAB and active.tag_name == "a":
            ring = (
                active.value_of_css_property("outline-style"),
                active.value_of_css_property("outline-width"),
            )
            assert ring == ("solid", "3px"), (focused, ring)
    assert focused == ["skip", "tab-wash", "tab-check", "check-h", "check-number"]
    visible(browser, "sec-check")
    assert not by_id(browser, "sec-wash").is_displayed()
    assert browser.execute_script("return location.hash") == "#check"
    egypt = check_number(browser, "+48600000003")
    answer = api.check("+48600000003")
    assert (
        (egypt["decision"], egypt["call"])
        == (answer["decision"], answer["call"])
        == (
            "block",
            False,
        )
    )
    assert egypt["reasons"] == answer["reasons"] == ["roaming_non_eea"]
    assert egypt["title"].endswith("Do not call")
    assert egypt["reason_texts"] == ["Roaming outside the EEA (in Egypt)"]
    assert by_id(browser, "fact-roaming").text == "Abroad, in Egypt (EG)"
    assert by_id(browser, "fact-reachability").text.startswith("Reachable")
    assert "default, version" in by_id(browser, "check-record").text
    announced = browser.execute_script(
        "return document.getElementById('check-announce').textContent"
    )
    assert "Do not call" in announced and "Egypt" in announced
    shoot(browser, shots, "check-block")
    shoot(browser, shots, "check-block-details", "check-lookup", "center")
    home = check_number(browser, "+48600000001")
    answer = api.check("+48600000001")
    assert (
        (home["decision"], home["call"])
        == (answer["decision"], answer["call"])
        == (
            "allow",
            True,
        )
    )
    assert home["reasons"] == answer["reasons"] == []
    assert home["title"].endswith("Call")
    assert by_id(browser, "fact-roaming").text == "At home, in Poland (PL)"
    shoot(browser, shots, "check-allow")
    # A refused number: the API's message beside the field, tied to it for readers.
    type_into(browser, "check-number", "12")
    by_id(browser, "check-submit").click()
    error = visible(browser, "check-number-error")
    status, body = api.raw("GET", "/v1/check/12")
    message = json.loads(body)["error"]["message"]
    assert status == 400 and error.text.lower() == message.lower()
    field = by_id(browser, "check-number")
    assert field.get_attribute("aria-invalid") == "true"
    assert "check-number-error" in str(field.get_attribute("aria-describedby")).split()
    assert error.get_attribute("role") == "alert"
    assert not by_id(browser, "check-result").is_displayed()
    shoot(browser, shots, "check-invalid")
    # Under a policy whose Polish calling hours open only tomorrow: not now, and when.
    Select(by_id(browser, "check-policy")).select_by_value("evening")
    assert "applies calling hours" in by_id(browser, "check-policy-hint").text
    later = check_number(browser, "+48600000001")
    answer = api.json("GET", "/v1/check/%2B48600000001?policy=evening")
    assert (
        (later["decision"], later["call"])
        == (answer["decision"], answer["call"])
        == (
            "defer",
            False,
        )
    )
    assert later["reasons"] == answer["reasons"]
    assert later["reasons"][0].split(":") in (["calling_hours", "PL"], ["public_holiday", "PL"])
    assert later["title"].endswith("Not now — call later")
    assert answer["retry_after"] in by_id(browser, "check-retry-after").text
    assert "version 2026-11" in by_id(browser, "check-record").text
    shoot(browser, shots, "check-defer", "verdict", "center")
    Select(by_id(browser, "check-policy")).select_by_value("default")
    browser.set_window_size(400, 900)
    wait_for(browser, lambda d: d.execute_script("return window.innerWidth") <= 400)
    check_number(browser, "+48600000003")
    no_horizontal_scroll(browser)
    shoot(browser, shots, "check-narrow", "verdict")
    shoot(browser, shots, "check-narrow-details", "check-lookup")
    assert_clean(browser, port, expected_refusals=(400,))


async def test_a_number_is_checked_and_explained_as_the_api_answers(
    sim: Simulator, browser: webdriver.Chrome, shots: Path
) -> None:
    # A policy whose Polish calling hours open only tomorrow, so that it defers now.
    tomorrow = (datetime.now(ZoneInfo("Europe/Warsaw")) + timedelta(days=1)).weekday()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[tomorrow]
    evening = {"version": "2026-11", "hours": {"PL": {day: ["10:00-11:00"]}}}
    async with running_daemon(sim, policies={"evening": evening}) as (daemon, _):
        await off_loop(_check, browser, daemon.http_port, shots)


def _import(browser: webdriver.Chrome, port: int, shots: Path, listed: Path) -> None:
    api = Api(port)
    browser.get(f"http://127.0.0.1:{port}/ui#lists")
    visible(browser, "sec-lists")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#lists tr[data-list="dnc"]'))
    shoot(browser, shots, "lists-before")
    type_into(browser, "im-name", "robinson")
    by_id(browser, "im-file").send_keys(str(listed))
    browser.find_element(By.CSS_SELECTOR, "#import-form details summary").click()
    type_into(browser, "im-version", "2026-11")
    by_id(browser, "im-submit").click()
    wait_for(browser, lambda d: "Imported" in by_id(d, "im-status").text)
    assert by_id(browser, "im-bar").get_attribute("value") == by_id(
        browser, "im-bar"
    ).get_attribute("max")
    row = wait_for(
        browser, lambda d: d.find_element(By.CSS_SELECTOR, '#lists tr[data-list="robinson"]')
    )
    info = {x["name"]: x for x in api.json("GET", "/v1/lists")["lists"]}["robinson"]
    assert row.find_element(By.CLASS_NAME, "list-numbers").text == str(info["numbers"]) == "2"
    assert "Fresh" in row.find_element(By.CLASS_NAME, "list-freshness").text
    assert info["version"] == "2026-11" and "2026-11" in row.text
    assert "2 numbers listed" in by_id(browser, "im-status").text
    shoot(browser, shots, "lists-import-done", "im-status", "center")
    shoot(browser, shots, "lists-imported", "lists-table", "center")
    browser.set_window_size(400, 900)
    wait_for(browser, lambda d: d.execute_script("return window.innerWidth") <= 400)
    no_horizontal_scroll(browser)
    shoot(browser, shots, "lists-narrow", "lists")
    browser.set_window_size(1400, 1000)
    # A listed number is now blocked by that list, before any lookup.
    open_section(browser, "check")
    shown = check_number(browser, "+48600000002")
    answer = api.check("+48600000002")
    assert shown["decision"] == answer["decision"] == "block"
    assert shown["reasons"] == answer["reasons"] == ["listed:robinson"]
    assert shown["reason_texts"] == ["On the do-not-call list “robinson”"]
    assert "No lookup was made" in by_id(browser, "check-no-lookup").text
    shoot(browser, shots, "check-listed", "verdict", "center")
    # A list past its freshness limit (here a second) is marked STALE, and then blocks
    # every number (the default `[lists] stale = "block"`).
    open_section(browser, "lists")
    type_into(browser, "im-name", "old")
    by_id(browser, "im-file").send_keys(str(listed))
    type_into(browser, "im-max-age", "0.00001")
    by_id(browser, "im-submit").click()
    wait_for(browser, lambda d: "Imported “old”" in by_id(d, "im-status").text)

    def stale(d: webdriver.Chrome) -> list[WebElement]:
        rows = d.find_elements(By.CSS_SELECTOR, '#lists tr[data-list="old"].stale')
        if not rows:
            by_id(d, "lists-refresh").click()  # as a person would, until it turns
        return rows

    row = WebDriverWait(browser, WAIT_S, poll_frequency=0.25).until(stale)[0]
    assert row.find_element(By.CLASS_NAME, "list-freshness").text.startswith("STALE")
    shoot(browser, shots, "lists-stale", "lists-table", "center")
    open_section(browser, "check")
    shown = check_number(browser, "+48600000001")
    answer = api.check("+48600000001")
    assert shown["reasons"] == answer["reasons"] == ["list_stale:old"]
    assert shown["reason_texts"] == ["The do-not-call list “old” is out of date (stale)"]
    shoot(browser, shots, "check-stale", "verdict", "center")
    assert_clean(browser, port)


async def test_a_list_imported_in_the_page_blocks_its_numbers(
    sim: Simulator, browser: webdriver.Chrome, shots: Path, tmp_path: Path
) -> None:
    listed = tmp_path / "robinson.txt"
    listed.write_text("# a registry's file\n+48600000002\n+48600000004\n")
    async with running_daemon(sim) as (daemon, _):
        await off_loop(_import, browser, daemon.http_port, shots, listed)


def _token(browser: webdriver.Chrome, port: int, shots: Path) -> None:
    browser.get(f"http://127.0.0.1:{port}/ui#lists")
    visible(browser, "auth")
    assert not by_id(browser, "sec-lists").is_displayed()
    assert by_id(browser, "auth-token").get_attribute("type") == "password"
    label = browser.find_element(By.CSS_SELECTOR, 'label[for="auth-token"]')
    assert label.text == "Access token"
    shoot(browser, shots, "token-form")
    # A wrong token is refused, saying so; the right one loads the lists.
    type_into(browser, "auth-token", "not-the-token")
    by_id(browser, "auth-token").send_keys(Keys.ENTER)
    error = visible(browser, "auth-token-error")
    assert "not accepted" in error.text
    shoot(browser, shots, "token-refused")
    type_into(browser, "auth-token", TOKEN)
    by_id(browser, "auth-token").send_keys(Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#lists tr[data-list="dnc"]'))
    assert not by_id(browser, "auth").is_displayed()
    assert by_id(browser, "session").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('hlrd.token')") == TOKEN
    shoot(browser, shots, "token-accepted")
    assert_clean(browser, port, expected_refusals=(401,))


async def test_the_token_form_appears_when_the_api_wants_one(
    sim: Simulator, browser: webdriver.Chrome, shots: Path
) -> None:
    async with running_daemon(sim, http={"auth_tokens": [TOKEN]}) as (daemon, _):
        await off_loop(_token, browser, daemon.http_port, shots)


def _erasure(browser: webdriver.Chrome, port: int, shots: Path) -> None:
    api = Api(port)
    erased, objecting = "+48600000005", "+48600000004"
    assert api.check(erased)["decision"] == "block"  # looked up: one cached answer
    browser.get(f"http://127.0.0.1:{port}/ui")
    visible(browser, "sec-wash")
    open_section(browser, "erasure")
    type_into(browser, "erase-number", erased)
    by_id(browser, "erase-submit").click()  # not confirmed: refused, nothing erased
    visible(browser, "erase-confirm-error")
    assert by_id(browser, "erase-confirm").get_attribute("aria-invalid") == "true"
    assert api.check(erased)["reasons"] != ["erased"]
    shoot(browser, shots, "erasure-unconfirmed")
    by_id(browser, "erase-confirm").click()
    by_id(browser, "erase-submit").click()
    receipt = visible(browser, "erase-receipt")
    assert "was erased" in receipt.text
    assert by_id(browser, "er-cached").text == "1"
    assert by_id(browser, "er-own").text == "None was kept"
    assert by_id(browser, "er-audit").text.startswith("2 ")  # the two checks above
    assert api.check(erased)["reasons"] == ["erased"]
    assert by_id(browser, "erase-number").get_attribute("value") == ""  # not left in the form
    assert not by_id(browser, "erase-confirm").is_selected()
    shoot(browser, shots, "erasure-receipt", "erase-receipt")
    type_into(browser, "object-number", objecting)
    by_id(browser, "object-submit").click()
    receipt = visible(browser, "object-receipt")
    assert by_id(browser, "ob-reason").text == "objection (GDPR Art. 21)"
    assert api.check(objecting)["reasons"] == ["listed:dnc"]
    shoot(browser, shots, "objection-receipt", "object-receipt")
    assert_clean(browser, port)


async def test_an_erasure_and_an_objection_give_their_receipts(
    sim: Simulator, browser: webdriver.Chrome, shots: Path
) -> None:
    async with running_daemon(sim) as (daemon, _):
        await off_loop(_erasure, browser, daemon.http_port, shots)
