"""Any JSON HLR API, described by a JsonMapping in the configuration (type
"generic_json"): the request the mapping's templates say, the answer read where
its paths point (json_mapping.py, docs/vendors/generic-json.md).

The mapping says where things are; what they mean for hlrd is decided here, the
same way for every vendor so described and the same way as the written adapters:

* reachability: a non-zero `map_error` first (the network's own reason), then
  `status` (through its map to a family), then `reachable` (false: absent); a
  `map_error` of 0 alone says connected. An answer that says none of them is no
  answer (a partial body), and a status the map does not list is refused rather
  than guessed;
* roaming is hlrd's country compare (derive.py): for a connected subscriber the
  serving MSC, network and country as the vendor gives them, the roaming country
  unless the vendor says it is not roaming; a vendor that says "not roaming" and
  names nothing else is taken as serving from home (the subscription's network,
  the number's country). An unreachable subscriber is served nowhere;
* masked or malformed digits (`26001*****`) are no value, never a guess.

No message holds the number, a credential or the vendor's free text: only the
provider's name, HTTP statuses and hlrd's own words.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ...domain.map_errors import MapError
from ...domain.numbers import region_of_digits
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .json_mapping import (
    BOOL,
    COUNTRY,
    DIGITS,
    INT,
    PLACEHOLDER,
    UNKNOWN,
    JsonMapping,
    key_of,
)
from .provider import OneRequestVendor, Request

# A status family -> (delivered, map_error), as the SMPP side reads the same states.
MEANINGS: dict[str, tuple[bool | None, int | None]] = {
    "connected": (True, None),
    "absent": (False, int(MapError.ABSENT_SUBSCRIBER)),
    "unknown_subscriber": (False, int(MapError.UNKNOWN_SUBSCRIBER)),
    "barred": (False, int(MapError.CALL_BARRED)),
    "not_provisioned": (False, int(MapError.TELESERVICE_NOT_PROVISIONED)),
    "system_failure": (False, int(MapError.SYSTEM_FAILURE)),
    "unknown": (None, None),
}

# Digit lengths a field can have; anything else is a masked or broken value.
_LENGTHS = {
    "imsi": range(6, 16),
    "mccmnc": range(5, 7),
    "serving_mccmnc": range(5, 7),
    "home_mccmnc": range(5, 7),
    "msc": range(3, 16),
}
_MAX_MESSAGE_ID = 64
# A vendor's status word safe to name in a message (it helps whoever writes the
# map): a word, or a short code — never something as long as a number.
_SAFE_WORD = re.compile(r"[A-Za-z_][A-Za-z_.-]{0,31}|\d{1,3}")
_NUMBER_MARKS = str.maketrans("", "", " -")


class Credentials(Protocol):
    """What `vendor()` reads of an HttpProviderConfig."""

    @property
    def name(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    @property
    def api_secret(self) -> str: ...


def vendor(cfg: Credentials, mapping: JsonMapping | None) -> GenericJson:
    """The factory's adapter for a `generic_json` provider."""
    if mapping is None:
        raise ValueError(f"{cfg.name}: a generic_json provider needs [upstream.providers.mapping]")
    return GenericJson(mapping, cfg.api_key, cfg.api_secret, cfg.name)


class GenericJson(OneRequestVendor):
    """The request the mapping describes, and its answer read into an HlrAnswer."""

    def __init__(
        self, mapping: JsonMapping, api_key: str = "", api_secret: str = "", name: str = "vendor"
    ) -> None:
        self.mapping = mapping
        self._name = name
        self._key = api_key
        self._secret = api_secret
        self._headers = self._fixed_headers()

    def _fixed_headers(self) -> dict[str, str]:
        """The same for every lookup: built once. ValueError (naming no value) for a
        credential no header can carry — a key read from a file with its newline."""
        r = self.mapping.request
        secrets = {"api_key": self._key, "api_secret": self._secret}
        headers = {"Accept": "application/json"}
        if r.body is not None:
            headers["Content-Type"] = "application/json"
        for name, template in r.headers.items():
            for default in [h for h in headers if h.lower() == name.lower()]:
                del headers[default]
            headers[name] = _fill(template, secrets)
        if r.auth == "header":
            headers[r.auth_header] = _fill(r.auth_value, secrets)
        elif r.auth == "basic":
            pair = f"{self._key}:{self._secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        for value in headers.values():
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
                raise ValueError(
                    f"{self._name}: api_key or api_secret holds a line break or control "
                    "character, which no HTTP header can carry"
                )
        return headers

    def request(self, msisdn: str, lookup_id: str) -> Request:
        r = self.mapping.request
        e164 = "+" + msisdn
        quoted = {"msisdn": urllib.parse.quote(msisdn, safe=""), "e164": "%2B" + msisdn}
        path = _fill(r.path, quoted)
        if r.auth == "query":
            key = urllib.parse.quote(self._key, safe="")
            path += ("&" if "?" in path else "?") + f"{r.auth_param}={key}"
        body = None
        if r.body is not None:
            values = {"msisdn": msisdn, "e164": e164, "api_key": self._key}
            values["api_secret"] = self._secret
            escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}
            body = _fill(r.body, escaped).encode()
        headers = self._headers
        return Request(r.method, path, body, lambda: dict(headers))

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        if not 200 <= status <= 299:
            if self._says_invalid(status, body):
                return HlrAnswer(delivered=False, map_error=int(MapError.UNKNOWN_SUBSCRIBER))
            raise ProviderError(self._refusal(status))
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise ProviderError(f"{self._name} answered something that is not JSON") from None
        number = self._raw(doc, "number")
        if number is not None and _number(number) != msisdn:
            raise ProviderError(f"{self._name} answered about another number")
        delivered, map_error = self._reachability(doc)
        mccmnc = self._value(doc, "mccmnc")
        answer = HlrAnswer(
            delivered=delivered,
            map_error=map_error,
            imsi=self._value(doc, "imsi"),
            mccmnc=mccmnc,
            home_mccmnc=self._value(doc, "home_mccmnc"),
            ported=_bool(self._value(doc, "ported")),
            message_id=self._value(doc, "message_id"),
        )
        if delivered is True and not map_error:
            self._serving(answer, doc, msisdn)
        return answer

    def _serving(self, answer: HlrAnswer, doc: Any, msisdn: str) -> None:
        """Where a reachable subscriber is served, for hlrd's country compare."""
        roaming = _bool(self._value(doc, "roaming"))
        answer.msc = self._value(doc, "msc")
        answer.serving_mccmnc = self._value(doc, "serving_mccmnc")
        visited = self._value(doc, "roaming_country") if roaming is not False else None
        answer.serving_country = self._value(doc, "serving_country") or visited
        if roaming is False and not (answer.msc or answer.serving_mccmnc or answer.serving_country):
            answer.serving_mccmnc = answer.mccmnc
            answer.serving_country = region_of_digits(msisdn)

    def _reachability(self, doc: Any) -> tuple[bool | None, int | None]:
        code = self._value(doc, "map_error")
        if code:
            return False, code
        fields = self.mapping.fields
        if "status" in fields:
            family = self._value(doc, "status")
            if family is not None:
                return MEANINGS[family]
            raw = self._raw(doc, "status")
            if raw is not None:
                word = key_of(raw)
                named = f" {word!r}" if word is not None and _SAFE_WORD.fullmatch(word) else ""
                raise ProviderError(
                    f"{self._name} answered a status{named} the mapping does not list"
                )
        reachable = self._value(doc, "reachable")
        if reachable is True:
            return True, None
        if reachable is False:
            return False, int(MapError.ABSENT_SUBSCRIBER)
        if reachable == UNKNOWN:
            return None, None
        if code == 0:
            return True, None
        names = [n for n in ("status", "reachable", "map_error") if n in fields]
        raise ProviderError(f"{self._name} answered without {' or '.join(names)}")

    def _raw(self, doc: Any, name: str) -> Any:
        spec = self.mapping.fields.get(name)
        return walk(doc, spec.path) if spec is not None else None

    def _value(self, doc: Any, name: str) -> Any:
        """The field's value as hlrd reads it, or None: missing, null, unlisted in
        its map, or not a value of its kind."""
        spec = self.mapping.fields.get(name)
        if spec is None:
            return None
        raw = walk(doc, spec.path)
        if spec.map is not None:
            key = key_of(raw)
            value = spec.map.get(key) if key is not None else None
        else:
            reader = _READERS.get(name) or _READERS_BY_KIND[spec.kind]
            value = reader(raw)
        lengths = _LENGTHS.get(name)
        if value is not None and lengths is not None and len(value) not in lengths:
            return None
        return value

    def _says_invalid(self, status: int, body: bytes) -> bool:
        rule = self.mapping.invalid_number
        if status not in rule.statuses:
            return False
        if rule.path is None:
            return True
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return False
        return key_of(walk(doc, rule.path)) in rule.values

    def _refusal(self, status: int) -> str:
        if status in (401, 403):
            return (
                f"{self._name} refused the credentials (HTTP {status}): "
                "check api_key, api_secret and the mapping's auth"
            )
        if status == 404:
            return f"{self._name} has no such endpoint (HTTP 404): check base_url and request.path"
        return f"{self._name} answered HTTP {status}"


def walk(doc: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (object keys, list indexes), or None where there is none."""
    here = doc
    for step in path:
        if isinstance(here, dict):
            here = here.get(step)
        elif isinstance(here, list) and step.isascii() and step.isdigit() and len(step) < 10:
            index = int(step)
            here = here[index] if index < len(here) else None
        else:
            return None
        if here is None:
            return None
    return here


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Placeholders replaced in one pass: a value holding `{msisdn}` stays as it is."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _number(value: Any) -> str | None:
    """The E.164 digits of the answer's number: `+` and spaces or dashes dropped."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    return value.translate(_NUMBER_MARKS).removeprefix("+")


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _read_bool(value: Any) -> bool | str | None:
    """JSON booleans, and the strings "true", "false" and "unknown" many APIs send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return word == "true"
        if word == UNKNOWN:
            return UNKNOWN
    return None


def _read_int(value: Any) -> int | None:
    """A MAP error code: a JSON integer or a decimal string, 0-255."""
    if isinstance(value, str) and value.isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= 5 else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 255 else None


def _read_digits(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _read_country(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha()
    return value.upper() if ok else None


def _read_status(value: Any) -> str | None:
    """Without a map the vendor must speak hlrd's family names."""
    return value.lower() if isinstance(value, str) and value.lower() in MEANINGS else None


def _read_message_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_MESSAGE_ID:
        return None
    return value if value.isascii() and value.isprintable() else None


_READERS_BY_KIND: dict[str, Callable[[Any], Any]] = {
    BOOL: _read_bool,
    INT: _read_int,
    DIGITS: _read_digits,
    COUNTRY: _read_country,
}
_READERS: dict[str, Callable[[Any], Any]] = {
    "status": _read_status,
    "message_id": _read_message_id,
}
