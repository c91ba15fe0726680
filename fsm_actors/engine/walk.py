"""The run loop: one record's walk through the compiled graph.

``walk`` is the inner loop of every run, so it is one flat loop: no name lookups, no
recursion (push arcs keep a stack), a ``FunctionContext`` only for states whose functions
take one. Exceptions raised by user functions become the record's error text
(``<ExcType>: <message>``) and never escape.
"""

from __future__ import annotations

from copy import deepcopy
from time import perf_counter
from typing import Any

from fsm_actors.engine.context import ExecutionResult, FunctionContext
from fsm_actors.engine.data_modes import fast_copy
from fsm_actors.engine.graph import Arc, State
from fsm_actors.engine.resources import ResourceBinder


def walk(
    state: State,
    data: Any,
    limit: int,
    binder: ResourceBinder | None,
    run_id: str,
    index: int | None,
    variables: dict[str, Any] | None,
    counts: dict[str, int] | None,
    clock: list[float] | None = None,
    steps: list[tuple[str, Any, str | None]] | None = None,
) -> dict[str, Any]:
    """Walk ``data`` from ``state`` until an end state or a stop (see ``Machine``) and
    return ``{final_state, data, path, success, error}``. The execution id (for resource
    owners) is ``run_id``, or ``<run_id>_<index>`` for record ``index`` of a batch;
    ``counts`` (if given) receives the arc usage counts; ``clock`` (if given) receives
    ``perf_counter()`` as each state is entered (the caller adds the end time); ``steps``
    (if given) receives ``(state, copy of the data, failure or None)`` as each state is
    left (the trace of ``fsm_actors.trace``)."""
    path: list[str] = []
    append = path.append
    error: str | None = None
    transitions = 0
    # per push: (parent data, push arc, owner of the pushing state's held lease, its names,
    # the resources the parent level saw)
    stack: list[tuple[Any, Arc, str | None, list[str], dict[str, Any] | None]] | None = None
    inherited: dict[str, Any] | None = None  # resources held by the states that pushed
    held: str | None = None
    while True:
        append(state.name)
        if clock is not None:
            clock.append(perf_counter())
        failure: str | None = None
        if state.passes:  # nothing to run and an unconditional first arc (or an end state)
            chosen = state.default_arc
        else:
            chosen = owner = ctx = leased = None
            if state.prepares:  # resources, a context, a copy on entry, or validation
                entry = data
                if state.resources:
                    if binder is None:
                        failure = _no_binder(f"state '{state.name}'", state.resources)
                    else:
                        owner = f"state_{state.name}_{_execution_id(run_id, index)}"
                        leased, failure = _lease(
                            f"state '{state.name}'", state.resources, binder, owner
                        )
                if failure is None:
                    if state.needs_context:
                        if variables is None:
                            variables = {}
                        ctx = FunctionContext(
                            state.name,
                            "",
                            {"state": state.name},
                            leased or {} if inherited is None else {**inherited, **(leased or {})},
                            variables,
                            state.network,
                        )
                        if error is not None:
                            ctx.metadata["error"] = error
                    if state.copy_on_entry:
                        data = fast_copy(data)
                    if state.validates:
                        failure = _validate(state, data, ctx)
            if failure is None:
                for function in state.transforms:
                    try:
                        if function.takes_context:
                            ctx.function_name = function.name  # type: ignore[union-attr]
                            result = function.fn(data, ctx)
                        else:
                            result = function.fn(data)
                    except Exception as exc:
                        failure = f"{type(exc).__name__}: {exc}"
                    else:
                        if type(result) is dict:
                            data = result
                            continue
                        data, failure = _outcome(result, data)
                        if failure is None:
                            continue
                    failure = (
                        f"Transform '{function.name}' failed in state '{state.name}': {failure}"
                    )
                    break
            if failure is not None:
                if state.copy_on_entry:
                    data = entry
            elif not state.is_end:
                for arc in state.arcs:
                    condition = arc.condition
                    if condition is not None:
                        try:
                            if condition.takes_context:
                                ctx.function_name = condition.name  # type: ignore[union-attr]
                                holds = condition.fn(data, ctx)
                            else:
                                holds = condition.fn(data)
                        except Exception as exc:
                            failure = (
                                f"Condition '{condition.name}' of arc '{arc.label}' failed in "
                                f"state '{state.name}': {type(exc).__name__}: {exc}"
                            )
                            break
                        if not holds:
                            continue
                    if arc.transforms:
                        data, failure = _cross(
                            arc, state, data, ctx, binder, _execution_id(run_id, index)
                        )
                    if failure is None:
                        chosen = arc
                    break
                else:
                    failure = f"No valid transitions from state: {state.name}"
            if owner is not None:
                if failure is None and chosen is not None and chosen.push is not None:
                    held = owner  # the sub-network inherits it: released when it returns
                else:
                    failure = _release(binder, owner, state.resources, failure)  # type: ignore[arg-type]
        if steps is not None:
            steps.append((state.name, _snapshot(data), failure))
        if failure is not None:
            error = failure if error is None else f"{error}; then: {failure}"
            chosen = state.failure_arc
            if chosen is None:
                return _result(state, data, path, False, _unwind(stack, binder, error))
        elif chosen is None:
            if not stack:
                return _result(state, data, path, error is None, error)
            parent, push_arc, held, held_names, inherited = stack.pop()
            if held is not None:
                failure = _release(binder, held, held_names, None)  # type: ignore[arg-type]
                held = None
                if failure is not None:
                    error = _join(error, failure)
                    return _result(state, data, path, False, _unwind(stack, binder, error))
            data = push_arc.push.leave(parent, data)  # type: ignore[union-attr]
            state = push_arc.next_state  # type: ignore[assignment]
            continue
        transitions += 1
        if transitions > limit:
            error = _join(error, f"Maximum transitions ({limit}) exceeded")
            if held is not None:
                stack = [*(stack or []), (None, chosen, held, state.resources, None)]
            return _result(state, data, path, False, _unwind(stack, binder, error))
        if counts is not None:
            counts[chosen.usage_key] = counts.get(chosen.usage_key, 0) + 1
        if chosen.push is not None:
            if stack is None:
                stack = []
            stack.append((data, chosen, held, state.resources, inherited))
            if held is not None:  # its lease is held: states below see it too
                inherited = {**(inherited or {}), **leased}  # type: ignore[dict-item]
            held = None
            data = chosen.push.enter(data)
            state = chosen.push.start
        else:
            state = chosen.next_state  # type: ignore[assignment]


def _result(
    state: State, data: Any, path: list[str], success: bool, error: str | None
) -> dict[str, Any]:
    return {
        "final_state": state.name,
        "data": data,
        "path": path,
        "success": success,
        "error": error,
    }


def _snapshot(data: Any) -> Any:
    """A copy of ``data`` for a trace (its ``repr`` if it does not copy)."""
    try:
        return fast_copy(data) if type(data) is dict else deepcopy(data)
    except Exception:
        return repr(data)


def _execution_id(run_id: str, index: int | None) -> str:
    return run_id if index is None else f"{run_id}_{index}"


def _join(first: str | None, then: str) -> str:
    return then if first is None else f"{first}; then: {then}"


def _call(function: Any, data: Any, ctx: FunctionContext | None) -> Any:
    """Call a compiled function, with the context when it takes one (the hot loop of
    ``walk`` inlines this for states' transforms and arcs' conditions)."""
    if function.takes_context:
        ctx.function_name = function.name  # type: ignore[union-attr]
        return function.fn(data, ctx)
    return function.fn(data)


def _validate(state: State, data: Any, ctx: FunctionContext | None) -> str | None:
    """Pre-validators, validators, then the schema: the first rejection, or ``None``."""
    for role, functions in (
        ("Pre-validator", state.pre_validators),
        ("Validator", state.validators),
    ):
        for function in functions:
            try:
                reason = _rejection(_call(function, data, ctx))
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if reason is not None:
                return f"{role} '{function.name}' failed in state '{state.name}': {reason}"
    if state.schema is not None:
        problems = state.schema(data)
        if problems:
            return f"Schema validation failed in state '{state.name}': {'; '.join(problems)}"
    return None


def _cross(
    arc: Arc,
    state: State,
    data: Any,
    ctx: FunctionContext | None,
    binder: ResourceBinder | None,
    execution_id: str,
) -> tuple[Any, str | None]:
    """Run the arc's transforms, leasing the arc's own resources around them."""
    owner = None
    if arc.resources:
        if binder is None:
            return data, _no_binder(f"arc '{arc.label}'", arc.resources)
        owner = f"arc_{arc.source}_{arc.config.target}_{execution_id}"
        leased, failure = _lease(f"arc '{arc.label}'", arc.resources, binder, owner)
        if failure is not None:
            return data, _release(binder, owner, arc.resources, failure)
        if ctx is not None:
            roles = {role: leased[name] for role, name in arc.roles.items()}  # type: ignore[index]
            ctx = FunctionContext(
                ctx.state_name,
                "",
                ctx.metadata,
                {**ctx.resources, **roles},
                ctx.variables,
                ctx.network_name,
            )
    failure = None
    for function in arc.transforms:
        try:
            data, failure = _outcome(_call(function, data, ctx), data)
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            failure = (
                f"Transform '{function.name}' of arc '{arc.label}' failed in state "
                f"'{state.name}': {failure}"
            )
            break
    if owner is not None:
        failure = _release(binder, owner, arc.resources, failure)  # type: ignore[arg-type]
    return data, failure


def _unwind(stack: list[Any] | None, binder: ResourceBinder | None, error: str) -> str:
    """Release the leases that pushing states still hold when a record stops inside a
    sub-network; a failed release is added to ``error``."""
    while stack:
        _, _, owner, names, _ = stack.pop()
        if owner is not None and binder is not None:
            error = _release(binder, owner, names, error) or error
    return error


def _no_binder(where: str, names: list[str]) -> str:
    return (
        f"The {where} needs resources {names} but no resource binder was given; pass "
        "resources= (a ResourceBinder) to run()/run_batch(), or remove the declaration"
    )


def _lease(
    where: str, names: list[str], binder: ResourceBinder, owner: str
) -> tuple[dict[str, Any] | None, str | None]:
    """``(leased resources, None)`` or ``(None, reason)``; the caller releases either way."""
    try:
        return binder.acquire(list(names), owner), None
    except Exception as exc:
        return None, f"Could not acquire resources {names} for {where}: {type(exc).__name__}: {exc}"


def _release(
    binder: ResourceBinder, owner: str, names: list[str], failure: str | None
) -> str | None:
    """``release`` after success, ``release_all`` after a failure; a failed release is
    added to the record's error."""
    try:
        if failure is None:
            binder.release(list(names), owner)
        else:
            binder.release_all(owner)
    except Exception as exc:
        return _join(failure, f"releasing {names} for {owner} failed: {type(exc).__name__}: {exc}")
    return failure


def _rejection(result: Any) -> str | None:
    """Why a validator's result rejects the record, or ``None`` if it passes."""
    if result is None or result is True or type(result) is dict:
        return None
    if isinstance(result, ExecutionResult):
        return None if result.success else result.error or "it returned a failed ExecutionResult"
    return None if result else f"it returned {result!r}"


def _outcome(result: Any, data: Any) -> tuple[Any, str | None]:
    """A transform's result: ``(new data, None)`` or ``(data, reason)``."""
    if result is None:
        return data, None
    if isinstance(result, dict):
        return result, None
    if isinstance(result, ExecutionResult):
        if not result.success:
            return data, result.error or "it returned a failed ExecutionResult"
        return (data if result.data is None else result.data), None
    return data, (
        f"it returned a {type(result).__name__}; a transform returns the record (a dict), "
        "None to keep it, or an ExecutionResult"
    )
