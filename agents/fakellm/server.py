"""The aiohttp application, a background-thread runner for tests and a blocking `serve`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, TypeVar

from aiohttp import web

from .protocols import anthropic, ollama, openai
from .protocols.base import (
    ChatRequest,
    Cut,
    Protocol,
    ReplyPlan,
    RequestError,
    dumps,
    json_response,
    truncated,
)
from .replies import make_plan
from .script import (
    ERROR_FAULTS,
    Fault,
    Script,
    ScriptError,
    coerce_script,
    parse_fault,
    script_to_dict,
)

DEFAULT_PORT: Final = 8911
LOG_SIZE: Final = 1000
HANG_LIMIT: Final = 600.0
# Our runners cancel a hung handler as soon as its client goes; this only matters when the app
# runs under a runner without handler cancellation.
HANG_POLL: Final = 0.25
# A stopped test server must not wait for hung or streaming requests to finish.
SHUTDOWN_TIMEOUT: Final = 0.25
MAX_BODY: Final = 64 * 1024 * 1024
MODELS_CREATED: Final = 1_735_689_600
MODELS_MODIFIED: Final = "2025-01-01T00:00:00Z"
OLLAMA_KEEP_ALIVE: Final = 300.0

FAULT_HEADER: Final = "x-fakellm-fault"
NODE_HEADER: Final = "x-fakellm-node"
RULE_HEADER: Final = "x-fakellm-rule"
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})

_T = TypeVar("_T")


def mask_secret(value: str) -> str:
    """Keeps the scheme and the last four characters: enough to tell keys apart in a log."""
    scheme, sep, token = value.partition(" ")
    if not sep:
        scheme, token = "", value
    masked = "****" + token[-4:] if len(token) > 4 else "****"
    return f"{scheme} {masked}" if scheme else masked


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool = False) -> None:
    if allow_remote or is_loopback(host):
        return
    raise ValueError(
        f"refusing to listen on {host!r}: fakellm accepts any request from anyone who can reach "
        "it (its API key check is for tests, not protection) and logs prompts and headers, so it "
        "listens on loopback only (127.0.0.1, ::1, localhost). Use --allow-remote if the network "
        "is yours."
    )


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ServerState:
    """Everything an instance remembers; touched only from its event loop."""

    def __init__(self, script: Script, name: str, log_size: int) -> None:
        self.script = script
        self.name = name
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.seq = 0
        self.rule_hits: dict[int, int] = {}
        self.fault_hits: dict[tuple[str, str], int] = {}
        self.inflight = 0
        self.pulled: dict[str, str] = {}
        self.loaded: dict[str, float] = {}
        self._waiters: list[asyncio.Future[None]] = []

    def set_script(self, script: Script) -> None:
        self.script = script
        # Rule indexes mean other rules now; `times` starts over for them.
        self.rule_hits.clear()

    def reset(self) -> None:
        self.log.clear()
        self.rule_hits.clear()
        self.fault_hits.clear()
        self._notify()

    def record(self, request: web.Request, protocol: str, body: Any, model: Any) -> dict[str, Any]:
        self.seq += 1
        headers = {}
        for key, value in request.headers.items():
            lowered = key.lower()
            headers[lowered] = mask_secret(value) if lowered in _SECRET_HEADERS else value
        entry = {
            "seq": self.seq,
            "time": time.time(),
            "protocol": protocol,
            "method": request.method,
            "path": request.path,
            "model": model if isinstance(model, str) else None,
            "headers": headers,
            "body": body,
            "rule": None,
            "fault": None,
            # True once a reply was sent whole (a successful call, as the client could see it).
            "answered": False,
        }
        self.log.append(entry)
        if self._waiters:
            self._notify()
        return entry

    def fault_fires(self, fault: Fault, model: str) -> bool:
        if fault.count is None:
            return True
        key = (fault.spec, model)
        n = self.fault_hits.get(key, 0) + 1
        self.fault_hits[key] = n
        return n <= fault.count

    def model_names(self) -> list[str]:
        names = list(self.script.models)
        known = {ollama.tagged(n) for n in names}
        names.extend(n for n in self.pulled if n not in known)
        return names

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def enter(self) -> None:
        self.inflight += 1
        if self._waiters:
            self._notify()

    def leave(self) -> None:
        self.inflight -= 1
        if self._waiters:
            self._notify()

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)
        return True

    def condition(self, requests: int | None, inflight: int | None) -> Callable[[], bool]:
        def holds() -> bool:
            if requests is not None and len(self.log) < requests:
                return False
            return inflight is None or self.inflight == inflight

        return holds


STATE_KEY: Final = web.AppKey("fakellm_state", ServerState)
_RULE_KEY: Final = web.RequestKey("fakellm_rule", str)


def _auth_message(protocol: str, key: str | None) -> str:
    if protocol == "anthropic":
        return "x-api-key header is required" if key is None else "invalid x-api-key"
    if key is None:
        return (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    return (
        f"Incorrect API key provided: {openai_key_echo(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


def openai_key_echo(key: str) -> str:
    """The wrong key as OpenAI echoes it in a 401: its first eight and last four characters.

    The studio must not store or show even this much of a key (see agents.llm.redaction)."""
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * max(4, len(key) - 12) + key[-4:]


class _Handlers:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers[NODE_HEADER] = self.state.name
        rule = request.get(_RULE_KEY)
        if rule is not None:
            response.headers[RULE_HEADER] = rule

    # Chat endpoints

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, openai.PROTOCOL)

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, anthropic.PROTOCOL)

    async def ollama_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, ollama.PROTOCOL)

    async def _chat(self, request: web.Request, proto: Protocol) -> web.StreamResponse:
        started_ns = time.monotonic_ns()
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        model = body.get("model") if isinstance(body, dict) else None
        entry = self.state.record(request, proto.name, body, model)
        self.state.enter()
        try:
            return await self._answer(request, proto, body, entry, started_ns)
        finally:
            self.state.leave()

    async def _answer(
        self,
        request: web.Request,
        proto: Protocol,
        body: Any,
        entry: dict[str, Any],
        started_ns: int,
    ) -> web.StreamResponse:
        state = self.state
        script = state.script
        if not isinstance(body, dict):
            return proto.error(
                "bad_request", None, "We could not parse the JSON body of your request."
            )
        key = proto.api_key(request.headers)
        if script.api_key is not None and proto is not ollama.PROTOCOL and key != script.api_key:
            return proto.error("auth", None, _auth_message(proto.name, key))
        try:
            req = proto.parse(body)
        except RequestError as exc:
            return proto.error("bad_request", None, str(exc))
        state.loaded[ollama.tagged(req.base_model)] = time.time()

        fault: Fault | None = None
        spec = request.headers.get(FAULT_HEADER) or req.model_fault
        if spec:
            try:
                requested = parse_fault(spec)
            except ValueError as exc:
                return proto.error("bad_request", req, f"{FAULT_HEADER}: {exc}")
            if state.fault_fires(requested, req.base_model):
                fault = requested
        match = script.first_match(req, state.rule_hits)
        rule = match[1] if match is not None else None
        label = str(match[0]) if match is not None else "default"
        request[_RULE_KEY] = label
        if (
            fault is None
            and rule is not None
            and rule.fault is not None
            and state.fault_fires(rule.fault, req.base_model)
        ):
            fault = rule.fault
        entry["rule"] = match[0] if match is not None else "default"
        entry["fault"] = fault.spec if fault is not None else None

        if rule is not None and rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if fault is not None:
            if fault.name in ERROR_FAULTS:
                message = _auth_message(proto.name, key) if fault.name == "auth" else None
                return proto.error(fault.name, req, message)
            if fault.name == "hang":
                return await self._hang(request)

        plan = make_plan(
            req,
            rule,
            seq=entry["seq"],
            created=int(time.time()),
            started_ns=started_ns,
            fault=fault.name if fault is not None else None,
        )
        if not req.stream:
            if plan.chunk_delay:
                # A model takes as long to write its answer whether it streams it or not.
                await asyncio.sleep(plan.chunk_delay * max(0, len(plan.pieces) - 1))
            payload = dumps(proto.plain_body(req, plan))
            if plan.fault == "malformed":
                payload = truncated(payload)
            else:
                entry["answered"] = plan.fault is None
            return web.Response(body=payload, content_type="application/json")
        return await self._stream(request, proto, req, plan, entry)

    async def _stream(
        self,
        request: web.Request,
        proto: Protocol,
        req: ChatRequest,
        plan: ReplyPlan,
        entry: dict[str, Any],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": proto.stream_content_type, "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        delay = plan.chunk_delay
        first = True
        try:
            for frame in proto.stream_frames(req, plan):
                if isinstance(frame, Cut):
                    if plan.fault == "cut":
                        # Without the terminating chunk, clients see a truncated body, as when
                        # a provider's connection drops mid-answer.
                        transport = request.transport
                        if transport is not None:
                            transport.close()
                        return response
                    if plan.fault != "malformed":
                        continue
                    frame = proto.broken_frame(req, plan)
                if delay and not first:
                    await asyncio.sleep(delay)
                first = False
                await response.write(frame)
            await response.write_eof()
            entry["answered"] = plan.fault is None
        except ConnectionResetError:
            pass
        return response

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANG_LIMIT
        while (remaining := deadline - loop.time()) > 0:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await asyncio.sleep(min(HANG_POLL, remaining))
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response()

    # Model listings

    async def models(self, request: web.Request) -> web.StreamResponse:
        is_anthropic = "anthropic-version" in request.headers
        proto = anthropic.PROTOCOL if is_anthropic else openai.PROTOCOL
        self.state.record(request, proto.name, None, None)
        api_key = self.state.script.api_key
        if api_key is not None:
            key = proto.api_key(request.headers)
            if key != api_key:
                return proto.error("auth", None, _auth_message(proto.name, key))
        names = self.state.model_names()
        if is_anthropic:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": MODELS_MODIFIED}
                for n in names
            ]
            return json_response(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": names[0] if names else None,
                    "last_id": names[-1] if names else None,
                }
            )
        listed: list[dict[str, Any]] = [
            {"id": n, "object": "model", "created": MODELS_CREATED, "owned_by": "fakellm"}
            for n in names
        ]
        return json_response({"object": "list", "data": listed})

    async def ollama_tags(self, request: web.Request) -> web.StreamResponse:
        self.state.record(request, "ollama", None, None)
        models = [
            ollama.model_entry(ollama.tagged(n), MODELS_MODIFIED) for n in self.state.script.models
        ]
        known = {m["name"] for m in models}
        models.extend(
            ollama.model_entry(n, modified)
            for n, modified in self.state.pulled.items()
            if n not in known
        )
        return json_response({"models": models})

    async def ollama_ps(self, request: web.Request) -> web.StreamResponse:
        self.state.record(request, "ollama", None, None)
        now = time.time()
        models = []
        for name, used in self.state.loaded.items():
            if used + OLLAMA_KEEP_ALIVE < now:
                continue
            entry = ollama.model_entry(name, MODELS_MODIFIED)
            del entry["modified_at"]
            entry["expires_at"] = _rfc3339(used + OLLAMA_KEEP_ALIVE)
            # As a node reports it: the weights plus the key/value cache of its context, all of
            # it in GPU memory.
            shape = ollama.shape_of(name)
            context = 4096
            kv_cache = 2 * shape.layers * shape.kv_heads * shape.key_length * 2 * context
            entry["size"] += kv_cache
            entry["size_vram"] = entry["size"]
            entry["context_length"] = context
            models.append(entry)
        return json_response({"models": models})

    async def ollama_show(self, request: web.Request) -> web.StreamResponse:
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            body = None
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        self.state.record(request, "ollama", body, name)
        if not isinstance(name, str) or not name:
            return json_response({"error": "model is required"}, 400)
        tagged = ollama.tagged(name)
        present = {ollama.tagged(n) for n in self.state.script.models} | set(self.state.pulled)
        if tagged not in present:
            return json_response({"error": f"model '{name}' not found"}, 404)
        return json_response(ollama.show_body(tagged, MODELS_MODIFIED))

    async def ollama_version(self, request: web.Request) -> web.StreamResponse:
        self.state.record(request, "ollama", None, None)
        return json_response({"version": ollama.VERSION})

    async def ollama_root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="Ollama is running")

    async def ollama_pull(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        self.state.record(request, "ollama", body, name)
        if not isinstance(name, str) or not name:
            return json_response({"error": "model is required"}, 400)
        spec = request.headers.get(FAULT_HEADER)
        if spec:
            try:
                fault = parse_fault(spec)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            if fault.name in ERROR_FAULTS and self.state.fault_fires(fault, name):
                return ollama.error(fault.name, None, None)
        tagged = ollama.tagged(name)
        described = ollama.model_entry(tagged, MODELS_MODIFIED)
        total = described["size"]
        digest = "sha256:" + described["digest"]
        self.state.pulled.setdefault(tagged, _rfc3339(time.time()))
        if body.get("stream", True) is False:
            return json_response({"status": "success"})
        progress: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        progress.extend(
            {"status": "downloading", "digest": digest, "total": total, "completed": done}
            for done in (0, total // 2, total)
        )
        progress.extend(
            {"status": s} for s in ("verifying sha256 digest", "writing manifest", "success")
        )
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            for line in progress:
                await response.write(dumps(line) + b"\n")
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response

    # Control

    async def health(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        return json_response(
            {
                "status": "ok",
                "name": state.name,
                "rules": len(state.script.rules),
                "requests": len(state.log),
                "inflight": state.inflight,
            }
        )

    async def requests(self, request: web.Request) -> web.StreamResponse:
        return json_response({"requests": list(self.state.log)})

    async def wait(self, request: web.Request) -> web.StreamResponse:
        try:
            want_requests = _optional_int(request.query.get("requests"))
            want_inflight = _optional_int(request.query.get("inflight"))
            timeout = float(request.query.get("timeout", "10"))
        except ValueError:
            return json_response(
                {"error": "requests and inflight are integers, timeout seconds"}, 400
            )
        state = self.state
        ok = await state.wait_until(
            state.condition(want_requests, want_inflight), min(timeout, HANG_LIMIT)
        )
        return json_response(
            {"ok": ok, "requests": len(state.log), "inflight": state.inflight},
            200 if ok else 408,
        )

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.state.reset()
        return json_response({"status": "ok"})

    async def get_script(self, request: web.Request) -> web.StreamResponse:
        return json_response(script_to_dict(self.state.script))

    async def put_script(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            script = Script.from_json(raw or b"null", "script")
        except ScriptError as exc:
            return json_response({"error": str(exc)}, 400)
        self.state.set_script(script)
        return json_response({"status": "ok", "rules": len(script.rules)})


def _optional_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def create_app(
    script: Script | Mapping[str, Any] | None = None,
    *,
    name: str = "fakellm",
    log_size: int = LOG_SIZE,
) -> web.Application:
    """The fake provider: OpenAI, Anthropic and Ollama endpoints plus `/_fakellm/` controls."""
    state = ServerState(coerce_script(script), name, log_size)
    handlers = _Handlers(state)
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE_KEY] = state
    app.on_response_prepare.append(handlers.on_prepare)
    app.router.add_post("/v1/chat/completions", handlers.openai_chat)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_post("/v1/messages", handlers.anthropic_messages)
    app.router.add_post("/api/chat", handlers.ollama_chat)
    app.router.add_get("/api/tags", handlers.ollama_tags)
    app.router.add_get("/api/ps", handlers.ollama_ps)
    app.router.add_get("/api/version", handlers.ollama_version)
    app.router.add_post("/api/pull", handlers.ollama_pull)
    app.router.add_post("/api/show", handlers.ollama_show)
    app.router.add_get("/", handlers.ollama_root)
    app.router.add_get("/_fakellm/health", handlers.health)
    app.router.add_get("/_fakellm/requests", handlers.requests)
    app.router.add_get("/_fakellm/wait", handlers.wait)
    app.router.add_post("/_fakellm/reset", handlers.reset)
    app.router.add_get("/_fakellm/script", handlers.get_script)
    app.router.add_post("/_fakellm/script", handlers.put_script)
    return app


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}"


class RunningServer:
    """A server on its own thread and event loop, for synchronous tests."""

    def __init__(
        self,
        app: web.Application,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        url: str,
    ) -> None:
        self.app = app
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self._state = app[STATE_KEY]
        self._loop = loop
        self._thread = thread

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def base_urls(self) -> dict[str, str]:
        return {"openai": self.url + "/v1", "anthropic": self.url, "ollama": self.url}

    def _call(self, fn: Callable[[], _T]) -> _T:
        if not self._thread.is_alive():
            return fn()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed over to the calling thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request log since the last reset, oldest first."""
        return self._call(lambda: list(self._state.log))

    @property
    def script(self) -> Script:
        return self._state.script

    def set_script(self, script: Script | Mapping[str, Any] | None) -> None:
        parsed = coerce_script(script)
        self._call(lambda: self._state.set_script(parsed))

    def reset(self) -> None:
        self._call(self._state.reset)

    def wait_for(
        self, *, requests: int | None = None, inflight: int | None = None, timeout: float = 10.0
    ) -> bool:
        """Blocks until the log holds `requests` entries and `inflight` are being answered."""
        condition = self._state.condition(requests, inflight)
        future = asyncio.run_coroutine_threadsafe(
            self._state.wait_until(condition, timeout), self._loop
        )
        return future.result(timeout + 5)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.name} {self.url}>"


def start_in_thread(
    script: Script | Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str = "fakellm",
    allow_remote: bool = False,
    log_size: int = LOG_SIZE,
) -> RunningServer:
    """Starts a server on a daemon thread; port 0 picks a free port (see `.url`)."""
    check_host(host, allow_remote)
    app = create_app(script, name=name, log_size=log_size)
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[str] = concurrent.futures.Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner, url = loop.run_until_complete(_start(app, host, port))
        except BaseException as exc:  # reported to the starting thread
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(url)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"fakellm-{name}", daemon=True)
    thread.start()
    url = ready.result(timeout=30)
    return RunningServer(app, loop, thread, url)


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    script: Script | Mapping[str, Any] | None = None,
    name: str = "fakellm",
    *,
    allow_remote: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves until interrupted (KeyboardInterrupt propagates) or sent SIGTERM."""
    check_host(host, allow_remote)
    app = create_app(script, name=name)

    async def main() -> None:
        runner, url = await _start(app, host, port)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, stopped.set)
        try:
            if on_ready is not None:
                on_ready(url)
            await stopped.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
