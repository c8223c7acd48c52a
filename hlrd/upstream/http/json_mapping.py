"""How a JSON HLR API nobody wrote an adapter for is asked and read: a JsonMapping.

Most HLR vendors are one HTTP request per number and a JSON answer with a status,
an IMSI, networks and a roaming flag, each in its own place and spelling. Rather
than a module per vendor, `[upstream.providers.mapping]` says in TOML what to send
(`request`), where each of hlrd's fields is in the answer and what its values mean
(`fields`), and which refusals mean "no such number" (`invalid_number`);
`generic_json.GenericJson` does the rest (docs/vendors/generic-json.md).

This module imports nothing of hlrd's configuration: the configuration imports it
to check a mapping when it loads. A ValueError's message starts with the key below
the mapping that is wrong (`fields.reachable.path: ...`), so the configuration can
prefix the provider's own key. Nothing here ever holds a credential: templates
name `{api_key}` / `{api_secret}`, the values come with the vendor object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# How a field's value is read: its kind is fixed by the hlrd field it fills.
STRING, BOOL, INT, DIGITS, COUNTRY = "string", "bool", "int", "digits", "country"
KINDS: dict[str, str] = {
    "status": STRING,  # the vendor's word for the subscriber's state -> a family below
    "reachable": BOOL,  # true / false / "unknown"
    "map_error": INT,  # a MAP error code (3GPP TS 29.002), 0 = none
    "imsi": DIGITS,
    "mccmnc": DIGITS,  # the subscription's network
    "serving_mccmnc": DIGITS,
    "msc": DIGITS,  # the serving MSC/VLR's global title
    "home_mccmnc": DIGITS,  # the range holder (before porting)
    "ported": BOOL,
    "roaming": BOOL,
    "serving_country": COUNTRY,  # ISO 3166 alpha-2 where the subscriber is served
    "roaming_country": COUNTRY,  # alpha-2 of the visited country, when roaming
    "number": DIGITS,  # the number the answer is about (compared, never mapped)
    "message_id": STRING,  # the vendor's id of the lookup (its logs, its invoice)
}
# What a `status` can mean: hlrd's reachability families (generic_json says how
# each becomes reachability and a MAP error).
FAMILIES = (
    "connected",
    "absent",
    "unknown_subscriber",
    "barred",
    "not_provisioned",
    "system_failure",
    "unknown",
)
UNKNOWN = "unknown"  # a bool field's third value: the vendor says it does not know
REACHABILITY_FIELDS = ("status", "reachable", "map_error")
METHODS = ("GET", "POST")
AUTHS = ("none", "header", "basic", "query")
NUMBER_PLACEHOLDERS = frozenset({"msisdn", "e164"})
SECRET_PLACEHOLDERS = frozenset({"api_key", "api_secret"})

MAX_FIELDS = 32
MAX_HEADERS = 32
MAX_TEMPLATE = 2000
MAX_PATH_DEPTH = 16
MAX_MAP = 256
MAX_WORD = 128  # a map key, a path segment, an invalid_number value

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_PARAM = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
_ALPHA2 = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one hlrd field is in the answer, and, with `map`, what the vendor's
    values mean (vendor value as text -> hlrd value of the field's kind)."""

    path: tuple[str, ...]
    kind: str
    map: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    method: str = "GET"
    path: str = "/"  # below base_url; {msisdn} {e164} URL-quoted
    body: str | None = None  # JSON text; {msisdn} {e164} {api_key} {api_secret} JSON-escaped
    headers: Mapping[str, str] = field(default_factory=dict)  # values: {api_key} {api_secret}
    auth: str = "none"
    auth_header: str = "Authorization"  # auth = "header"
    auth_value: str = "Bearer {api_key}"  # auth = "header"
    auth_param: str = "api_key"  # auth = "query"


@dataclass(frozen=True, slots=True)
class InvalidNumber:
    """HTTP statuses that say "no such number", and, with `path`, only when the
    body's value there is one of `values` (a 400 may also mean our request was
    wrong: that must fail the lookup, not call every number invalid)."""

    statuses: frozenset[int] = frozenset()
    path: tuple[str, ...] | None = None
    values: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class JsonMapping:
    request: RequestSpec
    fields: Mapping[str, FieldSpec]
    invalid_number: InvalidNumber = field(default_factory=InvalidNumber)

    @property
    def secrets_used(self) -> frozenset[str]:
        """Which of api_key / api_secret the requests carry: what the configuration
        must ask for (auth = "none" needs neither)."""
        r = self.request
        texts = [r.path, r.body or "", *r.headers.values()]
        if r.auth == "header":
            texts.append(r.auth_value)
        used = {name for t in texts for name in PLACEHOLDER.findall(t)} & SECRET_PLACEHOLDERS
        if r.auth == "basic":
            used |= SECRET_PLACEHOLDERS
        if r.auth == "query":
            used.add("api_key")
        return frozenset(used)


def key_of(value: Any) -> str | None:
    """A JSON value as a map key or an invalid_number value: TOML keys are text, so
    true is "true" and 27 is "27"; objects, lists, floats and null are no key."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None


def parse_mapping(raw: Any) -> JsonMapping:
    """A mapping from its TOML table; ValueError names the key that is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(": must be a table with request, fields and optionally invalid_number")
    _known(raw, "", ("request", "fields", "invalid_number"))
    if "request" not in raw:
        raise ValueError("request: required (method, path, auth ...)")
    if "fields" not in raw:
        raise ValueError("fields: required (where each hlrd field is in the answer)")
    return JsonMapping(
        request=_request(raw["request"]),
        fields=_fields(raw["fields"]),
        invalid_number=_invalid_number(raw.get("invalid_number", {})),
    )


_DEFAULT = RequestSpec()
# A key of one auth style given with another: a mistake, never silently unused.
_AUTH_KEYS = (("auth_header", "header"), ("auth_value", "header"), ("auth_param", "query"))

# -- request -------------------------------------------------------------------------


def _request(raw: Any) -> RequestSpec:
    if not isinstance(raw, dict):
        raise ValueError("request: must be a table")
    known = ("method", "path", "body", "headers", "auth", "auth_header", "auth_value", "auth_param")
    _known(raw, "request.", known)
    method = raw.get("method", "GET")
    if method not in METHODS:
        raise ValueError(f"request.method: one of {', '.join(METHODS)}")
    if "path" not in raw:
        raise ValueError('request.path: required, e.g. "/v1/hlr/{msisdn}"')
    path = _template(raw["path"], "request.path", NUMBER_PLACEHOLDERS)
    if not path.startswith("/") or not path.isascii() or any(c in path for c in " #\t"):
        raise ValueError("request.path: below base_url, starting with /, ASCII without spaces or #")
    body = None
    if "body" in raw:
        if method != "POST":
            raise ValueError('request.body: only with method = "POST"')
        body = _template(raw["body"], "request.body", NUMBER_PLACEHOLDERS | SECRET_PLACEHOLDERS)
        # As a lookup fills them in: {msisdn} may stand bare (a JSON number), the
        # others only inside a string.
        sample = {"msisdn": "1", "e164": "+1", "api_key": "k", "api_secret": "s"}
        try:
            json.loads(PLACEHOLDER.sub(lambda m: sample[m.group(1)], body))
        except ValueError:
            raise ValueError(
                "request.body: must be JSON once its placeholders are filled in"
            ) from None
    auth = raw.get("auth", "none")
    if auth not in AUTHS:
        raise ValueError(f"request.auth: one of {', '.join(AUTHS)}")
    for key, needs in (
        ("auth_header", "header"),
        ("auth_value", "header"),
        ("auth_param", "query"),
    ):
        if key in raw and auth != needs:
            raise ValueError(f'request.{key}: only with auth = "{needs}"')
    auth_header, auth_value, auth_param = (
        _DEFAULT.auth_header,
        _DEFAULT.auth_value,
        _DEFAULT.auth_param,
    )
    if auth == "header":
        auth_header = raw.get("auth_header", auth_header)
        if not isinstance(auth_header, str) or not _HEADER_NAME.fullmatch(auth_header):
            raise ValueError('request.auth_header: a header name, e.g. "Authorization"')
        auth_value = _header_value(raw.get("auth_value", auth_value), "request.auth_value")
        if not set(PLACEHOLDER.findall(auth_value)) & SECRET_PLACEHOLDERS:
            raise ValueError(
                'request.auth_value: must carry {api_key} or {api_secret}, e.g. "Bearer {api_key}"'
            )
    if auth == "query":
        auth_param = raw.get("auth_param", auth_param)
        if not isinstance(auth_param, str) or not _PARAM.fullmatch(auth_param):
            raise ValueError(
                "request.auth_param: a query parameter name (letters, digits, _ . ~ -)"
            )
    reserved = {"header": auth_header.lower(), "basic": "authorization"}.get(auth)
    return RequestSpec(
        method=method,
        path=path,
        body=body,
        headers=_headers(raw.get("headers", {}), reserved, auth),
        auth=auth,
        auth_header=auth_header,
        auth_value=auth_value,
        auth_param=auth_param,
    )


def _headers(raw: Any, reserved: str | None, auth: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError('request.headers: must be a table of name = "value"')
    if len(raw) > MAX_HEADERS:
        raise ValueError(f"request.headers: at most {MAX_HEADERS}")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in raw.items():
        where = f"request.headers.{name}"
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{where}: not a header name (letters, digits, - and a few marks)")
        if name.lower() in seen:
            raise ValueError(f"{where}: given twice (header names ignore case)")
        if name.lower() == reserved:
            raise ValueError(f'{where}: set by auth = "{auth}"; leave it out')
        seen.add(name.lower())
        out[name] = _header_value(value, where)
    return out


def _header_value(value: Any, where: str) -> str:
    text = _template(value, where, SECRET_PLACEHOLDERS)
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
        raise ValueError(f"{where}: no line breaks or control characters")
    return text


def _template(value: Any, where: str, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: must be a non-empty string")
    if len(value) > MAX_TEMPLATE:
        raise ValueError(f"{where}: at most {MAX_TEMPLATE} characters")
    for name in PLACEHOLDER.findall(value):
        if name not in allowed:
            hint = ""
            if name in SECRET_PLACEHOLDERS:
                hint = " (credentials go in headers, the body or auth, never the URL path)"
            raise ValueError(
                f"{where}: unknown placeholder {{{name}}}; "
                f"known here: {', '.join('{' + a + '}' for a in sorted(allowed))}{hint}"
            )
    return value


# -- fields --------------------------------------------------------------------------


def _fields(raw: Any) -> dict[str, FieldSpec]:
    if not isinstance(raw, dict):
        raise ValueError('fields: must be a table of field = { path = "..." }')
    if len(raw) > MAX_FIELDS:
        raise ValueError(f"fields: at most {MAX_FIELDS}")
    out: dict[str, FieldSpec] = {}
    for name, spec in raw.items():
        where = f"fields.{name}"
        if name not in KINDS:
            raise ValueError(f"{where}: not a field hlrd reads; fields: {', '.join(KINDS)}")
        if not isinstance(spec, dict):
            raise ValueError(f'{where}: must be a table {{ path = "a.b.0.c" }}')
        _known(spec, f"{where}.", ("path", "map", "type"))
        kind = KINDS[name]
        if "type" in spec and spec["type"] != kind:
            raise ValueError(
                f'{where}.type: {name} is read as {kind}; give type = "{kind}" or leave it out'
            )
        if "path" not in spec:
            raise ValueError(f'{where}.path: required, e.g. path = "result.{name}"')
        path = parse_path(spec["path"], f"{where}.path")
        mapped = None
        if "map" in spec:
            if name == "number":
                raise ValueError(f"{where}.map: the number is compared with the asked one, as is")
            mapped = _map(spec["map"], f"{where}.map", name, kind)
        out[name] = FieldSpec(path, kind, mapped)
    if not set(out) & set(REACHABILITY_FIELDS):
        raise ValueError(
            "fields: name at least one of status, reachable or map_error "
            "(what says whether the subscriber is reachable)"
        )
    return out


def parse_path(value: Any, where: str) -> tuple[str, ...]:
    """`a.b.0.c`: keys of objects, or indexes (from 0) of lists."""
    if not isinstance(value, str) or not value:
        raise ValueError(f'{where}: a dotted path such as "result.0.status"')
    parts = tuple(value.split("."))
    if len(parts) > MAX_PATH_DEPTH:
        raise ValueError(f"{where}: at most {MAX_PATH_DEPTH} steps deep")
    if any(not p or len(p) > MAX_WORD for p in parts):
        raise ValueError(f"{where}: an empty or overlong step; steps are 1-{MAX_WORD} characters")
    return parts


def _map(raw: Any, where: str, name: str, kind: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f'{where}: a table of "vendor value" = hlrd value')
    if len(raw) > MAX_MAP:
        raise ValueError(f"{where}: at most {MAX_MAP} values")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if len(key) > MAX_WORD:
            raise ValueError(f"{at}: a vendor value of at most {MAX_WORD} characters")
        out[key] = _map_value(value, at, name, kind)
    return out


def _map_value(value: Any, where: str, name: str, kind: str) -> Any:
    if name == "status":
        if value not in FAMILIES:
            raise ValueError(f"{where}: one of {', '.join(FAMILIES)}")
        return value
    if kind == STRING:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_WORD:
            raise ValueError(f"{where}: a string of 1-{MAX_WORD} characters")
        return value
    if kind == BOOL:
        if not (isinstance(value, bool) or value == UNKNOWN):
            raise ValueError(f'{where}: true, false or "{UNKNOWN}"')
        return value
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise ValueError(f"{where}: a MAP error code 0-255 (0: none)")
        return value
    if kind == DIGITS:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValueError(f"{where}: a string of digits")
        return value
    if not (isinstance(value, str) and _ALPHA2.fullmatch(value)):
        raise ValueError(f'{where}: an ISO 3166 alpha-2 country code such as "DE"')
    return value.upper()


# -- invalid_number ------------------------------------------------------------------


def _invalid_number(raw: Any) -> InvalidNumber:
    if not isinstance(raw, dict):
        raise ValueError("invalid_number: must be a table { statuses = [400] }")
    _known(raw, "invalid_number.", ("statuses", "path", "values"))
    statuses = raw.get("statuses", [])
    if not isinstance(statuses, list) or len(statuses) > MAX_FIELDS:
        raise ValueError(f"invalid_number.statuses: a list of at most {MAX_FIELDS} HTTP statuses")
    for s in statuses:
        if isinstance(s, bool) or not isinstance(s, int) or not 400 <= s <= 499:
            raise ValueError("invalid_number.statuses: HTTP statuses 400-499")
        if s in (401, 403, 407, 429):
            raise ValueError(
                f"invalid_number.statuses: {s} is about credentials or rate, never the number"
            )
    if ("path" in raw) != ("values" in raw):
        raise ValueError(
            "invalid_number.path: give path and values together (or neither: "
            "every listed status then means an invalid number)"
        )
    if "path" not in raw:
        return InvalidNumber(frozenset(statuses))
    if not statuses:
        raise ValueError("invalid_number.statuses: required with path and values")
    path = parse_path(raw["path"], "invalid_number.path")
    values = raw["values"]
    if (
        not isinstance(values, list)
        or not 1 <= len(values) <= MAX_FIELDS
        or not all(isinstance(v, str) and 1 <= len(v) <= MAX_WORD for v in values)
    ):
        raise ValueError(
            f"invalid_number.values: a list of 1-{MAX_FIELDS} strings (the vendor's error codes)"
        )
    return InvalidNumber(frozenset(statuses), path, frozenset(values))


def _known(raw: Mapping[str, Any], where: str, known: tuple[str, ...]) -> None:
    for key in raw:
        if key not in known:
            raise ValueError(f"{where}{key}: unknown key; known: {', '.join(sorted(known))}")
