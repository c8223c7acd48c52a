"""A provider object for each `[[upstream.providers]]` entry, by its `type`."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config, HttpProviderConfig
from ..metrics import Metrics
from .http import generic_json
from .http.camara import Camara
from .http.hlr_lookups import HlrLookups
from .http.infobip import Infobip
from .http.provider import HttpProvider, Vendor
from .http.tyntec import Tyntec
from .http.vonage import DEFAULT_PURPOSE, Vonage
from .smpp_provider import SmppProvider

# An HTTP provider's `type` -> its vendor adapter (config.HTTP_PROVIDER_TYPES).
VENDORS: dict[str, Callable[[HttpProviderConfig], Vendor]] = {
    "hlr_lookups": lambda cfg: HlrLookups(cfg.api_key, cfg.api_secret),
    "infobip": lambda cfg: Infobip(cfg.api_key, cfg.batch_size, cfg.batch_wait_s),
    "tyntec": lambda cfg: Tyntec(cfg.api_key),
    "camara": lambda cfg: Camara(cfg),
    "vonage": lambda cfg: Vonage(cfg.api_key, cfg.private_key, cfg.purpose or DEFAULT_PURPOSE),
    "generic_json": lambda cfg: generic_json.vendor(cfg, cfg.mapping),
}

AnyProvider = SmppProvider | HttpProvider


def build_providers(config: Config, metrics: Metrics) -> list[AnyProvider]:
    built: list[AnyProvider] = []
    for p in config.providers:
        if isinstance(p, HttpProviderConfig):
            built.append(HttpProvider(p, VENDORS[p.type](p), config.lookup.max_queue, metrics))
        else:
            built.append(
                SmppProvider(
                    p, metrics, config.lookup.max_queue, unbound_grace_s=config.lookup.bind_wait_s
                )
            )
    return built
