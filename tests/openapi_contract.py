"""Holds one real HTTP answer to what hlrd's OpenAPI document says about it.

Independent of schemathesis: the document's schemas are checked by
openapi-schema-validator (JSON Schema 2020-12 with OpenAPI's vocabulary), `$ref`s
resolved inside the document. An answer fits when its status is listed for the
operation, its media type is one of that response's, its body validates against that
media type's schema (a `text/plain` body as a string), and every header the response
lists is present when required and valid when present.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hlrd.frontends.openapi import load_spec

BASE = "urn:hlrd-openapi"
Json = dict[str, Any]


class ContractError(AssertionError):
    """An answer the document does not describe."""


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    def __init__(self, spec: Json | None = None) -> None:
        self.spec = spec if spec is not None else load_spec()
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(BASE, resource)

    def errors(self, parts: list[str], instance: object) -> list[str]:
        """What is wrong with `instance` against the schema at `parts` in the document."""
        ref = {"$ref": BASE + "#" + quote(_pointer(parts), safe="/~")}
        validator = OAS31Validator(ref, registry=self._registry)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def _at(self, parts: list[str]) -> Any:
        node: Any = self.spec
        for p in parts:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node

    def _deref(self, parts: list[str]) -> list[str]:
        """The path of what the object at `parts` is, following a local `$ref`."""
        node = self._at(parts)
        while isinstance(node, dict) and "$ref" in node:
            parts = [p.replace("~1", "/").replace("~0", "~") for p in node["$ref"][2:].split("/")]
            node = self._at(parts)
        return parts

    def check(
        self,
        path: str,
        method: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        """Raises ContractError unless the answer fits the operation `method path`."""
        where = f"{method} {path} -> {status}"
        op = self.spec["paths"].get(path, {}).get(method.lower())
        if op is None:
            raise ContractError(f"{method} {path}: no such operation in the document")
        if str(status) not in op["responses"]:
            raise ContractError(f"{where}: status not in the document")
        resp_at = self._deref(["paths", path, method.lower(), "responses", str(status)])
        resp = self._at(resp_at)
        lower = {k.lower(): v for k, v in headers.items()}
        media = lower.get("content-type", "").split(";")[0].strip()
        if media not in resp.get("content", {}):
            raise ContractError(f"{where}: content type {media!r} not in the document")
        instance: object = json.loads(body) if media == "application/json" else body.decode()
        problems = self.errors([*resp_at, "content", media, "schema"], instance)
        for name in resp.get("headers", {}):
            header_at = self._deref([*resp_at, "headers", name])
            header = self._at(header_at)
            value = lower.get(name.lower())
            if value is None:
                if header.get("required"):
                    problems.append(f"header {name} missing")
                continue
            typed: object = int(value) if header["schema"].get("type") == "integer" else value
            problems += [f"header {name}: {p}" for p in self.errors([*header_at, "schema"], typed)]
        if problems:
            raise ContractError(f"{where}: " + "; ".join(problems) + f"\nbody: {body[:500]!r}")

    def examples(self) -> Iterator[tuple[str, list[str], object]]:
        """Every named example of a response or parameter: (name, schema path, value)."""
        for path, item in self.spec["paths"].items():
            for method, op in item.items():
                for i, param in enumerate(op.get("parameters", [])):
                    at = ["paths", path, method, "parameters", str(i)]
                    for name, ex in param.get("examples", {}).items():
                        yield (
                            f"{method} {path} {param['name']}={name}",
                            [*at, "schema"],
                            ex["value"],
                        )
                for status in op["responses"]:
                    resp_at = self._deref(["paths", path, method, "responses", status])
                    for media, content in self._at(resp_at).get("content", {}).items():
                        at = [*resp_at, "content", media]
                        for name, ex in content.get("examples", {}).items():
                            label = f"{method} {path} {status} {media} {name}"
                            yield label, [*at, "schema"], ex["value"]
