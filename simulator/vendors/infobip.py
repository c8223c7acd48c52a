"""Infobip Number Lookup `POST /number/1/query`, as docs/vendors/infobip-number-lookup.md
records it: `Authorization: App <key>`, up to 1,000 numbers a request, one
NcResponseDetails per number, errors in Infobip's `requestError` shape.

Where the vendor's public sources say nothing the imitation picks and says so: the
error group of every subscriber error is HANDSET_ERRORS (the adapter reads only the
error id); a number whose scenario rule never answers is left out of the answer
(a synchronous batch cannot hang for one number); a batch is answered after the
slowest number's latency. Tests queue `faults` for the failures a real provider
has: "throttle" (429, Retry-After), "server_error" (500), "malformed" (a cut-off
body), "partial" (results without status and error), "other_number" (the first
result names a number nobody asked for), "hang". `requests`, `numbers` and
`batch_sizes` (numbers per request -> requests) let a test or the bench say how
many requests a lookup cost.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections import Counter
from typing import Any

from aiohttp import web
from phonenumbers.geodata.locale import LOCALE_DATA

from hlrd.domain.countries import country_of_mcc, country_of_number

from ..scenario import Answer, Scenario, msisdn_of
from .base import Imitation

DEMO_KEY = "demo-infobip-api-key"
PATH = "/number/1/query"
MAX_NUMBERS = 1000
STRANGER = "41793026727"  # the vendor's own example number: never one of ours

_OK = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"}
_ERRORS: dict[str, tuple[int, str, str, bool]] = {
    # scenario status -> (error id = MAP code, name, description, permanent)
    "absent": (27, "EC_ABSENT_SUBSCRIBER", "Absent Subscriber", False),
    "unknown": (1, "EC_UNKNOWN_SUBSCRIBER", "Unknown Subscriber", True),
    "barred": (13, "EC_CALL_BARRED", "Call Barred", False),
    "not_provisioned": (11, "EC_TELESERVICE_NOT_PROVISIONED", "Teleservice Not Provisioned", True),
    "system_failure": (34, "EC_SYSTEM_FAILURE", "System Failure", False),
}
_DELIVERED = {
    "groupId": 3,
    "groupName": "DELIVERED",
    "id": 5,
    "name": "DELIVERED_TO_HANDSET",
    "description": "Message delivered to handset",
}
_UNDELIVERABLE = {
    "groupId": 2,
    "groupName": "UNDELIVERABLE",
    "id": 9,
    "name": "UNDELIVERABLE_NOT_DELIVERED",
    "description": "Message sent not delivered",
}


class InfobipImitation(Imitation):
    def __init__(self, scenario: Scenario, key: str = DEMO_KEY) -> None:
        super().__init__(scenario)
        self._auth = ("App " + key).encode()
        # Whether answers carry servingMSC ("depending on your package, some
        # information may not be accessible"): without it the adapter must place a
        # roaming subscriber by roamingNetwork alone.
        self.serving_msc = True
        self.numbers = 0  # in requests it answered
        self.batch_sizes: Counter[int] = Counter()  # numbers in a request -> requests
        self.arrived = asyncio.Event()  # set by every authentic request

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.query)

    async def query(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        sent = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(sent, self._auth):
            self.refused += 1
            return _error(401, "UNAUTHORIZED", "Invalid login details")
        self.arrived.set()
        fault = self.next_fault()
        if fault == "throttle":
            return _error(
                429, "TOO_MANY_REQUESTS", "Too many requests", {"Retry-After": self.retry_after}
            )
        if fault == "server_error":
            return _error(500, "GENERAL_ERROR", "Something went wrong. Please contact support.")
        if fault == "hang":
            await self.hang()
        numbers = _numbers(body)
        if numbers is None:
            return _error(400, "BAD_REQUEST", "Bad request")
        if len(numbers) > MAX_NUMBERS:
            return _error(
                400,
                "BAD_REQUEST",
                "[to : Number of destinations is limited to 1000. "
                "For larger requests use /number/1/notify API endpoint.]",
            )
        self.numbers += len(numbers)
        self.batch_sizes[len(numbers)] += 1
        answers = [self.scenario.answer(n) for n in numbers]
        latency = max((a.latency_s for a in answers), default=0.0)
        if latency:
            await asyncio.sleep(latency)
        results = [_result(a, self.serving_msc) for a in answers if a.fault != "never_answer"]
        if fault == "partial":
            for r in results:
                del r["status"], r["error"]
        if fault == "other_number" and results:
            results[0]["to"] = STRANGER
        text = json.dumps({"bulkId": secrets.token_hex(8), "results": results})
        if fault == "malformed":
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")


def _error(
    status: int, message_id: str, text: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}
    return web.json_response(body, status=status, headers=headers)


def _numbers(body: bytes) -> list[str] | None:
    """The asked numbers (`to`: an array, or one string), or None for a bad request.
    A "+" is refused: every vendor example sends digits only."""
    try:
        to = json.loads(body)["to"]
    except (ValueError, KeyError, TypeError):
        return None
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to:
        return None
    numbers = [msisdn_of(n) if isinstance(n, str) and n[:1] != "+" else None for n in to]
    return [n for n in numbers if n is not None] if None not in numbers else None


def _result(a: Answer, serving_msc: bool) -> dict[str, Any]:
    live = a.status == "live"
    r: dict[str, Any] = {"to": a.msisdn}
    if a.subscription_mccmnc:
        r["mccMnc"] = a.subscription_mccmnc
    if a.imsi:
        r["imsi"] = a.imsi
    original = _home_network(a.msisdn, a.home_mccmnc)
    if original:
        r["originalNetwork"] = original
    r["ported"] = bool(a.ported)
    if a.ported and a.subscription_mccmnc:
        r["portedNetwork"] = _network(a.subscription_mccmnc)
    roaming = live and bool(a.roaming) and a.serving_mccmnc is not None
    r["roaming"] = roaming
    if roaming and a.serving_mccmnc:
        r["roamingNetwork"] = _network(a.serving_mccmnc)
    if live and a.msc and serving_msc:
        r["servingMSC"] = a.msc
    if live:
        r["status"] = dict(_DELIVERED)
        r["error"] = {**_OK, "description": "No Error", "permanent": False}
    else:
        code, name, description, permanent = _ERRORS[a.status]
        r["status"] = dict(_UNDELIVERABLE)
        r["error"] = {
            "groupId": 1,
            "groupName": "HANDSET_ERRORS",
            "id": code,
            "name": name,
            "description": description,
            "permanent": permanent,
        }
    return r


def _home_network(msisdn: str, mccmnc: str | None) -> dict[str, Any] | None:
    """The range holder, as Infobip describes it: its calling code and the digits
    after it that start the range (here three)."""
    c = country_of_number(msisdn)
    if c is None:
        return None
    network: dict[str, Any] = {
        "networkPrefix": msisdn[len(c.calling_code) :][:3],
        "countryName": _english(c.iso),
        "countryPrefix": c.calling_code,
    }
    if mccmnc:
        network["networkId"] = int(mccmnc)  # Infobip's own id; here the MCC-MNC's digits
    return network


def _network(mccmnc: str) -> dict[str, Any]:
    """A network Infobip names by country (calling code, English name) and its own
    id: there is no MCC-MNC in a `Network`."""
    c = country_of_mcc(mccmnc)
    network: dict[str, Any] = {"networkId": int(mccmnc)}
    if c is not None:
        network.update(countryName=_english(c.iso), countryPrefix=c.calling_code)
    return network


def _english(iso: str) -> str:
    names = LOCALE_DATA.get(iso, {})
    name = names.get("en", "")
    return names.get(name[1:], "") if name.startswith("*") else name
