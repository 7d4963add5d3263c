"""The HTTP routes: OpenAI-compatible chat and text completions, embeddings, models; health and metrics.

Handlers validate, pick a zone (here, or a peer the request is forwarded to), turn the request into a
scheduler :class:`~.scheduler.Job` and turn the job's events into an OpenAI response or a server-sent
event stream. They never call the engine themselves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from . import protocol as p
from .metrics import Metrics, counter_lines, gauge
from .scheduler import EngineError, Event, Job, QueueFull, Scheduler, choice_seeds

ZONE_HEADER = "x-cactus-zone"


@dataclass
class ServerConfig:
    zone: str = "local"
    peers: dict[str, str] = field(default_factory=dict)
    api_keys: list[str] = field(default_factory=list)
    max_body: int = 1 << 20
    max_tokens: int = 512
    ctx_size: int | None = None
    peer_timeout: float = 600.0

    def zones(self) -> list[str]:
        return [self.zone] + sorted(self.peers)


# ---- errors ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}


def error_payload(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return p.ErrorResponse(
        error=p.ErrorBody(message=message, type=type_, param=param, code=code)
    ).model_dump()


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(
        error_payload(err.message, err.type, err.param, err.code), status_code=err.status, headers=err.headers
    )


_TYPE_TAGS = ("str", "int", "float", "bool", "list", "dict", "none", "literal", "function")


def _param_of(loc: tuple[Any, ...]) -> str | None:
    """OpenAI's spelling of an error location: ("body", "messages", 0, "role") -> "messages[0].role"."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if any(c in text for c in "[-(") or text.lower() in _TYPE_TAGS:
            break  # a union member's tag, not a field name
        out += ("." if out else "") + text
    return out or None


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return ApiError(400, "The body of the request is not valid JSON.", code="invalid_json")
    param = _param_of(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'." if param else "The request body is missing."
    elif param is None and first.get("type") == "model_attributes_type":
        message = "The request body must be a JSON object."
    else:
        message = f"Invalid value for '{param}': {msg}." if param else f"Invalid request: {msg}."
    if len(errors) > 1:
        message += f" ({len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return ApiError(400, message, param=param, code="invalid_value" if param else None)


# ---- the gate: auth, body size, metrics, zone header ----------------------------------------------------


class Gate:
    """Pure ASGI middleware, outermost: counts and times every request, adds the zone header, checks the
    API key on /v1 routes (before the body is read) and bounds the body size."""

    def __init__(self, app: ASGIApp, config: ServerConfig, metrics: Metrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self._keys = [k.encode("utf-8") for k in config.api_keys]

    def _tenant(self, scope: Scope) -> str | None:
        """Who is asking: the index of the matching key; None when keys are configured and none matches."""
        if not self._keys:
            client = scope.get("client")
            return f"client:{client[0]}" if client else "anonymous"
        header = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value
                break
        scheme, _, token = header.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return None
        match = -1
        for i, key in enumerate(self._keys):  # no early exit: every key is compared
            if hmac.compare_digest(token, key):
                match = i
        return f"key:{match}" if match >= 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status = [500]
        zone = self.config.zone

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = MutableHeaders(scope=message)
                if ZONE_HEADER not in headers:
                    headers.append(ZONE_HEADER, zone)
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(scope["path"], scope["method"], status[0], time.monotonic() - start)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/v1" or path.startswith("/v1/"):
            tenant = self._tenant(scope)
            if tenant is None:
                missing = not any(name == b"authorization" for name, _ in scope.get("headers", []))
                message = (
                    "You didn't provide an API key: send it as 'Authorization: Bearer KEY'."
                    if missing
                    else "Incorrect API key provided."
                )
                err = ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                await error_response(err)(scope, receive, send)
                return
            scope.setdefault("state", {})["tenant"] = tenant
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.config.max_body
        too_large = ApiError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error_response(ApiError(400, "Malformed Content-Length header."))(
                        scope, receive, send
                    )
                    return
                if declared > limit:
                    await error_response(too_large)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await error_response(too_large)(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = [False]

        async def replay() -> Message:
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---- streaming ------------------------------------------------------------------------------------------


class ClientGone(Exception):
    """The client closed the connection."""


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStream(Response):
    """A server-sent event response that stops (and closes ``chunks``) the moment the client goes away,
    even while no data is flowing; ``gone`` is the task watching the connection."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], gone: asyncio.Future[None], headers: dict[str, str]):
        # Like Starlette's StreamingResponse: no body attribute, so no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **headers})
        self.chunks = chunks
        self.gone = gone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            iterator = self.chunks.__aiter__()
            while True:
                step = asyncio.ensure_future(iterator.__anext__())
                await asyncio.wait({step, self.gone}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, ClientGone):
                        await step
                    return
                try:
                    chunk = step.result()
                except StopAsyncIteration:
                    break
                except ClientGone:
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the connection broke while sending
        finally:
            self.gone.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()


def sse(obj: Any) -> bytes:
    if isinstance(obj, BaseModel):
        text = obj.model_dump_json(exclude_none=False)
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode("utf-8") + b"\n\n"


DONE = b"data: [DONE]\n\n"


class JobReader:
    """Reads a job's events, raced against the client disconnecting; cancels the job when it does."""

    def __init__(self, scheduler: Scheduler, model: str, job: Job, gone: asyncio.Future[None]) -> None:
        self.scheduler, self.model, self.job, self.gone = scheduler, model, job, gone
        self._get: asyncio.Future[Event] | None = None
        self.ended = False

    async def next(self) -> Event:
        if self._get is None:
            self._get = asyncio.ensure_future(self.job.events.get())
        if not self._get.done():
            await asyncio.wait({self._get, self.gone}, return_when=asyncio.FIRST_COMPLETED)
        if not self._get.done():
            self.cancel()
            raise ClientGone()
        event = self._get.result()
        self._get = None
        if event[0] == "end":
            self.ended = True
        return event

    def drain(self) -> list[Event]:
        """Events already waiting (no await): lets a stream send many pieces in one chunk."""
        out: list[Event] = []
        while self._get is None and not self.ended:
            try:
                event = self.job.events.get_nowait()
            except asyncio.QueueEmpty:
                break
            out.append(event)
            if event[0] == "end":
                self.ended = True
        return out

    def cancel(self) -> None:
        if self._get is not None:
            self._get.cancel()
            self._get = None
        if not self.ended:
            self.scheduler.cancel(self.model, self.job)


# ---- the application ------------------------------------------------------------------------------------

ERROR_RESPONSES: dict[Any, dict[str, Any]] = {
    400: {"model": p.ErrorResponse, "description": "Invalid JSON or parameters (param names the field)."},
    401: {"model": p.ErrorResponse, "description": "Missing or wrong API key."},
    404: {"model": p.ErrorResponse, "description": "Unknown model."},
    413: {"model": p.ErrorResponse, "description": "Request body too large."},
    429: {"model": p.ErrorResponse, "description": "The model's queue is full; see Retry-After."},
    500: {"model": p.ErrorResponse, "description": "The engine failed; the message is the engine's."},
    502: {"model": p.ErrorResponse, "description": "The peer zone could not be reached."},
}


def _stream_doc(schema: str) -> dict[int, dict[str, Any]]:
    # Before OpenAPI 3.2's itemSchema, an event stream's `schema` describes one event: its `data` is the
    # text "[DONE]" or JSON (a chunk, or an error that ended the stream), said with contentSchema.
    payload = {
        "anyOf": [{"$ref": f"#/components/schemas/{schema}"}, {"$ref": "#/components/schemas/ErrorResponse"}]
    }
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "id": {"type": "string"},
            "data": {
                "anyOf": [
                    {"type": "string", "const": "[DONE]"},
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": payload},
                ]
            },
        },
    }
    return {
        200: {
            "description": "The response, or with stream=true server-sent events (`data: {...}` lines, each a "
            f"{schema} object, ending with `data: [DONE]`).",
            "content": {"text/event-stream": {"schema": event}},
        }
    }


def _finish_reason(result: dict, max_tokens: int) -> str:
    if result.get("function_calls"):
        return "tool_calls"
    reason = result.get("finish_reason")
    if reason in ("stop", "length", "tool_calls"):
        return str(reason)
    return "length" if int(result.get("decode_tokens", 0)) >= max_tokens else "stop"


def _tool_calls(result: dict) -> list[p.ToolCall]:
    calls = []
    for fc in result.get("function_calls") or []:
        args = fc.get("arguments", {})
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append(
            p.ToolCall(
                id="call_" + uuid.uuid4().hex[:24], function=p.FunctionCall(name=fc["name"], arguments=args)
            )
        )
    return calls


def _usage(results: dict[int, dict], firsts: list[int]) -> p.Usage:
    """Prompt tokens count once per prompt (the ``firsts`` choices); completion tokens for every choice."""
    prompt = sum(int(results[i].get("prompt_tokens", results[i].get("prefill_tokens", 0))) for i in firsts)
    cached = sum(
        int(results[i]["prompt_tokens"]) - int(results[i].get("prefill_tokens", 0))
        for i in firsts
        if "prompt_tokens" in results[i]
    )
    completion = sum(int(r.get("decode_tokens", 0)) for r in results.values())
    return p.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=p.PromptTokensDetails(cached_tokens=max(cached, 0)),
    )


def _engine_options(req: p.SamplingRequest, max_tokens: int, config: ServerConfig) -> dict:
    opts: dict[str, Any] = {"max_tokens": max_tokens}
    for key in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty"):
        value = getattr(req, key)
        if value is not None:
            opts[key] = value
    stops = req.stop_sequences()
    if stops:
        opts["stop_sequences"] = stops
    if config.ctx_size:
        opts["n_ctx"] = config.ctx_size
    return opts


def create_app(scheduler: Scheduler, config: ServerConfig) -> Gate:
    """The ASGI application: the FastAPI routes (``.app``) behind the :class:`Gate`."""
    metrics = Metrics()
    peers: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if config.peers:
            import httpx

            peers["client"] = httpx.AsyncClient(timeout=httpx.Timeout(config.peer_timeout, connect=10.0))
        try:
            yield
        finally:
            client = peers.pop("client", None)
            if client is not None:
                await client.aclose()

    app = FastAPI(
        title="cactus",
        version=__version__,
        description="OpenAI-compatible chat completions, completions and embeddings served by the cactus engine. "
        "Every /v1 route takes `Authorization: Bearer KEY` when the server has keys; every response carries "
        f"`{ZONE_HEADER}`, the zone that served it.",
        lifespan=lifespan,
    )
    app.state.scheduler = scheduler
    app.state.config = config
    app.state.metrics = metrics
    bearer = HTTPBearer(auto_error=False, description="An API key given to `cactus serve`.")

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        err = ApiError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {}))
        return error_response(err)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        first_line = (str(exc).splitlines() or [""])[0]
        return error_response(
            ApiError(500, f"Internal server error: {type(exc).__name__}: {first_line}", type_="server_error")
        )

    def model_entry(model: str) -> str:
        if model not in scheduler.models:
            raise ApiError(
                404,
                f"The model '{model}' does not exist. Available: {', '.join(sorted(scheduler.models))}.",
                param="model",
                code="model_not_found",
            )
        return model

    def check_zone(zone: str | None) -> str | None:
        """None when the request runs here; else the peer zone to forward it to."""
        if zone is None or zone == config.zone:
            return None
        if zone in config.peers:
            return zone
        raise ApiError(
            400,
            f"Unknown zone '{zone}'. Valid zones: {', '.join(config.zones())}.",
            param="zone",
            code="invalid_zone",
        )

    def submit(model: str, job: Job) -> None:
        try:
            scheduler.submit(model, job)
        except QueueFull:
            raise ApiError(
                429,
                f"The queue of model '{model}' is full; retry shortly.",
                type_="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "1"},
            ) from None
        except EngineError as exc:
            raise ApiError(exc.status, str(exc), type_="server_error") from None

    def observe(model: str, job: Job) -> None:
        ttft = job.first_token - job.created if job.first_token is not None else -1.0
        wait = job.started - job.created if job.started is not None else -1.0
        metrics.observe_job(model, ttft, wait)

    def engine_error(event: Event) -> ApiError:
        status = int(event[2])
        return ApiError(
            status,
            str(event[1]),
            type_="invalid_request_error" if status < 500 else "server_error",
            code="context_length_exceeded" if status == 400 and "context" in str(event[1]) else None,
        )

    async def first_output(reader: JobReader) -> list[Event]:
        """Events up to the first token (or the end); an engine error before then becomes an HTTP error."""
        seen: list[Event] = []
        while True:
            event = await reader.next()
            if event[0] == "error":
                raise engine_error(event)
            seen.append(event)
            if event[0] in ("piece", "choice", "embedding", "end"):
                return seen

    async def run_job(request: Request, model: str, job: Job) -> tuple[JobReader, list[Event]]:
        """Submits the job; returns its reader and its first events (raises ClientGone, ApiError)."""
        submit(model, job)
        gone = asyncio.ensure_future(_until_disconnect(request.receive))
        reader = JobReader(scheduler, model, job, gone)
        try:
            return reader, await first_output(reader)
        except BaseException:
            reader.cancel()
            gone.cancel()
            raise

    async def collect(reader: JobReader, events: list[Event]) -> list[Event]:
        try:
            while not reader.ended:
                events.append(await reader.next())
        finally:
            reader.gone.cancel()
        for event in events:
            if event[0] == "error":
                raise engine_error(event)
        return events

    def tenant_of(request: Request) -> str:
        return str(getattr(request.state, "tenant", "anonymous"))

    # ---- forwarding to a peer zone ----

    async def forward(request: Request, zone: str, path: str, stream: bool) -> Response:
        import httpx

        client = peers["client"]
        payload = json.loads(await request.body())
        payload.pop("zone", None)  # the peer serves it in its own zone
        base = config.peers[zone].rstrip("/")
        base = base.removesuffix("/v1")
        headers = {"content-type": "application/json", "x-cactus-forwarded-by": config.zone}
        auth = request.headers.get("authorization")
        if auth:
            headers["authorization"] = auth
        upstream_req = client.build_request("POST", base + path, json=payload, headers=headers)
        try:
            upstream = await client.send(upstream_req, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(
                502,
                f"The peer zone '{zone}' could not be reached: {exc}",
                type_="server_error",
                code="peer_unavailable",
            ) from None
        ran_in = upstream.headers.get(ZONE_HEADER, zone)
        media = upstream.headers.get("content-type", "application/json")
        if not stream or upstream.status_code != 200 or not media.startswith("text/event-stream"):
            try:
                body = await upstream.aread()
            finally:
                await upstream.aclose()
            out_headers = {ZONE_HEADER: ran_in}
            if "retry-after" in upstream.headers:
                out_headers["Retry-After"] = upstream.headers["retry-after"]
            return Response(body, status_code=upstream.status_code, media_type=media, headers=out_headers)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        gone = asyncio.ensure_future(_until_disconnect(request.receive))
        return EventStream(relay(), gone, {ZONE_HEADER: ran_in})

    # ---- routes ----

    v1 = [Depends(bearer)]

    @app.post(
        "/v1/chat/completions",
        response_model=p.ChatCompletionResponse,
        responses={**ERROR_RESPONSES, **_stream_doc("ChatCompletionChunk")},
        dependencies=v1,
        tags=["openai"],
        summary="Chat completion (OpenAI-compatible), streamed with stream=true",
    )
    async def chat_completions(body: p.ChatCompletionRequest, request: Request) -> Response:
        peer = check_zone(body.zone)
        if peer is not None:
            return await forward(request, peer, "/v1/chat/completions", body.stream)
        model = model_entry(body.model)
        max_tokens = body.max_completion_tokens or body.max_tokens or config.max_tokens
        messages = []
        for m in body.messages:
            msg = m.model_dump(exclude_none=True)
            if msg["role"] == "developer":
                msg["role"] = "system"
            messages.append(msg)
        tools = [t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None
        base = _engine_options(body, max_tokens, config)
        if tools and body.tool_choice is not None:
            tc = body.tool_choice
            base["tool_choice"] = tc if isinstance(tc, str) else tc.model_dump()
        calls: list[tuple[Any, dict | None, int]] = []
        for i, seed in enumerate(choice_seeds(body.seed, body.n)):
            calls.append((messages, dict(base, **({"seed": seed} if seed is not None else {})), i))
        job = Job(
            "chat",
            calls,
            asyncio.get_running_loop(),
            tools=tools,
            tenant=tenant_of(request),
            stream=body.stream,
        )
        cid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())
        try:
            reader, events = await run_job(request, model, job)
        except ClientGone:
            return Response(status_code=499)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _chat_chunks(reader, events, cid, created, model, max_tokens, include_usage, body.n)
            return EventStream(_observed(chunks, lambda: observe(model, job)), reader.gone, {})
        try:
            events = await collect(reader, events)
        except ClientGone:
            return Response(status_code=499)
        finally:
            observe(model, job)
        results = {e[1]: e[2] for e in events if e[0] == "choice"}
        choices = []
        for i in range(body.n):
            r = results[i]
            calls_out = _tool_calls(r)
            text = r.get("response") or ""
            message = p.ResponseMessage(
                content=text if (text or not calls_out) else None, tool_calls=calls_out or None
            )
            choices.append(
                p.ChatChoice(index=i, message=message, finish_reason=_finish_reason(r, max_tokens))
            )
        response = p.ChatCompletionResponse(
            id=cid, created=created, model=model, choices=choices, usage=_usage(results, [0])
        )
        return JSONResponse(response.model_dump(mode="json"))

    @app.post(
        "/v1/completions",
        response_model=p.CompletionResponse,
        responses={**ERROR_RESPONSES, **_stream_doc("CompletionResponse")},
        dependencies=v1,
        tags=["openai"],
        summary="Text completion of a raw prompt (no chat template)",
    )
    async def completions(body: p.CompletionRequest, request: Request) -> Response:
        peer = check_zone(body.zone)
        if peer is not None:
            return await forward(request, peer, "/v1/completions", body.stream)
        model = model_entry(body.model)
        max_tokens = body.max_tokens or config.max_tokens
        base = _engine_options(body, max_tokens, config)
        prompts = body.prompts()
        calls: list[tuple[Any, dict | None, int]] = []
        seeds = choice_seeds(body.seed, body.n)
        for j, prompt in enumerate(prompts):
            for i, seed in enumerate(seeds):
                calls.append(
                    (prompt, dict(base, **({"seed": seed} if seed is not None else {})), j * body.n + i)
                )
        job = Job("text", calls, asyncio.get_running_loop(), tenant=tenant_of(request), stream=body.stream)
        cid, created = "cmpl-" + uuid.uuid4().hex, int(time.time())
        echo = (
            {j * body.n + i: prompts[j] for j in range(len(prompts)) for i in range(body.n)}
            if body.echo
            else {}
        )
        firsts = [j * body.n for j in range(len(prompts))]
        try:
            reader, events = await run_job(request, model, job)
        except ClientGone:
            return Response(status_code=499)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _text_chunks(
                reader, events, cid, created, model, max_tokens, include_usage, echo, firsts
            )
            return EventStream(_observed(chunks, lambda: observe(model, job)), reader.gone, {})
        try:
            events = await collect(reader, events)
        except ClientGone:
            return Response(status_code=499)
        finally:
            observe(model, job)
        results = {e[1]: e[2] for e in events if e[0] == "choice"}
        choices = [
            p.CompletionChoice(
                index=i,
                text=echo.get(i, "") + (r.get("response") or ""),
                finish_reason=_finish_reason(r, max_tokens),
            )
            for i, r in sorted(results.items())
        ]
        response = p.CompletionResponse(
            id=cid, created=created, model=model, choices=choices, usage=_usage(results, firsts)
        )
        return JSONResponse(response.model_dump(mode="json"))

    @app.post(
        "/v1/embeddings",
        response_model=p.EmbeddingResponse,
        responses=ERROR_RESPONSES,
        dependencies=v1,
        tags=["openai"],
        summary="Embeddings: mean-pooled, L2-normalised final hidden states",
    )
    async def embeddings(body: p.EmbeddingRequest, request: Request) -> Response:
        peer = check_zone(body.zone)
        if peer is not None:
            return await forward(request, peer, "/v1/embeddings", False)
        model = model_entry(body.model)
        size = scheduler.models[model].dimensions
        if body.dimensions is not None and body.dimensions != size:
            raise ApiError(
                400,
                f"This model's embeddings have {size} dimensions, not {body.dimensions}.",
                param="dimensions",
                code="invalid_value",
            )
        texts = body.texts()
        calls: list[tuple[Any, dict | None, int]] = [(t, None, i) for i, t in enumerate(texts)]
        job = Job("embed", calls, asyncio.get_running_loop(), tenant=tenant_of(request))
        try:
            reader, events = await run_job(request, model, job)
            events = await collect(reader, events)
        except ClientGone:
            return Response(status_code=499)
        finally:
            observe(model, job)
        data = []
        n_tokens = 0
        for event in events:
            if event[0] != "embedding":
                continue
            vec = np.asarray(event[2], dtype="<f4")
            n_tokens += int(event[3])
            value: Any = (
                base64.b64encode(vec.tobytes()).decode("ascii")
                if body.encoding_format == "base64"
                else (vec.tolist())
            )
            data.append(p.Embedding(index=int(event[1]), embedding=value))
        data.sort(key=lambda e: e.index)
        response = p.EmbeddingResponse(
            data=data, model=model, usage=p.EmbeddingUsage(prompt_tokens=n_tokens, total_tokens=n_tokens)
        )
        return JSONResponse(response.model_dump(mode="json"))

    @app.get(
        "/v1/models", response_model=p.ModelList, responses=ERROR_RESPONSES, dependencies=v1, tags=["openai"]
    )
    async def list_models() -> p.ModelList:
        cards = [p.ModelCard(id=e.id, created=e.created) for e in scheduler.models.values()]
        return p.ModelList(data=cards)

    @app.get(
        "/v1/models/{model_id}",
        response_model=p.ModelCard,
        responses=ERROR_RESPONSES,
        dependencies=v1,
        tags=["openai"],
    )
    async def get_model(model_id: str) -> p.ModelCard:
        entry = scheduler.models[model_entry(model_id)]
        return p.ModelCard(id=entry.id, created=entry.created)

    @app.get("/health", response_model=p.Health, tags=["ops"])
    async def health() -> p.Health:
        return p.Health(zone=config.zone, models=sorted(scheduler.models), peers=sorted(config.peers))

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["ops"],
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}},
    )
    async def prometheus() -> PlainTextResponse:
        entries = list(scheduler.models.values())

        def per_model(attr: str) -> list[tuple[Any, float]]:
            return [((("model", e.id),), float(getattr(e.stats, attr))) for e in entries]

        extra = (
            gauge(
                "cactus_queue_depth",
                "Requests waiting for a worker.",
                [((("model", e.id),), float(len(e.queue))) for e in entries],
            )
            + gauge("cactus_running", "Requests being generated.", per_model("running"))
            + gauge(
                "cactus_workers",
                "Engine handles serving each model.",
                [((("model", e.id),), float(len(e.workers))) for e in entries],
            )
            + counter_lines(
                "cactus_prompt_tokens_total", "Prompt tokens (whole prompts).", per_model("prompt_tokens")
            )
            + counter_lines(
                "cactus_prefill_tokens_total",
                "Prompt tokens actually computed (not reused from the cache).",
                per_model("prefill_tokens"),
            )
            + counter_lines(
                "cactus_completion_tokens_total", "Generated tokens.", per_model("completion_tokens")
            )
            + counter_lines("cactus_embedding_tokens_total", "Tokens embedded.", per_model("embedded_tokens"))
            + counter_lines(
                "cactus_cancelled_total", "Requests whose client went away.", per_model("cancelled")
            )
        )
        return PlainTextResponse(metrics.render(extra), media_type="text/plain; version=0.0.4; charset=utf-8")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=None
        )
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict):
                    op.get("responses", {}).pop("422", None)  # validation errors are 400 here
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            comps.pop(name, None)
        # This server's own models and zones: a request the schema allows is one it serves.
        for name in ("ChatCompletionRequest", "CompletionRequest", "EmbeddingRequest"):
            props = comps.get(name, {}).get("properties", {})
            if "model" in props:
                props["model"]["enum"] = sorted(scheduler.models)
            if "zone" in props:
                props["zone"]["anyOf"] = [{"type": "string", "enum": config.zones()}, {"type": "null"}]
            if "dimensions" in props:
                sizes = sorted({e.dimensions for e in scheduler.models.values()})
                props["dimensions"]["anyOf"] = [{"type": "integer", "enum": sizes}, {"type": "null"}]
        for model in (p.ChatCompletionChunk, p.CompletionResponse):  # named only in the stream docs
            if model.__name__ not in comps:
                extra = model.model_json_schema(
                    ref_template="#/components/schemas/{model}", mode="serialization"
                )
                for name, sub in extra.pop("$defs", {}).items():
                    comps.setdefault(name, sub)
                comps[model.__name__] = extra
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return Gate(app, config, metrics)


async def _observed(chunks: AsyncIterator[bytes], done: Callable[[], None]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        done()


async def _events(reader: JobReader, first: list[Event]) -> AsyncIterator[list[Event]]:
    """The job's events in batches: whatever arrived together, so pieces can share a chunk."""
    batch = first + reader.drain()
    while True:
        yield batch
        if reader.ended:
            return
        batch = [await reader.next()] + reader.drain()


async def _chat_chunks(
    reader: JobReader,
    first: list[Event],
    cid: str,
    created: int,
    model: str,
    max_tokens: int,
    include_usage: bool,
    n: int,
) -> AsyncIterator[bytes]:
    def chunk(index: int, delta: p.Delta, finish: str | None = None) -> bytes:
        choice = p.ChunkChoice(index=index, delta=delta, finish_reason=finish)  # type: ignore[arg-type]
        obj = p.ChatCompletionChunk(id=cid, created=created, model=model, choices=[choice])
        data = obj.model_dump(mode="json")
        if not include_usage:
            data.pop("usage", None)
        return sse(data)

    results: dict[int, dict] = {}
    try:
        async for batch in _events(reader, first):
            out = bytearray()
            pending: dict[int, str] = {}

            def flush(out: bytearray = out, pending: dict[int, str] = pending) -> None:
                for index, text in pending.items():
                    if text:
                        out.extend(chunk(index, p.Delta(content=text)))
                pending.clear()

            for event in batch:
                kind = event[0]
                if kind == "start":
                    flush()
                    out.extend(chunk(event[1], p.Delta(role="assistant", content="")))
                elif kind == "piece":
                    pending[event[1]] = pending.get(event[1], "") + event[2]
                elif kind == "choice":
                    flush()
                    index, result = event[1], event[2]
                    results[index] = result
                    calls = _tool_calls(result)
                    if calls:
                        deltas = [
                            p.ToolCallDelta(index=j, id=c.id, type="function", function=c.function)
                            for j, c in enumerate(calls)
                        ]
                        out.extend(chunk(index, p.Delta(tool_calls=deltas)))
                    out.extend(chunk(index, p.Delta(), _finish_reason(result, max_tokens)))
                elif kind == "error":
                    flush()
                    out.extend(sse(error_payload(str(event[1]), "server_error")))
            flush()
            if out:
                yield bytes(out)
        if include_usage and len(results) == n:
            usage = _usage(results, [0])
            obj = p.ChatCompletionChunk(id=cid, created=created, model=model, choices=[], usage=usage)
            yield sse(obj.model_dump(mode="json"))
        yield DONE
    finally:
        reader.cancel()


async def _text_chunks(
    reader: JobReader,
    first: list[Event],
    cid: str,
    created: int,
    model: str,
    max_tokens: int,
    include_usage: bool,
    echo: dict[int, str],
    firsts: list[int],
) -> AsyncIterator[bytes]:
    def chunk(index: int, text: str, finish: str | None = None) -> bytes:
        choice = p.CompletionChoice(index=index, text=text, finish_reason=finish)  # type: ignore[arg-type]
        data = p.CompletionResponse(id=cid, created=created, model=model, choices=[choice]).model_dump(
            mode="json"
        )
        if not include_usage:
            data.pop("usage", None)
        return sse(data)

    results: dict[int, dict] = {}
    try:
        async for batch in _events(reader, first):
            out = bytearray()
            pending: dict[int, str] = {}

            def flush(out: bytearray = out, pending: dict[int, str] = pending) -> None:
                for index, text in pending.items():
                    if text:
                        out.extend(chunk(index, text))
                pending.clear()

            for event in batch:
                kind = event[0]
                if kind == "start" and event[1] in echo:
                    pending[event[1]] = pending.get(event[1], "") + echo[event[1]]
                elif kind == "piece":
                    pending[event[1]] = pending.get(event[1], "") + event[2]
                elif kind == "choice":
                    flush()
                    results[event[1]] = event[2]
                    out.extend(chunk(event[1], "", _finish_reason(event[2], max_tokens)))
                elif kind == "error":
                    flush()
                    out.extend(sse(error_payload(str(event[1]), "server_error")))
            flush()
            if out:
                yield bytes(out)
        if include_usage and all(i in results for i in firsts):
            obj = p.CompletionResponse(
                id=cid, created=created, model=model, choices=[], usage=_usage(results, firsts)
            )
            yield sse(obj.model_dump(mode="json"))
        yield DONE
    finally:
        reader.cancel()
