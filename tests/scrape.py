"""/metrics as a test reads it: parsed by prometheus_client, samples by name and labels."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples: list[Sample] = [s for f in self.families for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name` with exactly `labels`; None when there is no such series."""
        for s in self.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
        return None

    def series(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


async def scrape(http: aiohttp.ClientSession) -> Scrape:
    async with http.get("/metrics") as r:
        assert r.status == 200
        return Scrape(await r.text())
