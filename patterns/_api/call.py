"""One endpoint call: build the request from templates, send attempts, parse, shape, report.

``EndpointCall`` is compiled once per endpoint (templates, auth, parser) and is picklable, so
FANOUT ships it to worker actors. ``attempt`` sends one HTTP request on a given aiohttp
session and classifies the answer: 2xx parse into a result (redirects are followed, without credentials to another origin; a 3xx that is left is an error); 5xx, 429, timeouts and
connection errors raise ``TransientCallError`` (retried by the endpoint's retry policy; a
429 or 503 carries its ``Retry-After``); other 4xx raise ``PermanentCallError`` unless the status is in
``retry_on_status``. ``call`` runs the whole call under the endpoint's policies and never
raises: it returns a ``CallOutcome`` (result or error with status and reason), after the
endpoint's ``error_handler`` had its say. Credentials never reach an outcome, log or error.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import functools
import json as jsonlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from multidict import CIMultiDictProxy

from patterns._api.auth import scrub
from patterns._api.config import APIEndpoint, APIOrchestrationConfig
from patterns._api.errors import APICallError, PermanentCallError, TransientCallError
from patterns._api.templates import NO_ITEM, Scope, TemplateError, compile_value, constant
from patterns.error_recovery import CallNotPermittedError
from resource_actors.base import is_secret_key, redact
from resource_actors.http import HTTPResponse, safe_url

log = logging.getLogger("patterns.api_orchestration")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: answers whose ``Retry-After`` the retry waits for
_WAIT_STATUSES = frozenset({429, 503})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
#: request headers that carry credentials whatever their value
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: media types (besides ``text/*``) whose bodies are text
_TEXT_MARKERS = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


@dataclass(slots=True)
class CallOutcome:
    """What one endpoint call did. ``value`` is the shaped result when ``ok``; otherwise
    ``status`` (``None`` when no answer came) and ``reason`` say why. ``started``/``ended``
    are wall-clock seconds; ``attempts`` counts HTTP requests sent (retries included)."""

    name: str
    ok: bool
    value: Any = None
    status: int | None = None
    reason: str = ""
    attempts: int = 0
    started: float = 0.0
    ended: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0
    method: str = "GET"
    rate_limited: int = 0
    handled: bool = False
    skipped: bool = False

    def error_entry(self) -> dict[str, Any]:
        """The entry of ``errors`` in a run's result."""
        return {"status": self.status, "reason": self.reason, "attempts": self.attempts}

    def to_error(self) -> APICallError:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        return APICallError(f"endpoint {self.name!r} failed ({where}) after {self.attempts} "
                            f"attempt(s): {self.reason}", endpoint=self.name,
                            status=self.status, reason=self.reason, attempts=self.attempts)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@functools.lru_cache(maxsize=256)
def content_type(value: str) -> tuple[str, str | None]:
    """``(media type in lower case, charset or None)`` of a ``Content-Type`` header; a charset
    Python does not know is ``None``."""
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip('"') or None
    if charset is not None:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    return mime.strip().lower(), charset


def default_parse(response: HTTPResponse) -> Any:
    """JSON when the answer says it is JSON (malformed JSON is then an error); ``bytes`` for
    a media type that is not text (``application/octet-stream``, images, ...); otherwise
    text decoded by the answer's charset (UTF-8 when none is given), or JSON if it parses
    as such. Without a ``Content-Type``, a body that is not UTF-8 is ``bytes``. An empty
    body is ``None``."""
    return parse_body(response.body, response.headers.get("Content-Type", ""))


def parse_body(body: bytes, type_header: str) -> Any:
    """``default_parse`` of a body and its ``Content-Type`` header (``""`` when none)."""
    if not body:
        return None
    mime, charset = content_type(type_header)
    if "json" in mime:
        return jsonlib.loads(body.decode(charset) if charset else body)
    if mime and not mime.startswith("text/") and not any(m in mime for m in _TEXT_MARKERS):
        return bytes(body)
    try:
        text = body.decode(charset or "utf-8")
    except UnicodeDecodeError:
        if not mime:
            return bytes(body)
        text = body.decode(charset or "utf-8", errors="replace")
    if text[:1] in ("{", "["):
        try:
            return jsonlib.loads(text)
        except ValueError:  # it only looked like JSON: keep it as text
            pass
    return text


class EndpointCall:
    """An endpoint compiled for calls; plain data, picklable (user callables by cloudpickle).

    ``policy`` supplies the retry/limit/breaker wrapper (``patterns._api.policies``); it is
    attached where the call runs (driver or worker actor), not pickled with the call.
    """

    def __init__(self, endpoint: APIEndpoint, config: APIOrchestrationConfig) -> None:
        self.name = endpoint.name
        self.endpoint = endpoint
        self.method = endpoint.method
        compiled = endpoint.compiled  # type: ignore[attr-defined]
        self.url = compiled["url"]
        self.headers = (compiled["headers"] if not config.headers or callable(endpoint.headers)
                        else compile_value({**config.headers, **(endpoint.headers or {})}))
        self.params = compiled["params"] if endpoint.params is not None else None
        self.body = compiled["body"] if endpoint.body is not None else None
        self.auth = endpoint.auth or config.auth
        self.timeout = endpoint.timeout or config.timeout
        self.retry_on_status = endpoint.retry_on_status
        self.parser = endpoint.response_parser or default_parse
        self.log_requests = config.log_requests
        self.log_responses = config.log_responses
        secrets = self.auth.secrets() if self.auth is not None else []
        for given in (config.headers, endpoint.headers):
            if given is not None and isinstance(given, Mapping):
                secrets += [str(v) for k, v in given.items() if is_secret_key(str(k))]
        self.secrets = tuple(s for s in secrets if len(s) >= 4) if secrets else ()
        #: called before each request is sent (FANOUT workers count requests with it)
        self.on_send: Any = None
        self._client_timeout = _client_timeout(self.timeout)
        self._static = _static_request(self)

    def __repr__(self) -> str:
        return f"EndpointCall({self.name!r}, {self.method})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_client_timeout")
        state["on_send"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_timeout = _client_timeout(self.timeout)
        self._static = state.get("_static") or _static_request(self)

    def input_for(self, data: Any) -> Any:
        """The endpoint's input after its ``transform_input``."""
        fn = self.endpoint.transform_input
        return fn(data) if fn is not None else data

    def request(self, scope: Scope) -> dict[str, Any]:
        """The keyword arguments of ``session.request`` for one call (credentials included)."""
        headers = {str(k): str(v) for k, v in (self.headers.render(scope) or {}).items()}
        params = self.params.render(scope) if self.params is not None else None
        if self.auth is not None:
            params = self.auth.apply(headers, params)
        kw: dict[str, Any] = {"headers": headers}
        if params:
            kw["params"] = {str(k): _param(v) for k, v in params.items() if v is not None}
        if self.body is not None:
            body = self.body.render(scope)
        elif self.method in _BODY_METHODS and scope.item is NO_ITEM:
            body = scope.input
        else:
            body = scope.item if self.method in _BODY_METHODS else None
        if body is not None:
            if isinstance(body, bytes | str):
                kw["data"] = body
            else:
                kw["json"] = body
        return kw

    async def attempt(self, session: aiohttp.ClientSession, url: str, kw: dict[str, Any],
                      outcome: CallOutcome, on_429: Any = None) -> Any:
        """Send one request (following redirects) and return the parsed body, or raise
        Transient/PermanentCallError."""
        outcome.attempts += 1
        if self.on_send is not None:
            self.on_send()
        if self.log_requests:
            log.info("%s %s headers=%s", self.method, safe_url(url), redact(kw["headers"]))
        try:
            # the first request here, not in a helper: one coroutine fewer to pass through
            # at each of its waits
            async with session.request(self.method, url, timeout=self._client_timeout,
                                       allow_redirects=False, **kw) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
                location = headers.get("Location") if status in _REDIRECTS else None
            if location:
                status, headers, body = await self._follow(session, resp.url, location, status,
                                                           headers, body, kw)
        except TimeoutError:
            raise TransientCallError(f"timed out after {self.timeout:g}s") from None
        except ValueError as exc:  # a URL no client can send (aiohttp's InvalidURL too)
            reason = scrub(f"{type(exc).__name__}: {exc}", self.secrets)
            raise PermanentCallError(reason.replace(url, _shown(url))) from None
        except (aiohttp.ClientError, OSError) as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", self.secrets)
            sent = not isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError)
            raise TransientCallError(reason.replace(url, _shown(url)), sent=sent) from None
        outcome.status = status
        outcome.bytes_read += len(body)
        if self.log_responses:
            log.info("%s %s -> %d (%d bytes)", self.method, _shown(url), status, len(body))
        if status >= 300:
            reason = f"HTTP {status}: {_snippet(body, self.secrets)}"
            if status < 400:
                raise PermanentCallError(f"{reason} (a redirect without a usable Location, "
                                         "or not modified; not a result)", status)
            if status in _WAIT_STATUSES:
                wait = retry_after_seconds(headers.get("Retry-After"))
                if status == 429:
                    outcome.rate_limited += 1
                if on_429 is not None and (status == 429 or wait):
                    on_429(wait)
                raise TransientCallError(reason, status, wait)
            if status in _RETRY_STATUSES or status in self.retry_on_status:
                raise TransientCallError(reason, status)
            raise PermanentCallError(reason, status)
        try:
            if self.parser is default_parse:  # the same, without an HTTPResponse to build
                return parse_body(body, headers.get("Content-Type", ""))
            charset = content_type(headers.get("Content-Type", ""))[1]
            return self.parser(HTTPResponse(
                status, headers, body, _shown(url), 0.0,  # type: ignore[arg-type]
                outcome.attempts, charset or "utf-8"))
        except ValueError as exc:
            raise PermanentCallError(
                f"malformed response body: {type(exc).__name__}: {exc}"[:300], status) from None

    async def _follow(self, session: aiohttp.ClientSession, here: yarl.URL, location: str,
                      status: int, headers: CIMultiDictProxy[str], body: bytes,
                      kw: dict[str, Any]) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """The redirects an answer (``status`` from ``here`` to ``location``) leads to, at
        most ``_MAX_REDIRECTS`` after the first request; the last answer. 303, and 301/302
        after a POST, become GETs without a body; a redirect to another origin (scheme, host,
        port) loses every credential of the request; a redirect to another scheme is the
        answer."""
        method = self.method
        for followed in range(_MAX_REDIRECTS + 1):
            there = here.join(yarl.URL(location))
            if there.scheme not in ("http", "https"):
                return status, headers, body
            if followed == _MAX_REDIRECTS:
                break
            kw = {k: v for k, v in kw.items() if k != "params"}
            if there.origin() != here.origin():
                kw["headers"] = _without_credentials(kw["headers"], self.secrets)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method = "HEAD" if method == "HEAD" else "GET"
                kw = {k: v for k, v in kw.items() if k not in ("data", "json")}
            async with session.request(method, there, timeout=self._client_timeout,
                                       allow_redirects=False, **kw) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
                location = headers.get("Location") if status in _REDIRECTS else None
                if not location:
                    return status, headers, body
                here = resp.url
        raise PermanentCallError(f"more than {_MAX_REDIRECTS} redirects, last to "
                                 f"{_shown(str(there))}")

    async def call(self, session: aiohttp.ClientSession, policy: Any, data: Any,
                   results: Mapping[str, Any], item: Any = NO_ITEM,
                   outcome: CallOutcome | None = None) -> CallOutcome:
        """Run the call under ``policy`` (retries, limiters, breaker); never raises.
        ``outcome`` (a fresh one by default) is filled as the call goes, so a caller that
        cancels the call still knows what it sent."""
        if outcome is None:
            outcome = CallOutcome(self.name, False, method=self.method, started=time.time())
        try:
            transform_input = self.endpoint.transform_input
            if transform_input is not None:
                data = transform_input(data)
            if self._static is not None:  # nothing to fill in: no scope, no body
                url, headers = self._static
                kw: dict[str, Any] = {"headers": headers}
            else:
                scope = Scope(data, results, item)
                url = self.url.render(scope)
                kw = self.request(scope)
                outcome.bytes_written = _body_size(kw)
        except TemplateError as exc:
            return self._failed(outcome, None, f"template: {exc}", data)
        except Exception as exc:  # a user callable (transform_input, body) raised
            return self._failed(outcome, None, _user_error("building the request", exc), data)
        try:
            parsed = await policy.run(self, session, url, kw, outcome)
        except (TransientCallError, PermanentCallError) as exc:
            return self._failed(outcome, exc.status, exc.reason, data)
        except asyncio.CancelledError:
            raise
        except CallNotPermittedError as exc:  # refused before sending (breaker open)
            return self._failed(outcome, outcome.status, scrub(
                f"not sent: refused by {type(exc).__name__}: {exc}", self.secrets), data)
        except Exception as exc:  # a policy failed (no token in time)
            return self._failed(outcome, outcome.status, scrub(
                f"{type(exc).__name__}: {exc}", self.secrets), data)
        transform = self.endpoint.transform
        if transform is not None:
            try:
                parsed = transform(parsed)
            except Exception as exc:
                return self._failed(outcome, outcome.status, _user_error("transform", exc), data)
        outcome.ok, outcome.value, outcome.ended = True, parsed, time.time()
        return outcome

    def _failed(self, outcome: CallOutcome, status: int | None, reason: str,
                data: Any) -> CallOutcome:
        outcome.ok, outcome.status, outcome.reason = False, status, reason
        outcome.ended = time.time()
        handler = self.endpoint.error_handler
        if handler is not None:
            try:
                outcome.value = handler(outcome.to_error(), data)
            except Exception as exc:
                outcome.reason = f"{reason}; error_handler raised {_user_error('', exc)}"
                return outcome
            outcome.ok = outcome.handled = True
        return outcome


def _static_request(call: EndpointCall) -> tuple[str, dict[str, str]] | None:
    """``(url, headers)`` of an endpoint whose every request is the same (no placeholder,
    callable, params, body or auth; a method that sends no input), else ``None``. The headers
    dict is shared by the requests: nothing on the way changes it."""
    if (call.auth is not None or call.params is not None or call.body is not None
            or call.method in _BODY_METHODS):
        return None
    (fixed_url, url), (fixed_headers, headers) = constant(call.url), constant(call.headers)
    if not (fixed_url and fixed_headers):
        return None
    if headers is None:
        return url, {}
    if not isinstance(headers, Mapping):
        return None
    return url, {str(k): str(v) for k, v in headers.items()}


@functools.lru_cache(maxsize=64)
def _client_timeout(total: float | None) -> aiohttp.ClientTimeout:
    """One (immutable) ``ClientTimeout`` per timeout value, shared by the endpoints."""
    return aiohttp.ClientTimeout(total=total)


def _shown(url: str) -> str:
    """``safe_url(url)``, with the common case (no user info) kept cheap on the hot path."""
    return safe_url(url) if "@" in url else url.split("?", 1)[0].split("#", 1)[0]


def _param(value: Any) -> str | int | float:
    """A query value aiohttp takes: booleans as ``true``/``false``, structures as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return value
    return jsonlib.dumps(value)


def _without_credentials(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """``headers`` less every credential: by name, or by holding a secret value."""
    return {k: v for k, v in headers.items()
            if k.lower() not in _CREDENTIAL_HEADERS and not is_secret_key(k)
            and not any(secret in v for secret in secrets)}


def _snippet(body: bytes, secrets: tuple[str, ...]) -> str:
    text = body[:200].decode("utf-8", errors="replace").strip()
    return scrub(text, secrets) or "(empty body)"


def _user_error(where: str, exc: Exception) -> str:
    prefix = f"{where} raised " if where else ""
    return f"{prefix}{type(exc).__name__}: {exc}"[:300]


def _body_size(kw: dict[str, Any]) -> int:
    if "data" in kw:
        data = kw["data"]
        return len(data.encode() if isinstance(data, str) else data)
    if "json" in kw:
        return len(jsonlib.dumps(kw["json"], default=str))
    return 0
