"""``HTTPResourceAdapter``: an HTTP service on aiohttp, with retries and backoff.

``acquire()`` returns an ``HTTPClient`` whose ``get``/``post``/``put``/``patch``/``delete``
return an ``HTTPResponse`` (``.status``, ``.json()``, ``.text``). The one implementation is
async (``arequest``) and runs on the process's sync bridge loop
(``fsm_actors.platform.event_loop``), where the adapter's one aiohttp session lives; the sync
methods wait for it. 5xx/429 answers, timeouts and connection errors
are retried ``retry_count`` times with exponential backoff (``RetryPolicy``, a pure decision
over the project's one retry core, ``fsm_actors.platform.policies``)
for idempotent methods (a POST or PATCH is retried only when nothing was sent, or when the
adapter's ``retry_methods`` or the request's ``idempotent=True`` says so); 4xx answers are
returned at once. A request that still fails (no answer, or a 5xx/429 after the retries)
raises ``ResourceError``.
Header values that carry credentials never appear in ``repr``, logs or errors.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from fsm_actors.platform import event_loop
from fsm_actors.platform.policies.retry_core import RetryCore, RetrySpec
from resource_actors.base import BaseResourceProvider, ResourceHealth, ResourceStatus, redact
from resource_actors.errors import ResourceError

#: Methods a retry cannot apply twice (RFC 9110 idempotent methods).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry an HTTP attempt, and after how long. No I/O.

    Only ``methods`` are retried after a timeout, a dropped connection or a retryable status
    (the request may have been applied); a connection that could not be made at all is
    retried for every method (nothing was sent).
    """

    retry_count: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    methods: frozenset[str] = IDEMPOTENT_METHODS
    core: RetryCore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = RetrySpec(max_attempts=self.retry_count + 1, initial_delay=self.backoff,
                         max_delay=max(self.backoff, self.max_backoff), backoff_multiplier=2.0)
        object.__setattr__(self, "core", RetryCore(spec))

    def delay(self, attempt: int, status: int | None = None, error: BaseException | None = None,
              method: str = "GET") -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to stop.

        ``attempt`` counts from 0; a ``status`` outside ``retry_statuses`` (and no error)
        stops, and so does a ``method`` outside ``methods`` unless the connection failed.
        """
        if attempt + 1 >= self.core.config.max_attempts:
            return None
        if error is None and status not in self.retry_statuses:
            return None
        if method.upper() not in self.methods and not isinstance(error, aiohttp.ClientConnectorError):
            return None
        return self.core.backoff_after(attempt + 1)

    def gives_up_on(self, status: int) -> bool:
        """True when ``status`` is one this policy would retry: still failing, it is an error."""
        return status in self.retry_statuses


@dataclass(frozen=True)
class HTTPResponse:
    """A complete HTTP answer; plain data, so it crosses processes."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    elapsed: float = 0.0
    attempts: int = 1
    encoding: str = field(default="utf-8")

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    @property
    def text(self) -> str:
        """The body decoded as text."""
        return self.body.decode(self.encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    def raise_for_status(self) -> HTTPResponse:
        """``ResourceError`` for a 4xx/5xx status, else self."""
        if self.status >= 400:
            raise ResourceError(f"HTTP {self.status} from {self.url}", None, "request")
        return self


def safe_url(url: str) -> str:
    """``url`` without user info and query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Session:
    """The adapter's aiohttp session, made on (and used from) the sync bridge loop."""

    def __init__(self, timeout: float) -> None:
        self.session: aiohttp.ClientSession = event_loop.run_sync(self._session(timeout))

    @staticmethod
    async def _session(timeout: float) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    def run(self, coro: Any) -> Any:
        return event_loop.run_sync(coro)

    def submit(self, coro: Any) -> Any:
        return event_loop.submit(coro)

    def close(self) -> None:
        if event_loop.on_bridge_thread():
            event_loop.submit(self.session.close())
        else:
            event_loop.run_sync(self.session.close())


class HTTPClient:
    """Requests against one base URL. Thread-safe; every method has an ``a``-prefixed async twin."""

    handle_kind = "http"

    def __init__(self, adapter: HTTPResourceAdapter) -> None:
        self._adapter = adapter
        self.base_url = adapter.base_url
        self.closed = False

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (an absolute URL is kept as it is)."""
        if "://" in path:
            return path
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    async def _attempts(self, method: str, path: str, **kw: Any) -> HTTPResponse:
        adapter = self._adapter
        session = adapter._runtime().session
        url = self.url(path)
        headers = {**adapter.headers, **(kw.pop("headers", None) or {})}
        policy: RetryPolicy = kw.pop("retry", None) or adapter.retry
        idempotent = kw.pop("idempotent", None)
        if idempotent is not None:  # the caller knows this endpoint: retry it, or never
            methods = policy.methods | {method} if idempotent else policy.methods - {method}
            policy = replace(policy, methods=frozenset(methods))
        timeout = kw.pop("timeout", None)
        if timeout is not None:
            kw["timeout"] = aiohttp.ClientTimeout(total=timeout)
        started = time.perf_counter()
        attempt = 0
        while True:
            error: BaseException | None = None
            try:
                async with session.request(method, url, headers=headers, **kw) as resp:
                    body = await resp.read()
                    result = HTTPResponse(resp.status, dict(resp.headers), body, safe_url(url),
                                          time.perf_counter() - started, attempt + 1,
                                          resp.charset or "utf-8")
                status: int | None = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                error, status = exc, None
            pause = policy.delay(attempt, status, error, method)
            if pause is None:
                if error is None and not policy.gives_up_on(result.status):
                    return result
                if error is None:
                    raise ResourceError(
                        f"{method} {safe_url(url)} on resource {adapter.name!r} answered HTTP "
                        f"{result.status} after {attempt + 1} attempt(s); the service is failing "
                        "or overloaded: retry later, or raise retry_count", adapter.name,
                        method.lower()) from None
                raise ResourceError(
                    f"{method} {safe_url(url)} on resource {adapter.name!r} failed after "
                    f"{attempt + 1} attempt(s): {type(error).__name__}: {error or 'timed out'}",
                    adapter.name, method.lower()) from None
            attempt += 1
            await asyncio.sleep(pause)

    async def arequest(self, method: str, path: str, **kw: Any) -> HTTPResponse:
        """Send a request from any event loop (``json=``, ``data=``, ``params=``, ``headers=``,
        ``timeout=`` seconds per attempt, ``retry=`` a ``RetryPolicy`` for this request,
        ``idempotent=True``/``False`` to retry this request's method or never).

        A 4xx answer is returned; a retryable status (5xx, 429) still failing after the
        retries, or a request that never got an answer, raises ``ResourceError``."""
        if self.closed:
            raise ResourceError(f"HTTP client of {self._adapter.name!r} is released",
                                self._adapter.name, "request")
        future = self._adapter._runtime().submit(self._attempts(method.upper(), path, **kw))
        return await asyncio.wrap_future(future)

    def request(self, method: str, path: str, **kw: Any) -> HTTPResponse:
        """Send a request and wait for the answer (see ``arequest``)."""
        if self.closed:
            raise ResourceError(f"HTTP client of {self._adapter.name!r} is released",
                                self._adapter.name, "request")
        return self._adapter._runtime().run(self._attempts(method.upper(), path, **kw))

    def get(self, path: str = "", **kw: Any) -> HTTPResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str = "", json: Any = None, **kw: Any) -> HTTPResponse:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str = "", json: Any = None, **kw: Any) -> HTTPResponse:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str = "", json: Any = None, **kw: Any) -> HTTPResponse:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str = "", **kw: Any) -> HTTPResponse:
        return self.request("DELETE", path, **kw)

    async def aget(self, path: str = "", **kw: Any) -> HTTPResponse:
        return await self.arequest("GET", path, **kw)

    async def apost(self, path: str = "", json: Any = None, **kw: Any) -> HTTPResponse:
        return await self.arequest("POST", path, json=json, **kw)

    async def aput(self, path: str = "", json: Any = None, **kw: Any) -> HTTPResponse:
        return await self.arequest("PUT", path, json=json, **kw)

    async def adelete(self, path: str = "", **kw: Any) -> HTTPResponse:
        return await self.arequest("DELETE", path, **kw)

    def __repr__(self) -> str:
        return f"<HTTPClient {self._adapter.name!r} {safe_url(self.base_url)}>"


class HTTPResourceAdapter(BaseResourceProvider):
    """Provider of ``HTTPClient`` objects for the service at ``base_url``.

    ``timeout`` is per attempt (seconds); ``retry_count`` (or dataknobs-fsm 0.5's
    ``max_retries``) extra attempts follow a 5xx/429, timeout or connection error, after
    ``retry_backoff * 2**n`` seconds (at most ``max_backoff``), for the idempotent methods
    only (``retry_methods`` names others, e.g. ``["GET", "POST"]`` for a service whose POSTs
    are idempotent). ``health_path`` is requested by ``health_check``; ``validate`` checks
    that the service accepts a connection, within ``timeout`` (at most 5 s).
    """

    def __init__(self, name: str, base_url: str, timeout: float = 30.0,
                 headers: Mapping[str, str] | None = None, retry_count: int | None = None, *,
                 max_retries: int | None = None, retry_backoff: float = 0.25,
                 max_backoff: float = 8.0, health_path: str = "",
                 retry_methods: Iterable[str] | None = None, **config: Any) -> None:
        retries = retry_count if retry_count is not None else max_retries
        self.base_url = base_url
        self.timeout = float(timeout)
        self.headers = dict(headers or {})
        methods = (frozenset(m.upper() for m in retry_methods) if retry_methods is not None
                   else IDEMPOTENT_METHODS)
        self.retry = RetryPolicy(3 if retries is None else retries, retry_backoff, max_backoff,
                                 methods=methods)
        self.health_path = health_path
        super().__init__(name, {"base_url": base_url, "timeout": self.timeout,
                                "headers": self.headers, "retry_count": self.retry.retry_count,
                                **config})
        self._runtime_init()

    def _runtime_init(self) -> None:
        self._lock = threading.Lock()
        self._loop: _Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state.pop("_loop", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runtime_init()

    @property
    def retry_count(self) -> int:
        return self.retry.retry_count

    def _runtime(self) -> _Session:
        with self._lock:
            if self._loop is None:
                self._loop = _Session(self.timeout)
            return self._loop

    def acquire(self, **kwargs: Any) -> HTTPClient:
        """A client for the service (cheap: clients share the adapter's connection pool)."""
        if self.status is ResourceStatus.CLOSED:
            raise ResourceError(f"HTTP resource {self.name!r} is closed", self.name, "acquire")
        self.status = ResourceStatus.ACTIVE
        return HTTPClient(self)

    def release(self, resource: Any) -> None:
        if isinstance(resource, HTTPClient):
            resource.closed = True

    def validate(self, resource: Any) -> bool:
        """True for an unreleased client whose service accepts a TCP connection."""
        if not isinstance(resource, HTTPClient) or resource.closed:
            return False
        return self.status is not ResourceStatus.CLOSED and self._reachable()

    def _reachable(self) -> bool:
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port),
                                          timeout=min(self.timeout, 5.0)):
                return True
        except OSError:
            return False

    def health_check(self) -> ResourceHealth:
        """HEALTHY below 500 at ``health_path``, DEGRADED on 5xx, UNHEALTHY when unreachable."""
        if self.status is ResourceStatus.CLOSED:
            return ResourceHealth.UNHEALTHY
        try:
            status = HTTPClient(self).get(self.health_path, timeout=min(self.timeout, 5.0),
                                          retry=RetryPolicy(0, retry_statuses=frozenset())).status
        except ResourceError:
            self.metrics.record_health_check(False)
            return ResourceHealth.UNHEALTHY
        self.metrics.record_health_check(status < 500)
        return ResourceHealth.HEALTHY if status < 500 else ResourceHealth.DEGRADED

    def close(self) -> None:
        """Close the session."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()
        self.status = ResourceStatus.CLOSED

    def __repr__(self) -> str:
        return (f"HTTPResourceAdapter(name={self.name!r}, base_url={safe_url(self.base_url)!r}, "
                f"headers={redact(self.headers)!r}, retry_count={self.retry.retry_count})")


#: dataknobs-fsm 0.5's name.
HTTPServiceResource = HTTPResourceAdapter
