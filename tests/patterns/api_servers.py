"""A controllable aiohttp server on 127.0.0.1 for the API orchestration tests and benchmark.

Every request is logged (``calls``: method, path, key, start and end wall-clock times) and
counted per path. Failures are asked for per request, by query parameters, so tests never
share state: ``/flaky/{key}?fail=N&status=S`` answers S for the first N calls of ``key``;
``/limited/{key}?n=N&after=S`` answers 429 with ``Retry-After: S`` N times; ``/reset/{key}?n=N``
drops the connection N times; ``/slow/{key}?delay=S`` sleeps (GET or POST); ``/malformed`` sends broken
JSON; ``/items/{id}`` is the fast route for FANOUT. ``start()`` runs it on a thread of this
process; ``python -m tests.patterns.api_servers PORT`` runs it as a process of its own (the
benchmark's server) and prints ``ready`` when it listens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

TOKEN = "s3cret-token-value"
USER, PASSWORD = "alice", "pa55-word-value"
API_KEY = "k3y-value-123456"


@dataclass
class Call:
    method: str
    path: str
    key: str
    start: float
    end: float = 0.0
    status: int = 0


class APITestServer:
    """See the module docstring. ``calls_to(prefix)`` filters the log by path prefix."""

    def __init__(self, log_calls: bool = True) -> None:
        self.log_calls = log_calls
        self.calls: list[Call] = []
        self.hits: Counter[str] = Counter()
        self._seen: defaultdict[str, int] = defaultdict(int)
        self.headers_seen: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls_to(self, prefix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.startswith(prefix)]

    def count(self, prefix: str) -> int:
        return len(self.calls_to(prefix))

    def _nth(self, key: str) -> int:
        with self._lock:
            self._seen[key] += 1
            return self._seen[key]

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        call = Call(request.method, request.path, request.match_info.get("key", ""), time.time())
        if self.log_calls:
            with self._lock:
                self.calls.append(call)
                self.hits[request.path] += 1
        try:
            response = await handler(request)
            call.status = response.status
            return response
        finally:
            call.end = time.time()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log])
        r = app.router
        r.add_get("/items/{key}", self.item)
        r.add_get("/slow/{key}", self.slow)
        r.add_post("/echo", self.echo)
        r.add_put("/echo", self.echo)
        r.add_post("/auth", self.auth)
        r.add_get("/data", self.data)
        r.add_get("/flaky/{key}", self.flaky)
        r.add_get("/limited/{key}", self.limited)
        r.add_get("/reset/{key}", self.reset)
        r.add_get("/malformed", self.malformed)
        r.add_get("/status/{code}", self.status)
        r.add_post("/status/{code}", self.status)
        r.add_get("/secret/{kind}", self.secret)
        r.add_post("/graphql", self.graphql)
        r.add_get("/chunked/{key}", self.chunked)
        r.add_get("/gzip/{key}", self.gzipped)
        r.add_get("/close/{key}", self.close)
        r.add_get("/users", self.users)
        r.add_post("/slow/{key}", self.slow)
        r.add_get("/big/{mb}", self.big)
        r.add_get("/nth/{tag}/{key}", self.nth)
        r.add_get("/text/{charset}", self.text)
        r.add_get("/binary", self.binary)
        r.add_get("/reflect/{code}", self.reflect)
        r.add_get("/redirect", self.redirect)
        r.add_get("/seen/{key}", self.seen)
        r.add_get("/posts", self.posts)
        return app

    async def item(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        return web.json_response({"id": key, "q": request.query.get("q")})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", "0.3")))
        return web.json_response({"name": request.match_info["key"]})

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"method": request.method, "json": body})

    async def auth(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"token": f"tok-{body.get('user', 'anon')}"})

    async def data(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Token") or request.query.get("token")
        return web.json_response({"data": [1, 2, 3], "token_seen": token})

    async def flaky(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if self._nth(f"flaky:{key}") <= int(request.query.get("fail", "0")):
            after = request.query.get("after")
            return web.json_response({"error": "told to fail"},
                                     status=int(request.query.get("status", "503")),
                                     headers={"Retry-After": after} if after else None)
        return web.json_response({"ok": key})

    async def limited(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if self._nth(f"limited:{key}") <= int(request.query.get("n", "1")):
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": request.query.get("after", "0.5")})
        return web.json_response({"ok": key})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if self._nth(f"reset:{key}") <= int(request.query.get("n", "1")):
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        return web.json_response({"ok": key})

    async def malformed(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"broken": ', content_type="application/json")

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "as asked"}, status=int(request.match_info["code"]))

    async def secret(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        auth = request.headers.get("Authorization", "")
        good = {
            "bearer": auth == f"Bearer {TOKEN}",
            "basic": auth == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
            "key": request.headers.get("X-API-Key") == API_KEY
            or request.query.get("api_key") == API_KEY,
        }.get(kind, False)
        if not good:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"secret": "ok"})

    async def graphql(self, request: web.Request) -> web.Response:
        body = await request.json()

        def answer(q: dict[str, Any]) -> dict[str, Any]:
            if "broken" in q["query"]:
                return {"data": None, "errors": [{"message": "Cannot query field 'broken'"}]}
            return {"data": {"echo": q.get("variables", {})}}

        if isinstance(body, list):
            return web.json_response([answer(q) for q in body])
        return web.json_response(answer(body))

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"chunked": ', b'"' + request.match_info["key"].encode() + b'"', b"}"):
            await response.write(part)
        await response.write_eof()
        return response

    async def gzipped(self, request: web.Request) -> web.Response:
        response = web.json_response({"gzip": request.match_info["key"], "pad": "x" * 2000})
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def close(self, request: web.Request) -> web.Response:
        return web.json_response({"closed": request.match_info["key"]},
                                 headers={"Connection": "close"})

    async def big(self, request: web.Request) -> web.StreamResponse:
        """``mb`` MiB of bytes in 1 MiB chunks (``Transfer-Encoding: chunked``)."""
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = bytes(range(256)) * 4096
        for _ in range(int(request.match_info["mb"])):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def nth(self, request: web.Request) -> web.Response:
        """500 when the integer ``key`` is a multiple of ``every`` (default 20), else 200
        (after ``delay`` seconds)."""
        key = int(request.match_info["key"])
        await asyncio.sleep(float(request.query.get("delay", "0")))
        if key % int(request.query.get("every", "20")) == 0:
            return web.json_response({"error": "told to fail"}, status=500)
        return web.json_response({"n": key})

    async def text(self, request: web.Request) -> web.Response:
        charset = request.match_info["charset"]
        return web.Response(body="café naïve".encode(charset),
                            headers={"Content-Type": f"text/plain; charset={charset}"})

    async def binary(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes(range(256)), content_type="application/octet-stream")

    async def reflect(self, request: web.Request) -> web.Response:
        """Answers status ``code`` with the request's headers in the body."""
        return web.json_response(dict(request.headers), status=int(request.match_info["code"]))

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def seen(self, request: web.Request) -> web.Response:
        """Keeps the request's headers in ``headers_seen[key]``."""
        self.headers_seen[request.match_info["key"]] = dict(request.headers)
        return web.json_response({"seen": request.match_info["key"]})

    async def users(self, request: web.Request) -> web.Response:
        return web.json_response({"users": [{"id": 1}], "auth": bool(request.headers.get(
            "Authorization"))})

    async def posts(self, request: web.Request) -> web.Response:
        return web.json_response({"posts": [{"id": 7}]})

    async def _serve(self, port: int) -> web.AppRunner:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    def start(self, port: int = 0) -> APITestServer:
        """Serve on a thread of this process."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="api-test-server")
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._serve(port), self._loop).result(10)
        return self

    def stop(self) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class RawHTTPServer:
    """A hand-written HTTP/1.1 server on 127.0.0.1 for the cases aiohttp's server never makes.

    ``GET /continue``: an unasked-for ``100 Continue`` before the real ``200`` answer.
    ``/drop-post``: a GET is answered with keep-alive; a POST is read whole, counted in
    ``posts`` and the connection closed without an answer. ``requests`` counts every request.
    """

    def __init__(self) -> None:
        self.requests = 0
        self.posts = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="raw-http-server")
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                if method == "POST" and path.startswith("/drop-post"):
                    self.posts += 1
                    writer.close()
                    return
                payload = json.dumps({"path": path, "method": method,
                                      "body": body.decode("utf-8", "replace")}).encode()
                prefix = b"HTTP/1.1 100 Continue\r\n\r\n" if path.startswith("/continue") else b""
                writer.write(prefix + b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
                             + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> RawHTTPServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def rate_in_window(calls: list[Call], skip: float = 0.0) -> float:
    """Requests per second the server saw, from the first start (plus ``skip`` seconds, to
    leave out a burst) to the last start."""
    starts = sorted(c.start for c in calls)
    if len(starts) < 2:
        return 0.0
    first = starts[0] + skip
    kept = [s for s in starts if s >= first]
    span = kept[-1] - first
    return (len(kept) - 1) / span if span > 0 else 0.0


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = APITestServer(log_calls=False)

    async def serve() -> None:
        await server._serve(port)
        print(f"ready {server.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
