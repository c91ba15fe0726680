"""Turn the function references of a config into plain callables, once, at compile time.

A reference is one of:

* a name in ``custom_functions`` (or ``{type: registered, name}``);
* a dotted import path, ``"pkg.mod:fn"`` or ``"pkg.mod.fn"`` (or ``{type: custom, module,
  name}``); a dotted string whose first part is ``data``, ``context`` or ``ctx`` is code;
* inline code (a string, or ``{type: inline, code}``): an expression evaluated with
  ``data`` and ``context``/``ctx`` in scope, a lambda, or statements run with ``data`` in
  scope whose value is ``result`` if they assign it, else the (mutated) ``data``;
* for arc conditions, ``"success"``/``"failure"``: ``data.get("valid", True)`` or its
  negation.

Whether a callable is called as ``f(data, context)`` or ``f(data)`` is decided here, not
per call: the context is passed when it has two required positional parameters, ``*args``,
or a second parameter named ``context``/``ctx``. Keyword ``params`` of a mapping reference
are bound with ``functools.partial``. Coroutine functions run to completion on the sync
bridge's loop (``fsm_actors.platform.event_loop``), the same loop for every call in the process.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import keyword
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fsm_actors.config.models import FunctionRef, FunctionSpec
from fsm_actors.platform.errors import FSMConfigError
from fsm_actors.platform.event_loop import run_sync

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")
"""``pkg.mod:fn`` or ``pkg.mod.fn``; a bare name is not a path (it is a keyword or code)."""
_CODE_ROOTS = frozenset({"data", "context", "ctx"})
_CONTEXT_NAMES = frozenset({"context", "ctx", "function_context"})
_UNSET = object()


@dataclass(frozen=True, slots=True)
class CompiledFunction:
    """A callable ready to run: call ``fn(data, context)`` if ``takes_context`` else
    ``fn(data)``. ``name`` labels it in error messages; ``key_path`` is where the config
    declared it."""

    fn: Callable[..., Any]
    takes_context: bool
    name: str
    key_path: str


class FunctionCompiler:
    """Compiles references against one ``custom_functions`` mapping; raises
    ``FSMConfigError`` (with ``source`` and the reference's key path) for code with a
    syntax error, an unknown function name, or an import path that does not import."""

    def __init__(
        self,
        custom_functions: dict[str, Callable[..., Any]] | None,
        source: str | None,
        scope: dict[str, Any] | None = None,
    ) -> None:
        self._custom = dict(custom_functions or {})
        self._source = source
        self._scope = dict(scope or {})

    def compile(
        self, ref: FunctionRef, key_path: str, *, condition: bool = False
    ) -> CompiledFunction:
        """Compile one reference; ``condition`` enables ``"success"``/``"failure"``."""
        if isinstance(ref, FunctionSpec):
            return self._compile_spec(ref, key_path)
        text = ref.strip()
        if not text:
            raise self._error("empty function reference; name a function or write code", key_path)
        if text in self._custom:
            return self._callable(self._custom[text], text, key_path)
        if condition and text in ("success", "failure"):
            fn = _valid if text == "success" else _invalid
            return CompiledFunction(fn, False, text, key_path)
        if text.isidentifier() and not keyword.iskeyword(text) and text not in _CODE_ROOTS:
            raise self._error(
                f"unknown function '{text}': it is not in custom_functions "
                f"({', '.join(sorted(self._custom)) or 'none given'}); register it, give an "
                "import path 'module:function', or write inline code that uses 'data'",
                key_path,
            )
        root = re.split(r"[.:]", text, maxsplit=1)[0]
        if text != root and _DOTTED.fullmatch(text) and root not in _CODE_ROOTS:
            return self._callable(self._import(text, key_path), text, key_path)
        return self._compile_code(ref, key_path)

    def _compile_spec(self, spec: FunctionSpec, key_path: str) -> CompiledFunction:
        if spec.type == "inline":
            return self._compile_code(spec.code or "", key_path)
        if spec.type == "registered":
            if spec.name not in self._custom:
                raise self._error(
                    f"unknown registered function '{spec.name}'; custom_functions has "
                    f"{', '.join(sorted(self._custom)) or 'none'}",
                    key_path,
                )
            fn, label = self._custom[spec.name], spec.name or ""
        elif spec.module:
            label = f"{spec.module}:{spec.name}"
            fn = self._import(label, key_path)
        else:  # custom without a module: the caller's custom_functions
            if spec.name not in self._custom:
                raise self._error(
                    f"custom function '{spec.name}' is not in custom_functions "
                    f"({', '.join(sorted(self._custom)) or 'none given'}); pass it as "
                    f"custom_functions={{'{spec.name}': ...}}, or give 'module' to import it",
                    key_path,
                )
            fn, label = self._custom[spec.name], spec.name or ""
        if spec.params:
            fn = functools.partial(fn, **spec.params)
        return self._callable(fn, label, key_path)

    def _callable(self, fn: Any, label: str, key_path: str) -> CompiledFunction:
        if not callable(fn):
            raise self._error(f"'{label}' is a {type(fn).__name__}, not a callable", key_path)
        takes_context = self._arity(fn, label, key_path) == 2
        if inspect.iscoroutinefunction(fn):
            fn = _run_sync(fn)
        if _wants_state(fn):
            fn = _with_state_view(fn)
        return CompiledFunction(fn, takes_context, label, key_path)

    def _arity(self, fn: Callable[..., Any], label: str, key_path: str) -> int:
        try:
            parameters = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):  # some builtins have no signature: call with data
            return 1
        positional = [
            p
            for p in parameters
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
            return 2
        required = [p for p in positional if p.default is inspect.Parameter.empty]
        if not positional or len(required) > 2:
            raise self._error(
                f"function '{label}' must accept (data) or (data, context); its signature is "
                f"{inspect.signature(fn)}",
                key_path,
            )
        # an optional second parameter gets the context only if it is named for it, so
        # f(data, memo=None) keeps its default
        if len(required) == 2 or (len(positional) > 1 and positional[1].name in _CONTEXT_NAMES):
            return 2
        return 1

    def _import(self, path: str, key_path: str) -> Any:
        try:
            return _resolve(path)
        except (ImportError, AttributeError) as exc:
            raise self._error(
                f"'{path}' does not import ({type(exc).__name__}: {exc}); check the module is "
                "installed and importable where the FSM runs, and the name is spelled right",
                key_path,
            ) from None

    def _compile_code(self, code: str, key_path: str) -> CompiledFunction:
        text = textwrap.dedent(code).strip()
        label = _label(text)
        filename = f"<inline {key_path}>"
        try:
            tree: ast.AST = ast.parse(text, filename, mode="eval")
        except SyntaxError:
            try:
                tree = ast.parse(text, filename, mode="exec")
            except SyntaxError as exc:
                raise self._error(_syntax_message(exc, text), key_path) from None
        namespace: dict[str, Any] = {**self._scope, "__builtins__": builtins, "__unset__": _UNSET}
        if isinstance(tree, ast.Expression) and isinstance(tree.body, ast.Lambda):
            fn = eval(compile(tree, filename, "eval"), namespace)
            return self._callable(fn, label, key_path)
        if isinstance(tree, ast.Module) and not _statements_yield_a_value(tree):
            return self._defined_function(tree, text, namespace, filename, label, key_path)
        uses_context = any(
            isinstance(node, ast.Name) and node.id in ("context", "ctx") for node in ast.walk(tree)
        )
        params = "data, context" if uses_context else "data"
        alias = "    ctx = context\n" if uses_context else ""
        if isinstance(tree, ast.Expression):
            body = f"    return (\n{text}\n    )\n"
        else:
            body = (
                "    result = __unset__\n"
                + textwrap.indent(text, "    ")
                + "\n    return data if result is __unset__ else result\n"
            )
        source = f"def __inline__({params}):\n{alias}{body}"
        try:
            exec(compile(source, filename, "exec"), namespace)
        except SyntaxError as exc:
            raise self._error(
                f"inline code cannot run as a function: {exc.msg}\n  {text}", key_path
            ) from None
        return CompiledFunction(namespace["__inline__"], uses_context, label, key_path)

    def _defined_function(
        self,
        tree: ast.Module,
        text: str,
        namespace: dict[str, Any],
        filename: str,
        label: str,
        key_path: str,
    ) -> CompiledFunction:
        """Code that only defines a function (plus imports or constants) is that function."""
        defined = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        if len(defined) != 1:
            problem = (
                f"defines {len(defined)} functions ({', '.join(defined)})"
                if defined
                else "neither defines a function nor gives a value (no 'result = ...', no "
                "use of 'data')"
            )
            raise self._error(
                f"inline code {problem}, so it would do nothing; write an expression over "
                "'data', a lambda, statements that change 'data' or set 'result', or define "
                f"exactly one function (nest helpers inside it)\n  {label}",
                key_path,
            )
        try:
            exec(compile(tree, filename, "exec"), namespace)
        except Exception as exc:
            raise self._error(
                f"inline code failed while defining '{defined[0]}': {type(exc).__name__}: {exc}",
                key_path,
            ) from None
        return self._callable(namespace[defined[0]], defined[0], key_path)

    def _error(self, message: str, key_path: str) -> FSMConfigError:
        return FSMConfigError(message, key_path=key_path, source=self._source)


def resolve_function(
    ref: Any,
    *,
    custom_functions: dict[str, Callable[..., Any]] | None = None,
    scope: dict[str, Any] | None = None,
    where: str = "function",
    source: str | None = None,
) -> Callable[..., Any]:
    """One function reference as a plain callable: the project's one resolver, for FSM
    configs (through ``FunctionCompiler``) and pipeline files alike.

    ``ref`` is a callable (returned as is), a ``custom_functions`` name, a dotted import path
    (``pkg.mod:fn`` or ``pkg.mod.fn``), a lambda, or inline code over ``data`` (see the
    module docstring); ``scope`` adds names inline code may use (``pa``, ``pc``, ...).
    Async functions are returned as is (callers that run them synchronously wrap them with
    the sync bridge). Raises ``FSMConfigError`` at ``where`` (the key path) in ``source``.
    """
    if callable(ref):
        return ref
    compiler = FunctionCompiler(custom_functions, source, scope)
    if not isinstance(ref, str):
        raise compiler._error(
            f"expected a function name, an import path or code, got {type(ref).__name__}", where
        )
    text = ref.strip()
    if text in compiler._custom:
        return compiler._custom[text]
    root = re.split(r"[.:]", text, maxsplit=1)[0]
    if text != root and _DOTTED.fullmatch(text) and root not in _CODE_ROOTS | set(compiler._scope):
        return compiler._import(text, where)
    return compiler.compile(text, where).fn


def _statements_yield_a_value(tree: ast.Module) -> bool:
    """Whether top-level statements (outside function and class bodies) use ``data``,
    ``context``/``ctx`` or ``result``: they then run as the function's body."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.Name) and node.id in ("data", "context", "ctx", "result"):
            return True
        if isinstance(node, ast.Return):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


class StateView(dict):  # type: ignore[type-arg]
    """What a one-argument function written for dataknobs-fsm's state object receives:
    the record as a dict whose ``data`` attribute is the same dict, so both ``state.data[k]``
    and ``state[k]`` work. Only functions that ask for it (see ``_wants_state``) get one."""

    __slots__ = ()

    @property
    def data(self) -> StateView:
        """The record (this object)."""
        return self


def _wants_state(fn: Any) -> bool:
    """A function gets a ``StateView`` when its first parameter is named ``state``, or is
    not ``data`` and its code reads an attribute ``data`` (``lambda s: s.data["x"]``).
    Plain ``f(data)`` functions get the dict itself, at no cost."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    code = getattr(inspect.unwrap(target), "__code__", None)
    skip = 1 if inspect.ismethod(target) else 0  # a bound method's first name is self
    if code is None or code.co_argcount <= skip:
        return False
    first = code.co_varnames[skip]
    return first == "state" or (first != "data" and "data" in code.co_names)


def _with_state_view(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``fn`` with a ``StateView`` of the record; changes made through the view are
    written back to the record, and returning the view returns the record."""

    @functools.wraps(fn)
    def call(data: Any, *rest: Any) -> Any:
        if type(data) is not dict:
            return fn(data, *rest)
        view = StateView(data)
        result = fn(view, *rest)
        if view != data:
            data.clear()
            data.update(view)
        if result is view:
            return data
        return result

    return call


def _valid(data: dict[str, Any]) -> bool:
    return data.get("valid", True)


def _invalid(data: dict[str, Any]) -> bool:
    return not data.get("valid", True)


def _resolve(path: str) -> Any:
    module_name, colon, attribute = path.partition(":")
    if colon:
        return _getattr_path(importlib.import_module(module_name), attribute)
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:split])
        try:
            module = importlib.import_module(candidate)
        except ModuleNotFoundError as exc:
            if exc.name and (candidate == exc.name or candidate.startswith(exc.name + ".")):
                continue  # this prefix is not a module; try a shorter one
            raise
        return _getattr_path(module, ".".join(parts[split:]))
    raise ModuleNotFoundError(f"no module named '{parts[0]}'")


def _getattr_path(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def _label(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 60 and "\n" not in text else first[:57] + "..."


def _syntax_message(exc: SyntaxError, text: str) -> str:
    lines = text.splitlines()
    line = lines[exc.lineno - 1] if exc.lineno and exc.lineno <= len(lines) else text
    pointer = " " * max((exc.offset or 1) - 1, 0) + "^"
    return (
        f"inline code has a syntax error at line {exc.lineno}: {exc.msg}\n    {line}\n    "
        f"{pointer}\nfix the code, or register a function of that name in custom_functions"
    )


def _run_sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Call a coroutine function synchronously through the project's one sync bridge."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        return run_sync(fn(*args))

    return call
