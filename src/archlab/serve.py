"""`archlab serve MODEL`: an OpenAI-compatible HTTP server (GET /v1/models, POST /v1/completions
and /v1/chat/completions, streaming as server-sent events), on FastAPI + uvicorn, the optional
extra `pip install 'archlab[serve]'`.

Response and chunk shapes follow OpenAI's API reference (https://platform.openai.com/docs/
api-reference/chat/object and .../chat/streaming): a stream starts with a chunk whose delta is
{"role": "assistant", "content": ""}, sends text deltas, ends with a chunk holding only the
finish_reason, then (with stream_options.include_usage) a chunk with empty choices and the
usage, then `data: [DONE]`. Requests are queued, one generation at a time (serve_engine).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' `request: Request` annotation at
# runtime, and Request is imported inside create_app (FastAPI is an optional extra)
import asyncio
import contextlib
import errno
import json
import socket
import sys
import time
import uuid

from .serve_engine import Engine, Job
from .serve_requests import RequestError, Sampling, messages, model_name, prompt, room, sampling

EXTRA_HINT = "archlab serve needs FastAPI and uvicorn: pip install 'archlab[serve]'"
# OpenAI's own default for the legacy completions endpoint's max_tokens (API reference, completions/create)
COMPLETIONS_MAX_TOKENS = 16


class MissingExtra(ValueError):
    """The serve extra is not installed (a ValueError: the CLI reports it in one line)."""


def require_extra() -> None:
    """Raises a one-line error naming the extra when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingExtra(EXTRA_HINT) from None


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class _Server:
    """Request handling for one model; the FastAPI routes in create_app only call into it."""

    def __init__(self, model, tokenizer, name: str, limit: int):
        self.model, self.tokenizer, self.name, self.limit = model, tokenizer, name, limit
        self.context = model.config.max_seq_len
        self.created = int(time.time())
        self.engine = Engine(model, tokenizer)

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": self.created, "owned_by": "archlab"}]}

    def prepare(self, body, chat: bool) -> tuple[list[int], Sampling, int]:
        """Checks a request body; returns the prompt ids, the sampling and the token budget."""
        if not isinstance(body, dict):
            raise RequestError(f"the request body must be a JSON object, got {type(body).__name__}")
        model_name(body, self.name)
        s = sampling(body, None if chat else COMPLETIONS_MAX_TOKENS)
        tok = self.tokenizer
        if chat:
            msgs = messages(body)
            if not tok.chat_template:
                raise RequestError(f"messages: the model {self.name!r} has no chat template; use /v1/completions",
                                   "messages")
            try:
                text = tok.apply_chat_template(msgs, add_generation_prompt=True)
                ids = tok.encode_prompt(text, templated=True)
            except ValueError as e:  # the template's own raise_exception ("roles must alternate" ...), bad Unicode
                raise RequestError(f"messages: {e}", "messages") from None
        else:
            p = prompt(body)
            try:
                ids = p if isinstance(p, list) else tok.encode_prompt(p)
            except ValueError as e:  # JSON can carry a lone surrogate ("\udc80"), which is no text
                raise RequestError(f"prompt: {e}", "prompt") from None
        param = "messages" if chat else "prompt"
        if not ids:
            raise RequestError(f"{param}: the prompt is empty (no tokens)", param)
        # a tokenizer larger than the model's embedding can spell ids the model has no row for
        bad = [t for t in ids if not 0 <= t < self.model.config.vocab_size]
        if bad:
            raise RequestError(f"{param}: token ids must be in [0, {self.model.config.vocab_size}), got {bad[:5]}", param)
        return ids, s, room(len(ids), self.context, s.max_tokens, self.limit, param, s.max_tokens_param)

    def submit(self, ids: list[int], s: Sampling, budget: int) -> tuple[Job, asyncio.Queue]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def emit(event: tuple) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop has closed (server shutting down): nobody to tell
                pass

        job = Job(ids, s, budget, emit)
        self.engine.submit(job)
        return job, events


def _error_response(e: RequestError):
    from fastapi.responses import JSONResponse

    return JSONResponse(e.body(), status_code=e.status)


def _internal(e: BaseException) -> RequestError:
    # no traceback goes to the client: the type and message say enough to report it
    return RequestError(f"internal error: {type(e).__name__}: {e}", None, "internal_error", status=500)


def create_app(model, tokenizer, name: str, limit: int = 4096):
    """The FastAPI app serving `model` under `name`; `limit` caps each request's max_tokens."""
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    server = _Server(model, tokenizer, name, limit)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.engine.close()

    app = FastAPI(title="archlab serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):  # 404 / 405 in OpenAI's error shape too
        return _error_response(RequestError(str(exc.detail), None, None, status=exc.status_code))

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        return _error_response(_internal(exc))

    @app.get("/v1/models")
    async def list_models():
        return server.models()

    async def handle(request: Request, chat: bool):
        try:
            try:
                body = json.loads(await request.body())
            except ValueError as e:
                raise RequestError(f"the request body is not valid JSON: {e}") from None
            ids, s, budget = await run_in_threadpool(server.prepare, body, chat)
        except RequestError as e:
            return _error_response(e)
        job, events = server.submit(ids, s, budget)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        kind = "chat.completion" if chat else "text_completion"
        if s.stream:
            # no-cache and X-Accel-Buffering: a proxy in front (nginx) must pass each event on at once
            return StreamingResponse(_sse(job, events, rid, kind, server.name, len(ids), chat, s.include_usage),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        watcher = asyncio.create_task(_cancel_when_gone(request, job))
        try:
            parts, finish, n = await _collect(events)
        except RequestError as e:
            return _error_response(e)
        finally:
            watcher.cancel()
            job.cancelled.set()  # the handler was cancelled or is done: the worker may drop it
        text = "".join(parts)
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish}
                  if chat else {"index": 0, "text": text, "logprobs": None, "finish_reason": finish})
        return {"id": rid, "object": kind, "created": int(time.time()), "model": server.name, "choices": [choice],
                "usage": _usage(len(ids), n), "system_fingerprint": None}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, chat=False)

    return app


async def _cancel_when_gone(request, job: Job, every: float = 0.25) -> None:
    """A client waiting for a whole (not streamed) reply that hangs up stops its generation too;
    a stream notices through starlette, which cancels the response when the client leaves."""
    while not await request.is_disconnected():
        await asyncio.sleep(every)
    job.cancelled.set()


async def _collect(events: asyncio.Queue) -> tuple[list[str], str | None, int]:
    parts = []
    while True:
        event = await events.get()
        if event[0] == "text":
            parts.append(event[1])
        elif event[0] == "error":
            raise _as_request_error(event[1])
        else:
            return parts, event[1], event[2]


def _as_request_error(e: BaseException) -> RequestError:
    return e if isinstance(e, RequestError) else _internal(e)


def _data(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _sse(job: Job, events: asyncio.Queue, rid: str, kind: str, name: str, n_prompt: int, chat: bool,
               include_usage: bool):
    created = int(time.time())

    def chunk(text: str | None, finish: str | None, role: bool = False) -> str:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else ({} if text is None else {"content": text})
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        body = {"id": rid, "object": kind + ".chunk" if chat else kind, "created": created, "model": name,
                "choices": [choice], "system_fingerprint": None}
        if include_usage:
            body["usage"] = None
        return _data(body)

    try:
        if chat:
            yield chunk(None, None, role=True)
        while True:
            event = await events.get()
            if event[0] == "text":
                yield chunk(event[1], None)
            elif event[0] == "error":
                yield _data(_as_request_error(event[1]).body())
                break
            else:
                yield chunk(None, event[1])
                if include_usage:
                    body = {"id": rid, "object": kind + ".chunk" if chat else kind, "created": created, "model": name,
                            "choices": [], "usage": _usage(n_prompt, event[2]), "system_fingerprint": None}
                    yield _data(body)
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()  # also on a client that disconnected mid-stream: its generation stops


def _check_address(host: str, port: int) -> None:
    """Refuses an address that cannot be listened on before the model loads (seconds), not after."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # as uvicorn binds: SO_REUSEADDR, so a port left in TIME_WAIT by a stopped server is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        hint = "; another program listens there: choose another --port" if e.errno == errno.EADDRINUSE else ""
        raise ValueError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}){hint}") from None


def run(args) -> int:
    """`archlab serve`: load the model, then serve it until Ctrl-C."""
    require_extra()
    _check_address(args.host, args.port)
    import uvicorn

    from . import api
    from .hub import resolve_model

    from .api import choose_quant

    path = resolve_model(args.model)
    # as generate and chat: a GGUF keeps its quantized blocks on the CPU unless --quant none
    model = api.load(path, dtype=args.dtype, quant=choose_quant(path, args.quant, "cpu")).eval()
    tokenizer = api.load_tokenizer(path)
    name = args.served_model_name or args.model
    app = create_app(model, tokenizer, name, args.max_new_tokens_limit)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"archlab serve: {name} at http://{host}:{args.port}/v1 (OpenAI-compatible; Ctrl-C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        # like llama.cpp's llama-server without --api-key: anyone who can reach the port can use the model
        print(f"archlab serve: listening on {args.host}, beyond this machine; there is no authentication", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
