"""The configuration of an API orchestration: modes, endpoints, the run (plain data, no I/O).

Both name sets are accepted: the seed's (``APIEndpoint(url, retry_config, transform,
depends_on)``, ``APIOrchestrationConfig(name, rate_limit, timeout)``) and dataknobs-fsm 0.5's
(``retry_count``, ``retry_delay``, ``transform_input``, ``response_parser``, ``error_handler``,
``max_concurrent``, ``global_rate_limit``, ``rate_limit_window``, ``total_timeout``,
``fail_fast``, ``result_merger``). Everything is checked at construction: a mistake raises
``APIConfigError`` naming the endpoint and the field. Reprs never show credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

from patterns._api.auth import to_auth
from patterns._api.endpoint_graph import check_graph
from patterns._api.errors import APIConfigError, PermanentCallError, TransientCallError
from patterns._api.templates import TemplateError, compile_value
from patterns.error_recovery import RecoveryConfigError, RetryConfig

#: Result keys that are not endpoint names.
RESERVED = ("_metrics", "errors", "merged")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: methods retried after their request was sent, by default (urllib3's ``allowed_methods``)
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_RETRYABLE = frozenset(METHODS) | {"TRACE"}
_METHOD_SET = frozenset(METHODS)
_NO_STATUSES: frozenset[int] = frozenset()
_CALLABLES = ("response_parser", "transform", "transform_input", "error_handler", "condition")


class OrchestrationMode(StrEnum):
    """How the endpoints of a run are scheduled (values are the lower-case names).

    SEQUENTIAL: one after another in the listed order. PARALLEL: all at once, at most
    ``max_concurrent`` in flight. FANOUT: one endpoint over many inputs, on HTTP worker
    actors. PIPELINE: each endpoint's result is the next one's input. CONDITIONAL: in order,
    an endpoint runs only when its ``condition(input, results)`` holds. HYBRID: the
    ``depends_on`` DAG; an endpoint starts as soon as its dependencies finished.
    """

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    FANOUT = "fanout"
    PIPELINE = "pipeline"
    CONDITIONAL = "conditional"
    HYBRID = "hybrid"


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _positive(owner: str, name: str, value: float | None, *, allow_zero: bool = False,
              endpoint: str | None = None) -> None:
    """``APIConfigError`` (naming ``endpoint``, if any) unless ``value`` is None or a number
    > 0 (>= 0 with ``allow_zero``)."""
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or (
            value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise APIConfigError(f"{owner}: {name} must be a number {bound}, got {value!r}",
                             endpoint=endpoint)


@dataclass(frozen=True, repr=False)
class APIEndpoint:
    """One HTTP endpoint of a run.

    ``url`` may be relative to the config's ``base_url``. ``url``, ``headers``, ``params`` and
    ``body`` are templates (see ``patterns._api.templates``) filled from the input and earlier
    results. A POST/PUT/PATCH without ``body`` sends the endpoint's input as JSON.
    ``timeout`` is per attempt (default: the config's ``timeout``). Retries: ``retry_config``
    (a mapping of ``patterns.error_recovery.RetryConfig`` fields, or one) or ``retry_count``
    (retries after the first call) with ``retry_delay`` (first backoff, seconds); 5xx answers,
    timeouts and connection errors are retried, 4xx only those in ``retry_on_status``; a 429
    waits for its ``Retry-After`` and slows the limiter. ``rate_limit`` calls per the config's
    ``rate_limit_window`` seconds, with ``burst_limit``. ``response_parser(response)`` replaces
    the default parsing (JSON, else text); ``transform(parsed)`` shapes the result;
    ``transform_input(input)`` shapes the input first. ``error_handler(error, input)``
    may return a value that stands for the failed call's result (or raise). ``condition(input,
    results)`` gates the endpoint in CONDITIONAL mode. ``auth`` overrides the config's.
    A request that reached the server is sent again only for ``retry_methods`` (default
    GET, HEAD, OPTIONS, PUT, DELETE, TRACE, as urllib3) or when ``idempotent=True``;
    ``idempotent=False`` retries no sent request. Refused connections are always retried.
    """

    name: str
    url: str
    method: str = "GET"
    headers: Mapping[str, Any] | Callable[..., Any] | None = None
    params: Mapping[str, Any] | Callable[..., Any] | None = None
    body: Any = None
    timeout: float | None = None
    retry_config: Any = None
    retry_count: int | None = None
    retry_delay: float | None = None
    retry_on_status: Sequence[int] | None = None
    rate_limit: float | None = None
    burst_limit: int | None = None
    response_parser: Callable[[Any], Any] | None = None
    transform: Callable[[Any], Any] | None = None
    transform_input: Callable[[Any], Any] | None = None
    error_handler: Callable[..., Any] | None = None
    depends_on: Sequence[str] | None = None
    condition: Callable[[Any, Mapping[str, Any]], Any] | None = None
    auth: Any = None
    idempotent: bool | None = None
    retry_methods: Sequence[str] | None = None
    #: the ``RetryConfig`` made from the retry fields (set at construction)
    retry: RetryConfig = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One pass over the fields, each checked only when given: a run of thousands of
        # endpoints builds them all before its first call.
        name = self.name
        if not isinstance(name, str) or not name:
            raise APIConfigError(f"an endpoint needs a non-empty name, got {name!r}")
        who = f"endpoint {name!r}"
        if name in RESERVED:
            raise APIConfigError(f"{who}: the name is reserved for result keys {RESERVED}; "
                                 "rename the endpoint", endpoint=name)
        url = self.url
        if not isinstance(url, str) or not url:
            raise APIConfigError(f"{who}: url must be a non-empty string", endpoint=name)
        problem = _url_problem(url.split("{", 1)[0])  # up to the first template field
        if problem is not None:  # shown without the URL: it may hold a password
            raise APIConfigError(f"{who}: url is not a valid URL ({problem}); check its host "
                                 "part", endpoint=name)
        state = self.__dict__  # frozen: set by the instance dict (as object.__setattr__)
        method = self.method
        if not (isinstance(method, str) and method in _METHOD_SET):
            method = str(method).upper()
            if method not in _METHOD_SET:
                raise APIConfigError(f"{who}: method {self.method!r} is not one of {METHODS}",
                                     endpoint=name)
            state["method"] = method
        if self.timeout is not None:
            _positive(who, "timeout", self.timeout, endpoint=name)
        if self.retry_delay is not None:
            _positive(who, "retry_delay", self.retry_delay, allow_zero=True, endpoint=name)
        if self.rate_limit is not None:
            _positive(who, "rate_limit", self.rate_limit, endpoint=name)
        for field_name, least in (("retry_count", 0), ("burst_limit", 1)):
            value = state[field_name]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < least):
                raise APIConfigError(f"{who}: {field_name} must be an integer >= {least}, got "
                                     f"{value!r}", endpoint=name)
        if self.retry_config is not None and self.retry_count is not None:
            raise APIConfigError(f"{who}: give retry_config or retry_count, not both",
                                 endpoint=name)
        deps = self.depends_on
        state["depends_on"] = (() if not deps else (deps,) if isinstance(deps, str)
                               else tuple(deps))
        statuses = self.retry_on_status
        state["retry_on_status"] = _NO_STATUSES if not statuses else frozenset(statuses)
        if self.idempotent is not None and not isinstance(self.idempotent, bool):
            raise APIConfigError(f"{who}: idempotent must be True, False or None, got "
                                 f"{self.idempotent!r}", endpoint=name)
        if self.retry_methods is None:
            state["retry_methods"] = RETRY_METHODS
        else:
            methods = frozenset(str(m).upper() for m in _listed(self.retry_methods))
            if not methods <= _RETRYABLE:
                raise APIConfigError(f"{who}: retry_methods {sorted(methods)} holds a method "
                                     f"not among {METHODS}", endpoint=name)
            state["retry_methods"] = methods
        for field_name in _CALLABLES:
            value = state[field_name]
            if value is not None and not callable(value):
                raise APIConfigError(f"{who}: {field_name} must be callable, got "
                                     f"{type(value).__name__}", endpoint=name)
        if self.auth is not None:
            state["auth"] = to_auth(self.auth, who)
        state["retry"] = retry_config(self)
        compiled = {}
        for field_name in ("url", "headers", "params", "body"):
            try:
                compiled[field_name] = compile_value(state[field_name], url=field_name == "url")
            except TemplateError as exc:
                raise APIConfigError(f"{who}: {field_name}: {exc}", endpoint=name) from None
        #: the compiled templates, for ``EndpointCall`` (not a field: no repr, no compare)
        state["compiled"] = compiled

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], base_url: str | None = None) -> APIEndpoint:
        """An endpoint from a mapping; ``path`` (joined to ``base_url``) may stand for ``url``."""
        data = dict(spec)
        name = data.get("name")
        if "path" in data:
            path = data.pop("path")
            data.setdefault("url", join_url(base_url, path) if base_url else path)
        known = _endpoint_fields()
        unknown = [] if known.issuperset(data) else sorted(set(data) - known)
        if unknown:
            raise APIConfigError(f"endpoint {name!r}: unknown field(s) {unknown}; known: "
                                 f"{sorted(known | {'path'})}", endpoint=name)
        if "name" not in data or "url" not in data:
            raise APIConfigError(f"endpoint {name!r}: needs 'name' and 'url' (or 'path')",
                                 endpoint=name)
        if cls is not APIEndpoint:
            return cls(**data)
        # What the generated __init__ does (every field its value or default, then
        # __post_init__), without its one frozen-field assignment per field.
        endpoint = object.__new__(cls)
        state = endpoint.__dict__
        state.update(_ENDPOINT_DEFAULTS)
        state.update(data)
        endpoint.__post_init__()
        return endpoint

    def __repr__(self) -> str:
        shown = [f"name={self.name!r}", f"url={_safe(self.url)!r}", f"method={self.method!r}"]
        if self.depends_on:
            shown.append(f"depends_on={list(self.depends_on)!r}")
        if isinstance(self.headers, Mapping):
            shown.append(f"headers={_redact(self.headers)!r}")
        if self.auth is not None:
            shown.append(f"auth={self.auth!r}")
        return f"APIEndpoint({', '.join(shown)})"


_DEFAULT_ATTEMPTS = 3
_DEFAULT_BREAKER = 5
_DEFAULT_DELAY = 1.0
_MAX_DELAY = 30.0


def retries_sent(endpoint: APIEndpoint) -> bool:
    """Whether a request of ``endpoint`` may be sent again after it reached the server:
    ``idempotent`` when set, else whether the method is in ``retry_methods``."""
    if endpoint.idempotent is not None:
        return endpoint.idempotent
    return endpoint.method in endpoint.retry_methods  # type: ignore[operator]


def not_sent(error: BaseException) -> bool:
    """True for an error raised before the request left (a refused connection)."""
    return not getattr(error, "sent", True)


def _both(first: Callable[[BaseException], bool], second: Callable[[BaseException], bool],
          error: BaseException) -> bool:
    return first(error) and second(error)


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def retry_config(endpoint: APIEndpoint) -> RetryConfig:
    """``make_retry_config`` of ``endpoint``; endpoints with the same plain retry fields share
    one (a run of thousands of endpoints validates it once)."""
    if endpoint.retry_config is not None:
        return make_retry_config(endpoint)
    key = (endpoint.retry_count, endpoint.retry_delay, retries_sent(endpoint))
    config = _RETRY_CONFIGS.get(key)
    if config is None:
        config = _RETRY_CONFIGS[key] = make_retry_config(endpoint)
    return config


_RETRY_CONFIGS: dict[tuple[Any, ...], RetryConfig] = {}


def make_retry_config(endpoint: APIEndpoint) -> RetryConfig:
    """The endpoint's ``RetryConfig``: from ``retry_config``, or ``retry_count`` /
    ``retry_delay`` (default 3 attempts, 1 s then exponential, at most 30 s). Only transient
    call errors are retried, and for an endpoint whose requests may not be sent twice
    (``retries_sent`` false: POST and PATCH by default) only those that never reached the
    server. ``APIConfigError`` names the endpoint for a bad setting."""
    given = endpoint.retry_config
    try:
        if isinstance(given, RetryConfig):
            fields = given.model_dump()
        elif isinstance(given, Mapping):
            fields = dict(given)
        elif given is None:
            fields = {"max_attempts": _DEFAULT_ATTEMPTS if endpoint.retry_count is None
                      else endpoint.retry_count + 1}
        else:
            raise APIConfigError(f"endpoint {endpoint.name!r}: retry_config must be a mapping "
                                 f"or a RetryConfig, not {type(given).__name__}",
                                 endpoint=endpoint.name)
        fields.setdefault("initial_delay", _DEFAULT_DELAY if endpoint.retry_delay is None
                          else endpoint.retry_delay)
        fields.setdefault("max_delay", max(_MAX_DELAY, float(fields["initial_delay"])))
        fields["retry_on_exceptions"] = (TransientCallError,)
        if not retries_sent(endpoint):
            given_check = fields.get("retry_on_exception")
            fields["retry_on_exception"] = (not_sent if given_check is None
                                            else partial(_both, not_sent, given_check))
        fields["permanent_errors"] = (PermanentCallError,)
        return RetryConfig(**fields)
    except (RecoveryConfigError, TypeError, ValueError) as exc:
        raise APIConfigError(f"endpoint {endpoint.name!r}: retry_config: {exc}",
                             endpoint=endpoint.name) from None


def join_url(base: str | None, path: str) -> str:
    """``path`` under ``base`` (an absolute ``path`` is kept as it is)."""
    if not base or "://" in path:
        return path
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


@lru_cache(maxsize=1024)
def _endpoint_fields() -> frozenset[str]:
    return frozenset(f.name for f in fields(APIEndpoint) if f.init)


#: every init field of ``APIEndpoint`` that has a default, with it (all are immutable)
_ENDPOINT_DEFAULTS = {f.name: f.default for f in fields(APIEndpoint)
                      if f.init and f.default is not MISSING}


def _url_problem(url: str) -> str | None:
    """Why ``url`` does not parse (its scheme and host part are checked once each)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    return _netloc_problem(scheme, rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0])


@lru_cache(maxsize=1024)
def _netloc_problem(scheme: str, netloc: str) -> str | None:
    try:
        _safe(f"{scheme}://{netloc}/")
    except ValueError as exc:
        return str(exc)
    return None


def _safe(url: str) -> str:
    """``url`` without user info and query; ``ValueError`` for a URL that does not parse."""
    from resource_actors.http import safe_url

    return safe_url(url) if "://" in url else url.split("?", 1)[0]


def config_fields() -> frozenset[str]:
    """The keyword names ``APIOrchestrationConfig`` takes."""
    return frozenset(f.name for f in fields(APIOrchestrationConfig) if f.init)


def _redact(headers: Mapping[str, Any]) -> dict[str, Any]:
    from resource_actors.base import redact

    return redact(headers)


@dataclass(frozen=True, repr=False)
class APIOrchestrationConfig:
    """One orchestration run.

    Rate limits: ``rate_limit`` calls per second for the whole run (the seed's), or
    ``global_rate_limit`` calls per ``rate_limit_window`` seconds (dataknobs-fsm's), with
    ``burst`` tokens; endpoints may add their own. ``scope``: ``"cluster"`` shares every
    limiter and breaker by name (``name`` + endpoint) across the cluster, ``"process"`` keeps
    them in this process, ``"auto"`` shares the limiters for FANOUT (breakers stay per
    worker) and keeps everything in this process otherwise.
    ``timeout`` is the default per-attempt timeout, ``total_timeout`` bounds the whole run.
    ``fail_fast`` stops at the first failed endpoint (raising ``APICallError``); otherwise
    failures are reported under ``errors``. ``result_merger(list_of_results)`` adds
    ``merged``; ``result_transformer(result)`` reshapes the final dict.
    ``circuit_breaker_threshold`` failed calls open an endpoint's breaker for
    ``circuit_breaker_timeout`` seconds (``None``: no breaker). The default ``"auto"`` is 5
    for the in-process modes and no breaker for FANOUT, whose items fail one by one (a bad
    item must not refuse the good ones); a FANOUT breaker the user sets judges calls by the
    user's threshold, and the items it refuses are reported as not sent.

    FANOUT: the input is a list (or iterable) of items, or a mapping holding one under
    ``fanout_key``; ``workers`` HTTP worker actors run ``worker_concurrency`` requests each,
    ``batch_size`` items per task. With ``sink`` (a file path; format from ``sink_format`` or
    the extension) results are streamed there instead of returned; ``checkpoint_id`` makes the
    run resumable; ``error_threshold`` (a count, or a share < 1) stops a run with too many
    failed items. Every request goes through aiohttp.
    """

    endpoints: Sequence[APIEndpoint | Mapping[str, Any]]
    name: str = "api"
    mode: OrchestrationMode | str = OrchestrationMode.SEQUENTIAL
    base_url: str | None = None
    auth: Any = None
    headers: Mapping[str, str] | None = None
    max_concurrent: int = 10
    rate_limit: float | None = None
    burst: int | None = None
    global_rate_limit: float | None = None
    rate_limit_window: float = 60.0
    timeout: float = 30.0
    total_timeout: float | None = 300.0
    fail_fast: bool = False
    result_merger: Callable[[list[Any]], Any] | None = None
    result_transformer: Callable[[dict[str, Any]], Any] | None = None
    circuit_breaker_threshold: int | str | None = "auto"
    circuit_breaker_timeout: float = 60.0
    scope: str = "auto"
    workers: int | None = None
    worker_concurrency: int = 64
    batch_size: int | None = None
    fanout_key: str = "items"
    sink: str | None = None
    sink_format: str | None = None
    checkpoint_id: str | None = None
    error_threshold: float | None = None
    metrics_enabled: bool = True
    log_requests: bool = False
    log_responses: bool = False

    def __post_init__(self) -> None:
        try:
            _set(self, "mode", OrchestrationMode(str(self.mode).lower()))
        except ValueError:
            raise APIConfigError(
                f"config {self.name!r}: unknown mode {self.mode!r}; use one of "
                f"{[m.value for m in OrchestrationMode]}") from None
        if isinstance(self.endpoints, Mapping | str) or not self.endpoints:
            raise APIConfigError(f"config {self.name!r}: endpoints must be a non-empty list")
        endpoints = tuple(e if isinstance(e, APIEndpoint) else APIEndpoint.from_dict(e, self.base_url)
                          for e in self.endpoints)
        if self.base_url:
            endpoints = tuple(_rebase(e, self.base_url) for e in endpoints)
        _set(self, "endpoints", endpoints)
        _set(self, "auth", to_auth(self.auth, f"config {self.name!r}"))
        for name in ("rate_limit", "global_rate_limit", "rate_limit_window", "timeout",
                     "total_timeout", "circuit_breaker_timeout", "error_threshold"):
            _positive("config", name, getattr(self, name))
        for name in ("max_concurrent", "worker_concurrency", "burst", "workers", "batch_size",
                     *(() if self.circuit_breaker_threshold == "auto"
                       else ("circuit_breaker_threshold",))):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise APIConfigError(f"config {self.name!r}: {name} must be an integer >= 1, "
                                     f"got {value!r}")
        if self.scope not in ("auto", "process", "cluster"):
            raise APIConfigError(f"config {self.name!r}: scope must be 'auto', 'process' or "
                                 f"'cluster', got {self.scope!r}")
        check_graph(endpoints, self.mode.value)
        if self.mode is OrchestrationMode.FANOUT and len(endpoints) != 1:
            raise APIConfigError(
                f"config {self.name!r}: FANOUT runs one endpoint over many inputs; got "
                f"{len(endpoints)} ({[e.name for e in endpoints]}). Use one endpoint, or one "
                "run per endpoint.", endpoint=endpoints[1].name)
        if self.sink is not None and self.mode is not OrchestrationMode.FANOUT:
            raise APIConfigError(f"config {self.name!r}: sink is for FANOUT runs only")

    def breaker_threshold(self) -> int | None:
        """Failed calls that open an endpoint's breaker (``None``: no breaker)."""
        if self.circuit_breaker_threshold != "auto":
            return self.circuit_breaker_threshold  # type: ignore[return-value]
        return None if self.mode is OrchestrationMode.FANOUT else _DEFAULT_BREAKER

    @property
    def limit_scope(self) -> str:
        """``process`` or ``cluster``: where limiters and breakers live."""
        if self.scope != "auto":
            return self.scope
        return "cluster" if self.mode is OrchestrationMode.FANOUT else "process"

    def global_rate(self) -> float | None:
        """The run's limit in calls per second (``rate_limit`` wins over ``global_rate_limit``)."""
        if self.rate_limit is not None:
            return float(self.rate_limit)
        if self.global_rate_limit is not None:
            return self.global_rate_limit / self.rate_limit_window
        return None

    def endpoint(self, name: str) -> APIEndpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> APIOrchestrationConfig:
        """A config from a mapping; unknown keys are an ``APIConfigError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise APIConfigError(f"config {spec.get('name', 'api')!r}: unknown field(s) "
                                 f"{unknown}; known: {sorted(known)}")
        return cls(**spec)

    def __repr__(self) -> str:
        return (f"APIOrchestrationConfig(name={self.name!r}, mode={self.mode.value!r}, "
                f"endpoints={[e.name for e in self.endpoints]!r})")


def _rebase(endpoint: APIEndpoint, base_url: str) -> APIEndpoint:
    if "://" in endpoint.url or endpoint.url.startswith("{"):
        return endpoint
    return replace(endpoint, url=join_url(base_url, endpoint.url))
