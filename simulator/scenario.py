"""Scenario files: how simulated subscribers behave.

A scenario is TOML. Rules match numbers by the longest E.164 prefix; a number no
rule matches still gets an answer, derived from a hash of the number, so any number
always answers the same (tests and demos can use arbitrary numbers). See README.md
("Scenario format") for the keys.
"""

from __future__ import annotations

import hashlib
import random
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hlrd.domain.countries import BY_ISO, COUNTRIES, Country, country_of_mcc, country_of_number
from hlrd.domain.map_errors import MapError

STATUSES: dict[str, tuple[str, MapError]] = {
    # status -> (receipt stat, MAP error)
    "live": ("DELIVRD", MapError.NONE),
    "absent": ("UNDELIV", MapError.ABSENT_SUBSCRIBER),
    "unknown": ("UNDELIV", MapError.UNKNOWN_SUBSCRIBER),
    "barred": ("REJECTD", MapError.CALL_BARRED),
    "not_provisioned": ("UNDELIV", MapError.TELESERVICE_NOT_PROVISIONED),
    "system_failure": ("UNDELIV", MapError.SYSTEM_FAILURE),
}

FAULTS = ("never_answer", "no_receipt", "receipt_first")


def is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²" and "①"."""
    return text.isascii() and text.isdigit()


def msisdn_of(address: str) -> str | None:
    """The E.164 digits of a looked-up address ("+" allowed once), or None."""
    digits = address[1:] if address.startswith("+") else address
    return digits if is_digits(digits) and 6 <= len(digits) <= 15 else None


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Fixed (`min == max`), uniform between min and max, or normal (mean, stddev)."""

    min_ms: float = 0.0
    max_ms: float = 0.0
    stddev_ms: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """Seconds."""
        if self.stddev_ms:
            return max(0.0, rng.gauss(self.min_ms, self.stddev_ms)) / 1000
        if self.max_ms > self.min_ms:
            return rng.uniform(self.min_ms, self.max_ms) / 1000
        return self.min_ms / 1000


@dataclass(frozen=True, slots=True)
class Rule:
    prefix: str
    status: str = "live"
    serving_mccmnc: str | None = None
    msc: str | None = None
    subscription_mccmnc: str | None = None
    home_mccmnc: str | None = None
    imsi: str | None = None
    latency: Latency | None = None
    fault: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class SmppSettings:
    system_id: str = "hlrsim"
    password: str = "secret"
    tps: int = 0  # 0 = no cap
    drop_after_pdus: int = 0  # 0 = never
    receipt_id_format: str = "hex"  # how receipts write the id: "hex" (as submitted) or "decimal"
    window: int = 64  # receipts (deliver_sm) it keeps unacknowledged per link
    # How receipts carry the answer: "hlrd" (vendor TLVs and text keys) or
    # "restcomm_sri" (RestComm's dropaftersri receipts: err 226, imsi, nnn_digits)
    receipt_dialect: str = "hlrd"


@dataclass(frozen=True, slots=True)
class Answer:
    """Everything the HLR says about one number."""

    msisdn: str
    status: str
    stat: str
    map_error: int
    imsi: str | None
    subscription_mccmnc: str | None
    home_mccmnc: str | None
    serving_mccmnc: str | None
    msc: str | None
    latency_s: float
    fault: str | None

    @property
    def roaming(self) -> bool | None:
        """Country of the serving network differs from the subscription's country."""
        if not self.serving_mccmnc or not self.subscription_mccmnc:
            return None
        serving = country_of_mcc(self.serving_mccmnc)
        home = country_of_mcc(self.subscription_mccmnc)
        if serving is None or home is None:
            return self.serving_mccmnc[:3] != self.subscription_mccmnc[:3]
        return serving.iso != home.iso

    @property
    def roaming_country(self) -> str | None:
        if not self.roaming or not self.serving_mccmnc:
            return None
        c = country_of_mcc(self.serving_mccmnc)
        return c.iso if c else None

    @property
    def ported(self) -> bool | None:
        if not self.subscription_mccmnc or not self.home_mccmnc:
            return None
        return self.subscription_mccmnc != self.home_mccmnc


@dataclass(frozen=True, slots=True)
class Scenario:
    rules: tuple[Rule, ...] = ()
    smpp: SmppSettings = field(default_factory=SmppSettings)
    default_latency: Latency = field(default_factory=Latency)
    seed: int = 0
    name: str = "scenario"

    def with_smpp(self, **changes: Any) -> Scenario:
        return replace(self, smpp=replace(self.smpp, **changes))

    def rule_for(self, msisdn: str) -> Rule | None:
        best: Rule | None = None
        for rule in self.rules:
            if msisdn.startswith(rule.prefix) and (
                best is None or len(rule.prefix) > len(best.prefix)
            ):
                best = rule
        return best

    def answer(self, msisdn: str, rng: random.Random | None = None) -> Answer:
        rule = self.rule_for(msisdn)
        derived = _derive(msisdn)
        rng = rng or random.Random(self.seed)
        if rule is None:
            rule = derived
        status = rule.status
        stat, map_error = STATUSES[status]
        alive = status in ("live", "absent")
        subscription = rule.subscription_mccmnc or derived.subscription_mccmnc
        # The range holder: the country's default network unless the rule names it,
        # so a rule that only sets subscription_mccmnc describes a ported number.
        home = rule.home_mccmnc or derived.home_mccmnc
        serving = rule.serving_mccmnc or (subscription if status == "live" else None)
        msc = rule.msc or (_msc_for(msisdn, serving) if serving else None)
        imsi = rule.imsi or (_imsi_for(msisdn, subscription) if subscription else None)
        return Answer(
            msisdn=msisdn,
            status=status,
            stat=stat,
            map_error=int(map_error),
            imsi=imsi if alive else None,
            subscription_mccmnc=subscription if status != "unknown" else None,
            home_mccmnc=home,
            serving_mccmnc=serving if status == "live" else None,
            msc=msc if status == "live" else None,
            latency_s=(rule.latency or self.default_latency).sample(rng),
            fault=rule.fault,
        )


def _digest(msisdn: str) -> int:
    return int.from_bytes(hashlib.sha256(msisdn.encode()).digest()[:8], "big")


def _home_country(msisdn: str) -> Country:
    return country_of_number(msisdn) or BY_ISO["PL"]


def _derive(msisdn: str) -> Rule:
    """Stable pseudo-random subscriber for a number no rule matches."""
    h = _digest(msisdn)
    country = _home_country(msisdn)
    home = country.mccs[0] + country.mobile_mnc
    bucket = h % 100
    status = (
        "live"
        if bucket < 85
        else "absent"
        if bucket < 92
        else "unknown"
        if bucket < 96
        else "barred"
        if bucket < 98
        else "not_provisioned"
    )
    serving = None
    roam_bucket = (h >> 8) % 100
    if status == "live" and roam_bucket < 10:
        abroad = COUNTRIES[(h >> 16) % len(COUNTRIES)]
        if abroad.iso != country.iso:
            serving = abroad.mccs[0] + abroad.mobile_mnc
    return Rule(
        prefix=msisdn,
        status=status,
        serving_mccmnc=serving,
        subscription_mccmnc=home,
        home_mccmnc=home,
        name="derived",
    )


def _imsi_for(msisdn: str, mccmnc: str) -> str:
    tail = str(_digest("imsi" + msisdn)).rjust(20, "0")
    return (mccmnc + tail)[:15]


def _msc_for(msisdn: str, serving_mccmnc: str) -> str:
    c = country_of_mcc(serving_mccmnc)
    cc = c.calling_code if c else "999"
    tail = str(_digest("msc" + msisdn) % 10**6).rjust(6, "0")
    return f"{cc}{tail}"


# -- loading ----------------------------------------------------------------------


def _latency(value: Any, where: str) -> Latency:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Latency(float(value), float(value))
    if isinstance(value, dict):
        if "mean" in value:
            return Latency(
                float(value["mean"]), float(value["mean"]), float(value.get("stddev", 0))
            )
        if "min" in value and "max" in value and 0 <= value["min"] <= value["max"]:
            return Latency(float(value["min"]), float(value["max"]))
    raise ScenarioError(
        f"{where}: latency_ms must be a number >= 0, {{min, max}} or {{mean, stddev}}"
    )


def _digits(value: Any, where: str, lengths: range) -> str:
    if not isinstance(value, str) or not is_digits(value) or len(value) not in lengths:
        raise ScenarioError(
            f"{where}: must be a string of {lengths.start}-{lengths.stop - 1} digits"
        )
    return value


_RULE_KEYS = {
    "prefix",
    "status",
    "serving_mccmnc",
    "msc",
    "subscription_mccmnc",
    "home_mccmnc",
    "imsi",
    "latency_ms",
    "fault",
    "name",
}


def _rule(raw: Any, i: int) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ScenarioError(f"{where}.{sorted(unknown)[0]}: unknown key")
    if "prefix" not in raw:
        raise ScenarioError(f"{where}.prefix: required")
    status = raw.get("status", "live")
    if status not in STATUSES:
        raise ScenarioError(f"{where}.status: must be one of {', '.join(STATUSES)}")
    fault = raw.get("fault")
    if fault is not None and fault not in FAULTS:
        raise ScenarioError(f"{where}.fault: must be one of {', '.join(FAULTS)}")
    mccmnc = range(5, 7)
    return Rule(
        prefix=_digits(raw["prefix"], f"{where}.prefix", range(1, 16)),
        status=status,
        serving_mccmnc=_opt(raw, "serving_mccmnc", where, mccmnc),
        msc=_opt(raw, "msc", where, range(3, 16)),
        subscription_mccmnc=_opt(raw, "subscription_mccmnc", where, mccmnc),
        home_mccmnc=_opt(raw, "home_mccmnc", where, mccmnc),
        imsi=_opt(raw, "imsi", where, range(6, 16)),
        latency=_latency(raw["latency_ms"], where) if "latency_ms" in raw else None,
        fault=fault,
        name=str(raw.get("name", "")),
    )


def _opt(raw: dict[str, Any], key: str, where: str, lengths: range) -> str | None:
    return _digits(raw[key], f"{where}.{key}", lengths) if key in raw else None


_TOP_KEYS = {"smpp", "defaults", "rules"}
_DEFAULT_KEYS = {"latency_ms", "seed"}


def parse_scenario(data: dict[str, Any], name: str = "scenario") -> Scenario:
    # A misspelt table ([[rule]] for [[rules]]) must not load an empty scenario quietly.
    unknown_top = set(data) - _TOP_KEYS
    if unknown_top:
        key = sorted(unknown_top)[0]
        hint = " (did you mean [[rules]]?)" if key == "rule" else ""
        raise ScenarioError(f"{key}: unknown key{hint}; known: {', '.join(sorted(_TOP_KEYS))}")
    smpp_raw = data.get("smpp", {})
    if not isinstance(smpp_raw, dict):
        raise ScenarioError("smpp: must be a table")
    allowed = {
        "system_id",
        "password",
        "tps",
        "drop_after_pdus",
        "receipt_id_format",
        "window",
        "receipt_dialect",
    }
    unknown = set(smpp_raw) - allowed
    if unknown:
        raise ScenarioError(f"smpp.{sorted(unknown)[0]}: unknown key")
    smpp = SmppSettings(**smpp_raw)
    if len(smpp.system_id) > 15 or len(smpp.password) > 8:
        raise ScenarioError("smpp.system_id/password: at most 15/8 characters (SMPP 3.4)")
    if not isinstance(smpp.tps, int) or smpp.tps < 0:
        raise ScenarioError("smpp.tps: must be an integer >= 0")
    if smpp.receipt_id_format not in ("hex", "decimal"):
        raise ScenarioError("smpp.receipt_id_format: must be hex or decimal")
    if smpp.receipt_dialect not in ("hlrd", "restcomm_sri"):
        raise ScenarioError("smpp.receipt_dialect: must be hlrd or restcomm_sri")
    if not isinstance(smpp.window, int) or not 1 <= smpp.window <= 100_000:
        raise ScenarioError("smpp.window: must be an integer 1..100000")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ScenarioError("defaults: must be a table")
    unknown = set(defaults) - _DEFAULT_KEYS
    if unknown:
        raise ScenarioError(f"defaults.{sorted(unknown)[0]}: unknown key")
    seed = defaults.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError("defaults.seed: must be an integer")
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise ScenarioError("rules: must be an array of tables ([[rules]])")
    return Scenario(
        rules=tuple(_rule(r, i) for i, r in enumerate(rules)),
        smpp=smpp,
        default_latency=_latency(defaults.get("latency_ms", 0), "defaults"),
        seed=seed,
        name=name,
    )


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: {exc}") from exc
    return parse_scenario(data, p.stem)
