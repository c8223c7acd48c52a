"""/v1/jobs: washing a calling list — upload, preview, run, watch, download.

The CSV is the request body (`text/csv`) or a multipart form's `file` part; it is
streamed to disk as it comes. `Idempotency-Key` makes a retried upload give the job
the first one created. Progress is JSON (`GET /v1/jobs/{id}`) or a server-sent
event stream (`/events`) for pages and scripts that want to watch it move.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp.http_exceptions
from aiohttp import BodyPartReader, web

from ..domain.times import iso_utc
from ..jobs.job_state import JobState
from ..jobs.manager import JobError, Jobs, progress
from .http_errors import LOOKUP_ID_KEY, error
from .request_ids import caller_ids

JOBS_KEY = web.AppKey("jobs", Jobs)
FILES = {
    "annotated.csv": "text/csv; charset=utf-8",
    "clean.csv": "text/csv; charset=utf-8",
    "dnc.txt": "text/plain; charset=utf-8",
    "summary.json": "application/json",
}
ACTIONS = ("start", "pause", "resume", "cancel")
MAX_KEY = 200
HEARTBEAT_S = 15.0


def job_json(jobs: Jobs, state: JobState) -> dict[str, Any]:
    layout = state.layout
    done = state.state == "done"
    return {
        "id": state.id,
        "name": state.name,
        "policy": state.policy,
        "state": state.state,
        "created_at": iso_utc(state.created_at),
        "started_at": iso_utc(state.started_at),
        "finished_at": iso_utc(state.finished_at),
        "layout": {
            "delimiter": layout.get("delimiter"),
            "header": layout.get("header"),
            "phone_column": layout.get("phone_column"),
            "phone_column_name": layout.get("phone_column_name"),
            "detected_by": layout.get("detected_by"),
        },
        "preview": state.preview,
        "progress": progress(state),
        "summary": jobs.summary(state) if done else None,
        "error": state.error,
        "webhook_delivered": state.webhook_delivered,
        "files": {name: f"/v1/jobs/{state.id}/files/{name}" for name in FILES} if done else {},
    }


def _refused(request: web.Request, exc: JobError) -> web.Response:
    return error(request, exc.status, exc.code, str(exc), exc.field)


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    """The CSV's bytes: the body, or a multipart form's `file` part."""
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    while chunk := await part.read_chunk(1 << 16):
                        yield chunk
                    return
        except (
            ValueError,
            aiohttp.ClientError,
            aiohttp.http_exceptions.HttpProcessingError,
        ) as exc:
            # aiohttp's parser refuses the form (its InvalidHeader is a ValueError kin)
            raise JobError(
                400, "invalid_parameter", "the multipart form cannot be read", "file"
            ) from exc
        raise JobError(400, "invalid_parameter", "a multipart upload needs a `file` part", "file")
    async for chunk in request.content.iter_chunked(1 << 16):
        yield chunk


async def _create(request: web.Request) -> web.Response:
    jobs = request.app[JOBS_KEY]
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_KEY and key.isprintable()):
        return error(
            request,
            400,
            "invalid_parameter",
            "Idempotency-Key: 1-200 printable characters",
            "Idempotency-Key",
        )
    query = request.query
    policy = query.get("policy", jobs.checker.default_policy.name)
    column = query.get("column") or None
    try:
        state, created = await jobs.create(
            _body(request), query.get("name", ""), policy, column, key, query.get("webhook")
        )
    except JobError as exc:
        return _refused(request, exc)
    return web.json_response(job_json(jobs, state), status=201 if created else 200)


async def _list(request: web.Request) -> web.Response:
    jobs = request.app[JOBS_KEY]
    states = sorted(jobs.states.values(), key=lambda s: s.created_at, reverse=True)
    return web.json_response({"jobs": [job_json(jobs, s) for s in states]})


async def _show(request: web.Request) -> web.Response:
    jobs = request.app[JOBS_KEY]
    try:
        state = jobs.get(request.match_info["job"])
    except JobError as exc:
        return _refused(request, exc)
    return web.json_response(job_json(jobs, state))


async def _action(request: web.Request) -> web.Response:
    jobs = request.app[JOBS_KEY]
    job_id, action = request.match_info["job"], request.match_info["action"]
    if action not in ACTIONS:
        return error(request, 404, "not_found", f"a job's actions: {', '.join(ACTIONS)}")
    try:
        if action in ("start", "resume"):
            state = jobs.start_job(job_id)
        elif action == "pause":
            state = jobs.pause(job_id)
        else:
            state = jobs.cancel(job_id)
    except JobError as exc:
        return _refused(request, exc)
    return web.json_response(job_json(jobs, state), status=202)


async def _delete(request: web.Request) -> web.Response:
    jobs = request.app[JOBS_KEY]
    try:
        await jobs.delete(request.match_info["job"])
    except JobError as exc:
        return _refused(request, exc)
    return web.json_response({"deleted": True})


async def _file(request: web.Request) -> web.StreamResponse:
    jobs = request.app[JOBS_KEY]
    name = request.match_info["name"]
    try:
        state = jobs.get(request.match_info["job"])
    except JobError as exc:
        return _refused(request, exc)
    if name not in FILES:
        return error(request, 404, "not_found", f"a job's files: {', '.join(FILES)}")
    if state.state != "done":
        return error(
            request, 409, "job_state", f"the job is {state.state}: its files come when done"
        )
    path = jobs.dir_of(state.id) / name
    return web.FileResponse(
        path,
        headers={
            "Content-Type": FILES[name],
            "Content-Disposition": f'attachment; filename="{state.id}-{name}"',
        },
    )


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the progress now, then at every chunk, until the job
    stops running (or the client goes)."""
    jobs = request.app[JOBS_KEY]
    try:
        state = jobs.get(request.match_info["job"])
    except JobError as exc:
        return _refused(request, exc)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            # What the middleware adds to every answer, here before the headers go.
            "X-Lookup-Id": request[LOOKUP_ID_KEY],
            **caller_ids(request.headers),
        }
    )
    await resp.prepare(request)
    queue = jobs.listen(state.id)
    try:
        event = progress(state)
        while True:
            await resp.write(f"event: progress\ndata: {json.dumps(event)}\n\n".encode())
            if event["state"] not in ("previewing", "running"):
                break
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                event = progress(state)  # also a heartbeat through proxies
    finally:
        jobs.unlisten(state.id, queue)
    return resp


def add_routes(app: web.Application, jobs: Jobs) -> None:
    app[JOBS_KEY] = jobs
    app.router.add_post("/v1/jobs", _create)
    app.router.add_get("/v1/jobs", _list)
    app.router.add_get("/v1/jobs/{job}", _show)
    app.router.add_delete("/v1/jobs/{job}", _delete)
    app.router.add_post("/v1/jobs/{job}/{action}", _action)
    app.router.add_get("/v1/jobs/{job}/events", _events)
    app.router.add_get("/v1/jobs/{job}/files/{name}", _file)
