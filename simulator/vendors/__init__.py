"""Imitations of HTTP HLR vendors, served on the simulator's HTTP port: each checks
credentials as its vendor does and answers in its vendor's field names, types and
error statuses (docs/vendors/), from the same scenario as the SMPP side."""

from typing import Any

from ..http_api import GENERIC_JSON_MAPPING
from . import camara, hlr_lookups, infobip, tyntec, vonage


def demo_provider(kind: str, http_port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """An `[[upstream.providers]]` entry for the imitation of `kind` on a simulator's
    HTTP port, with its demo credentials: what tests, benches and the demo use."""
    root = f"http://{host}:{http_port}"
    entries: dict[str, dict[str, Any]] = {
        "hlr_lookups": {
            "base_url": root + "/api/v2",
            "api_key": hlr_lookups.DEMO_KEY,
            "api_secret": hlr_lookups.DEMO_SECRET,
        },
        "infobip": {"base_url": root, "api_key": infobip.DEMO_KEY},
        "tyntec": {"base_url": root, "api_key": tyntec.DEMO_KEY},
        "camara": {
            "base_url": root + camara.PREFIX,
            "api_key": camara.DEMO_CLIENT_ID,
            "api_secret": camara.DEMO_CLIENT_SECRET,
        },
        "vonage": {
            "base_url": root,
            "api_key": vonage.DEMO_APPLICATION_ID,
            "private_key": vonage.DEMO_PRIVATE_KEY,
        },
        # The simulator's own JSON API, described to the generic adapter.
        "generic_json": {"base_url": root, "mapping": GENERIC_JSON_MAPPING},
    }
    return {"name": kind, "type": kind, **entries[kind]}
