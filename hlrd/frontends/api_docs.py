"""The OpenAPI document as one self-contained HTML page, for people.

Rendered by hlrd from the same document it serves at /openapi.json, so the page can
never describe another API than the contract the tests hold the daemon to. It is plain
HTML with inline CSS, no script and no external resource (fonts, CDN): hlrd runs on
call-center networks without internet, and the page must work in any browser there.
Collapsible examples are `<details>`, which needs no script either.

Only the parts of OpenAPI 3.1 this API uses are rendered: paths with GET operations,
path and query parameters, responses with headers and media types, named examples,
`$ref`s to components, and object/enum/const/oneOf schemas. Descriptions are
CommonMark-lite: paragraphs, `code` and **bold**.
"""

from __future__ import annotations

import html
import json
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

Json = dict[str, Any]

EXAMPLE_BASE_URL = "http://hlrd:8080"

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def render_docs(spec: Json) -> str:
    """The whole page for `spec`."""
    info = spec["info"]
    ops = list(_operations(spec))
    title = f"{info['title']} {info['version']}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no /favicon.ico request (a 404 in the log)
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        '<header class="top"><div class="brand">',
        f"<h1>{_e(info['title'])} <span class='ver'>v{_e(info['version'])}</span></h1>",
        f"<p>{_inline(info.get('summary', ''))}</p></div>",
        '<p class="raw">OpenAPI '
        f"{_e(spec['openapi'])} · <a href='openapi.json'>openapi.json</a></p></header>",
        '<div class="layout">',
        _nav(spec, ops),
        "<main>",
        f'<section id="overview"><h2>Overview</h2>{_text(info.get("description", ""))}</section>',
        _security(spec),
        _error_codes(spec),
        *(_operation(spec, path, method, op) for path, method, op in ops),
        _schemas(spec),
        "</main></div></body></html>",
    ]
    return "\n".join(parts)


def _operations(spec: Json) -> list[tuple[str, str, Json]]:
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                found.append((path, method, op))
    return found


def _anchor(op: Json) -> str:
    return f"op-{op['operationId']}"


def _nav(spec: Json, ops: list[tuple[str, str, Json]]) -> str:
    items = ['<nav><a href="#overview">Overview</a><a href="#auth">Authentication</a>']
    items.append('<a href="#errors">Error codes</a>')
    for tag in spec.get("tags", []):
        tagged = [o for o in ops if tag["name"] in o[2].get("tags", ())]
        if not tagged:
            continue
        items.append(f"<h4>{_e(tag['name'])}</h4>")
        for path, method, op in tagged:
            items.append(
                f'<a href="#{_anchor(op)}"><span class="m m-{method}">{method.upper()}</span>'
                f" <code>{_e(path)}</code></a>"
            )
    items.append("<h4>schemas</h4>")
    for name in spec["components"]["schemas"]:
        items.append(f'<a href="#schema-{_e(name)}"><code>{_e(name)}</code></a>')
    items.append("</nav>")
    return "\n".join(items)


def _security(spec: Json) -> str:
    schemes = spec["components"].get("securitySchemes", {})
    rows = []
    for name, s in schemes.items():
        if s["type"] == "http":
            how = f"<code>Authorization: {_e(s['scheme'].title())} &lt;token&gt;</code>"
        else:
            how = f"query parameter <code>{_e(s['name'])}=&lt;token&gt;</code>"
        rows.append(f"<tr><td><code>{_e(name)}</code></td><td>{how}</td>")
        rows.append(f"<td>{_text(s.get('description', ''))}</td></tr>")
    return (
        '<section id="auth"><h2>Authentication</h2>'
        "<p>Operations marked <span class='lock'>token</span> accept either scheme; "
        "the others are always open.</p>"
        "<table><thead><tr><th>scheme</th><th>how</th><th>notes</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _error_codes(spec: Json) -> str:
    schemas = spec["components"]["schemas"]
    messages = _example_messages(spec)
    rows = []
    for name, schema in schemas.items():
        detail = schema.get("properties", {}).get("error", {}).get("properties", {})
        code = detail.get("code", {}).get("const")
        if code is None:
            continue
        statuses = _statuses_of(spec, f"#/components/schemas/{name}")
        extra = ", ".join(f"<code>{_e(k)}</code>" for k in detail if k not in ("code", "message"))
        said = "<br>".join(f"<q>{_e(m)}</q>" for m in messages.get(code, []))
        rows.append(
            f"<tr><td><code>{_e(code)}</code></td><td>{_e(', '.join(statuses))}</td>"
            f"<td>{_text(schema.get('description', ''))}</td><td>{extra or '—'}</td>"
            f"<td class='msg'>{said or '—'}</td></tr>"
        )
    return (
        '<section id="errors"><h2>Error codes</h2>'
        "<p>Every error body is <code>{&quot;error&quot;: {&quot;code&quot;: …, "
        "&quot;message&quot;: …}}</code>; with <code>format=digit</code> on <code>/v1/*</code> "
        "it is <code>text/plain</code> <code>1</code> instead. Match on <code>code</code>; "
        "the messages are for people.</p>"
        "<table><thead><tr><th>code</th><th>status</th><th>meaning</th><th>also has</th>"
        f"<th>message, e.g.</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _example_messages(spec: Json) -> dict[str, list[str]]:
    """Each error code's messages, as the document's examples give them."""
    found: dict[str, list[str]] = {}
    responses = list(spec["components"].get("responses", {}).values())
    for _, _, op in _operations(spec):
        responses += [r for r in op["responses"].values() if "$ref" not in r]
    for resp in responses:
        for media in resp.get("content", {}).values():
            for x in media.get("examples", {}).values():
                value = x["value"]
                if isinstance(value, dict) and isinstance(value.get("error"), dict):
                    said = found.setdefault(value["error"]["code"], [])
                    if value["error"]["message"] not in said:
                        said.append(value["error"]["message"])
    return found


def _statuses_of(spec: Json, ref: str) -> list[str]:
    """The statuses whose responses can carry the schema `ref`, in order."""
    found: set[str] = set()
    for _, _, op in _operations(spec):
        for status, resp in op["responses"].items():
            if f'"{ref}"' in json.dumps(_resolve(spec, resp)):
                found.add(status)
    return sorted(found)


def _operation(spec: Json, path: str, method: str, op: Json) -> str:
    secured = bool(op.get("security", spec.get("security", [])))
    lock = (
        '<span class="lock" title="needs a token when http.auth_tokens is set">token</span>'
        if secured
        else '<span class="open">open</span>'
    )
    parts = [
        f'<section class="op" id="{_anchor(op)}">',
        f'<h2><span class="m m-{method}">{method.upper()}</span> '
        f"<code>{_e(path)}</code> {lock}</h2>",
        f"<p class='summary'>{_inline(op.get('summary', ''))}</p>",
        _text(op.get("description", "")),
    ]
    params = [(_resolve(spec, p), "$ref" in p) for p in op.get("parameters", [])]
    if params:
        parts.append(_parameters(params))
    parts.append(_curl(path, method, [p for p, _ in params], secured))
    parts.append(_responses(spec, op["responses"]))
    parts.append("</section>")
    return "\n".join(parts)


def _parameters(params: list[tuple[Json, bool]]) -> str:
    """`params`: each parameter with whether it is shared by every operation (a `$ref`)."""
    rows = []
    for p, shared in params:
        examples = p.get("examples", {})
        ex = "".join(
            f"<li><code>{_e(str(x['value']))}</code> {_inline(x.get('summary', ''))}</li>"
            for x in examples.values()
        )
        req = "required" if p.get("required") else "optional"
        rows.append(
            f"<tr class='{'shared' if shared else ''}'><td><code class='h'>{_e(p['name'])}</code>"
            f"<div class='sub'>{_e(p['in'])}, {req}</div></td>"
            f"<td>{_type(p.get('schema', {}))}</td><td>{_text(p.get('description', ''))}"
            f"{'<ul class=ex>' + ex + '</ul>' if ex else ''}</td></tr>"
        )
    return (
        "<h3>Parameters</h3><table><thead><tr><th>name</th><th>type</th><th>description</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _curl(path: str, method: str, params: list[Json], secured: bool) -> str:
    """Example requests: the first example of each path parameter, then each query
    parameter's examples that differ from its default, one request each."""
    url = path
    for p in params:
        if p["in"] == "path":
            examples: list[Json] = list(p.get("examples", {}).values())
            value = str(examples[0]["value"]) if examples else p["name"]
            url = url.replace("{" + p["name"] + "}", quote(value, safe="+"))
    queries = [
        f"{p['name']}={quote(str(x['value']))}"
        for p in params
        if p["in"] == "query"
        for x in p.get("examples", {}).values()
        if x["value"] != p.get("schema", {}).get("default")
    ]
    urls = [url] if method == "get" or not queries else []
    urls += [f"{url}?{q}" for q in queries]
    verb = "" if method == "get" else f" -X {method.upper()}"
    auth = " -H 'Authorization: Bearer TOKEN'" if secured else ""
    lines = [f"curl -sS{verb}{auth} '{EXAMPLE_BASE_URL}{u}'" for u in urls]
    if secured:  # the query token is for dialers: shown on their request, if there is one
        dialer = next((u for u in urls if "format=digit" in u), urls[0])
        sep = "&" if "?" in dialer else "?"
        lines.append(f"curl -sS{verb} '{EXAMPLE_BASE_URL}{dialer}{sep}access_token=TOKEN'")
    return f"<h3>Example</h3><pre class='curl'>{_e(chr(10).join(lines))}</pre>"


def _common_headers(spec: Json) -> dict[str, Json]:
    """The headers every response of every operation has: said once per operation."""
    common: dict[str, Json] | None = None
    for _, _, op in _operations(spec):
        for raw in op["responses"].values():
            headers = _resolve(spec, raw).get("headers", {})
            if common is None:
                common = dict(headers)
            else:
                common = {k: v for k, v in common.items() if k in headers}
    return common or {}


def _header_list(spec: Json, headers: Json) -> str:
    return "<br>".join(
        f"<code class='h'>{_e(h)}</code>"
        + ("" if _resolve(spec, v).get("required") else " <span class='sub'>optional</span>")
        for h, v in headers.items()
    )


def _responses(spec: Json, responses: Json) -> str:
    common = _common_headers(spec)
    rows = []
    examples = []
    for status, raw in sorted(responses.items()):
        resp = _resolve(spec, raw)
        shared = "$ref" in raw
        media = resp.get("content", {})
        bodies = "<br>".join(
            f"<span class='ct'>{_e(ct)}</span> {_type(m.get('schema', {}))}"
            for ct, m in media.items()
        )
        own = {h: v for h, v in resp.get("headers", {}).items() if h not in common}
        phrase = HTTPStatus(int(status)).phrase
        cls = "s2" if status.startswith("2") else "s4" if status.startswith("4") else "s5"
        rows.append(
            f"<tr class='{'shared' if shared else ''}'><td><span class='st {cls}'>{status}</span>"
            f"<div class='sub'>{_e(phrase)}</div></td><td>{_text(resp.get('description', ''))}"
            f"</td><td>{bodies or '—'}</td><td>{_header_list(spec, own) or '—'}</td></tr>"
        )
        if shared:
            continue  # the same on every operation: their messages are in "Error codes"
        for ct, m in media.items():
            for i, (name, x) in enumerate(m.get("examples", {}).items()):
                value = x["value"]
                body = value if isinstance(value, str) else json.dumps(value, indent=2)
                opened = " open" if status.startswith("2") and i == 0 and ct != "text/plain" else ""
                examples.append(
                    f"<details{opened}><summary><span class='st {cls}'>{status}</span> "
                    f"<span class='ct'>{_e(ct)}</span> {_inline(x.get('summary', name))}"
                    f"</summary><pre>{_e(body)}</pre></details>"
                )
    every = (
        f"<p class='sub'>Every answer also has: {_header_list(spec, common).replace('<br>', ', ')}"
        ".</p>"
        if common
        else ""
    )
    return (
        f"<h3>Responses</h3>{every}<table class='resp'><thead><tr><th>status</th><th>when</th>"
        f"<th>body</th><th>headers</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (f"<h3>Examples</h3>{''.join(examples)}" if examples else "")
    )


def _schemas(spec: Json) -> str:
    parts = ['<section id="schemas"><h2>Schemas</h2>']
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f'<div class="schema" id="schema-{_e(name)}"><h3><code>{_e(name)}</code></h3>')
        parts.append(_text(schema.get("description", "")))
        rows = _fields(spec, schema, "")
        if rows:
            parts.append(
                "<table><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
        else:
            parts.append(f"<p class='type'>{_type(schema, top=True)}</p>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _fields(spec: Json, schema: Json, prefix: str) -> list[str]:
    """Rows for an object's fields; inline objects are expanded as `outer.inner`. A
    field without a description of its own shows its schema's."""
    rows = []
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        full = prefix + name
        opt = "" if name in required else "<div class='sub'>optional</div>"
        about = sub.get("description") or _resolve(spec, sub).get("description", "")
        rows.append(
            f"<tr><td><code>{_e(full)}</code>{opt}</td><td>{_type(sub)}</td>"
            f"<td>{_text(about)}</td></tr>"
        )
        if "properties" in sub:
            rows.extend(_fields(spec, sub, full + "."))
    return rows


def _type(schema: Json, top: bool = False) -> str:
    """A schema as a short type label, with links to named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"<a href='#schema-{_e(name)}'>{_e(name)}</a>"
    if "const" in schema:
        return f"<code>{_e(json.dumps(schema['const']))}</code>"
    if "oneOf" in schema:
        return "one of " + " | ".join(_type(s) for s in schema["oneOf"])
    types = schema.get("type", "any")
    label = " | ".join(types) if isinstance(types, list) else types
    if "enum" in schema:
        values = ", ".join(f"<code>{_e(str(v))}</code>" for v in schema["enum"])
        label = f"{label}: {values}"
    if label == "array" and "items" in schema:
        label = f"array of {_type(schema['items'])}"
    if isinstance(schema.get("additionalProperties"), dict):
        label = f"map: name → {_type(schema['additionalProperties'])}"
    notes = []
    if "pattern" in schema:
        notes.append(f"pattern <code>{_e(schema['pattern'])}</code>")
    if "minLength" in schema:
        notes.append(f"at least {schema['minLength']} character(s)")
    if "default" in schema:
        notes.append(f"default <code>{_e(str(schema['default']))}</code>")
    if "minimum" in schema:
        notes.append(f"≥ {schema['minimum']}")
    if "maximum" in schema:
        notes.append(f"≤ {schema['maximum']:,}".replace(",", "\u202f"))
    note = f"<div class='sub'>{'; '.join(notes)}</div>" if notes else ""
    return f"<span class='type'>{label}</span>{note}"


def _resolve(spec: Json, obj: Json) -> Json:
    """`obj`, or what its local `$ref` points at."""
    while "$ref" in obj and obj["$ref"].startswith("#/"):
        target: Any = spec
        for part in obj["$ref"][2:].split("/"):
            target = target[part]
        obj = target
    return obj


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold**."""
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", _e(text))
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _text(text: str) -> str:
    """Paragraphs (blank-line separated) of `_inline` text."""
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{_inline(p)}</p>" for p in paras)


_CSS = """
:root{--fg:#1d2330;--muted:#5b6578;--line:#dde2ea;--bg:#fff;--soft:#f5f7fa;--accent:#0b5cad;
--ok:#1a7f37;--warn:#9a6700;--bad:#b42318;--code:#eef1f5}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
sans-serif;color:var(--fg);background:var(--bg)}
code,pre,.ct{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
font-size:.88em}
code{background:var(--code);padding:.05em .3em;border-radius:3px}
pre{background:#0f1724;color:#e6edf3;padding:.8em 1em;border-radius:6px;overflow:auto;
font-size:.82em;line-height:1.45;margin:.4em 0 .8em}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;justify-content:space-between;align-items:flex-end;gap:1em;
padding:1.1em 2em;border-bottom:1px solid var(--line);background:var(--soft)}
header h1{margin:0;font-size:1.5em}header p{margin:.2em 0 0;color:var(--muted)}
.ver{font-size:.6em;color:var(--muted);font-weight:500}
.raw{font-size:.85em}
.layout{display:grid;grid-template-columns:290px minmax(0,1fr)}
nav{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:1em 1.2em;
border-right:1px solid var(--line);font-size:.9em}
nav a{display:block;padding:.18em 0;color:var(--fg)}
nav h4{margin:1em 0 .3em;font-size:.75em;text-transform:uppercase;letter-spacing:.06em;
color:var(--muted)}
main{padding:0 2.2em 4em;max-width:1100px}
section{padding-top:1.2em;border-bottom:1px solid var(--line);padding-bottom:1.2em}
h2{font-size:1.3em;margin:.6em 0 .3em}h3{font-size:1em;margin:1.2em 0 .4em}
.summary{font-size:1.05em;color:var(--muted);margin-top:0}
.m{display:inline-block;min-width:3.3em;text-align:center;font:700 .72em/1.7 ui-monospace,
monospace;border-radius:4px;color:#fff;background:var(--ok);padding:0 .4em;vertical-align:middle}
.m-delete{background:var(--bad)}.m-post,.m-put,.m-patch{background:var(--warn)}
.lock,.open{font:600 .62em/1.8 system-ui,sans-serif;border-radius:10px;padding:.1em .6em;
vertical-align:middle;border:1px solid}
.lock{color:var(--warn);border-color:#e3c26b;background:#fff8e1}
.open{color:var(--muted);border-color:var(--line)}
table{border-collapse:collapse;width:100%;margin:.4em 0 .8em;font-size:.92em}
th,td{border-bottom:1px solid var(--line);padding:.45em .6em;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;font-size:.85em;color:var(--muted)}
td p{margin:0 0 .4em}td p:last-child{margin:0}
tr.shared td{color:var(--muted)}tr.shared td p{font-size:.95em}
.sub{font-size:.8em;color:var(--muted)}
.type{font-size:.92em}
.ct{color:var(--muted)}code.h{white-space:nowrap}
.st{display:inline-block;font:700 .85em/1.6 ui-monospace,monospace;padding:0 .4em;
border-radius:4px;background:var(--soft)}
.s2{color:var(--ok)}.s4{color:var(--warn)}.s5{color:var(--bad)}
ul.ex{margin:.4em 0 0;padding-left:1.1em;font-size:.92em}
details{border:1px solid var(--line);border-radius:6px;margin:.35em 0;padding:.25em .7em}
details summary{cursor:pointer;padding:.2em 0}
details pre{margin:.4em 0 .5em}
.schema{margin-bottom:1.2em}td.msg{font-size:.88em;color:var(--muted)}
@media (max-width:860px){.layout{display:block}nav{position:static;max-height:none;
border-right:0;border-bottom:1px solid var(--line)}main{padding:0 1em 3em}
header.top{display:block;padding:1em}table{display:block;overflow-x:auto}
code{overflow-wrap:anywhere}}
@media print{nav{display:none}.layout{display:block}details{break-inside:avoid}}
"""
