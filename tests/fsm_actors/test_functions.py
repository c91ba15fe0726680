"""The public ``fsm_actors.functions`` module, the errors, and compiling function references."""

from __future__ import annotations

import pickle

import pytest

import fsm_actors.functions
import resource_actors.errors
from fsm_actors import functions
from fsm_actors.config import FunctionSpec
from fsm_actors.engine.functions import FunctionCompiler
from fsm_actors.platform import errors
from fsm_actors.platform.errors import FSMConfigError


def add_one(data):
    return {**data, "n": data["n"] + 1}


def tag_state(data, context):
    return {**data, "state": context.state_name, "fn": context.function_name}


def scaled(data, *, factor):
    return {**data, "n": data["n"] * factor}


async def async_double(data):
    return {**data, "n": data["n"] * 2}


CONTEXT = functions.FunctionContext(state_name="s", function_name="f")


def compiled(ref, custom=None, **kwargs):
    return FunctionCompiler(custom, "fsm.yaml").compile(ref, "states[0].transform", **kwargs)


def call(function, data):
    if function.takes_context:
        return function.fn(data, CONTEXT)
    return function.fn(data)


def config_error(ref, custom=None, **kwargs) -> FSMConfigError:
    with pytest.raises(FSMConfigError) as info:
        compiled(ref, custom, **kwargs)
    assert info.value.key_path == "states[0].transform"
    assert str(info.value).startswith("fsm.yaml: states[0].transform: ")
    return info.value


# --- the public module ------------------------------------------------------------


def test_reexports_the_shared_resource_names():
    assert functions.ResourceError is resource_actors.errors.ResourceError
    assert functions.ResourceConfig is fsm_actors.functions.ResourceConfig
    assert functions.FunctionError is functions.StateTransitionError
    assert functions.FSMError is errors.FSMError


def test_function_type_values():
    assert [t.value for t in functions.FunctionType] == [
        "validation",
        "transform",
        "state_test",
        "end_state_test",
    ]


def test_function_context_defaults_and_require_resource():
    ctx = functions.FunctionContext("load", "write", resources={"db": "conn"})
    assert (ctx.metadata, ctx.variables, ctx.network_name) == ({}, {}, None)
    assert ctx.require_resource("db") == "conn"
    with pytest.raises(functions.TransformError) as info:
        ctx.require_resource("cache")
    assert "needs resource 'cache'" in str(info.value) and "['db']" in str(info.value)
    assert info.value.state_name == "load" and info.value.function_name == "write"


def test_execution_result_constructors_and_to_dict():
    ok = functions.ExecutionResult.success_result({"a": 1}, {"m": 2})
    assert (ok.success, ok.data, ok.error) == (True, {"a": 1}, None)
    failed = functions.ExecutionResult.failure_result("bad")
    assert failed.to_dict() == {"success": False, "data": None, "error": "bad", "metadata": {}}
    assert ok.to_dict()["metadata"] == {"m": 2}


@pytest.mark.parametrize(
    "error",
    [
        errors.FSMError("m", state_name="s", arc="a->b", function_name="f"),
        errors.FSMConfigError("m", source="x.yaml", key_path="states[1]"),
        errors.ValidationError("m", ["x missing"], state_name="s"),
        errors.TransformError("m", function_name="f"),
        errors.StateTransitionError("m", "a", "b", arc="a->b"),
    ],
)
def test_errors_pickle_with_their_attributes(error):
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert vars(restored) == vars(error)


def test_error_attributes():
    error = errors.StateTransitionError("no way", from_state="a")
    assert (error.from_state, error.to_state, error.message) == ("a", None, "no way")
    assert errors.ValidationError("v").validation_errors == []
    located = errors.FSMConfigError("bad", source="f.yaml", key_path="arcs[0].to")
    assert str(located) == "f.yaml: arcs[0].to: bad"
    assert located.message == "bad"
    assert isinstance(located, errors.FSMError)


# --- compiling references ----------------------------------------------------------


def test_registered_name_and_arity_decided_at_compile_time():
    one = compiled("add_one", {"add_one": add_one})
    two = compiled("tag", {"tag": tag_state})
    assert (one.takes_context, two.takes_context) == (False, True)
    assert call(one, {"n": 1}) == {"n": 2}
    assert call(two, {}) == {"state": "s", "fn": "f"}
    assert one.name == "add_one" and one.key_path == "states[0].transform"


@pytest.mark.parametrize(
    ("fn", "takes_context"),
    [
        (lambda data: data, False),
        (lambda data, context=None: data, True),
        (lambda d, c: d, True),
        (lambda data, memo=None: data, False),
        (lambda *args: args[0], True),
    ],
)
def test_context_is_passed_by_signature(fn, takes_context):
    assert compiled("f", {"f": fn}).takes_context is takes_context


def test_registered_mapping_with_params():
    spec = FunctionSpec(type="registered", name="scaled", params={"factor": 3})
    assert call(compiled(spec, {"scaled": scaled}), {"n": 2}) == {"n": 6}


@pytest.mark.parametrize(
    "ref",
    [
        "tests.fsm_actors.test_functions:add_one",
        "tests.fsm_actors.test_functions.add_one",
        FunctionSpec(type="custom", module="tests.fsm_actors.test_functions", name="add_one"),
        FunctionSpec(module="tests.fsm_actors.test_functions", name="add_one"),
    ],
)
def test_import_paths(ref):
    assert call(compiled(ref), {"n": 1}) == {"n": 2}


def test_stdlib_import_path_as_a_condition():
    truth = compiled("operator.truth", condition=True)
    assert truth.fn({}) is False and truth.fn({"a": 1}) is True


def test_inline_expression_sees_data_and_context():
    assert call(compiled("data['x'] > 3"), {"x": 4}) is True
    assert compiled("data['x'] > 3").takes_context is False
    uses_ctx = compiled("{**data, 'at': ctx.state_name, 'fn': context.function_name}")
    assert uses_ctx.takes_context
    assert call(uses_ctx, {"x": 1}) == {"x": 1, "at": "s", "fn": "f"}


def test_multiline_expression():
    assert call(compiled("(data['a'] +\n data['b'])"), {"a": 1, "b": 2}) == 3


def test_inline_lambda_string_and_mapping():
    lam = compiled("lambda data, ctx: {**data, 's': ctx.state_name}")
    assert lam.takes_context and call(lam, {}) == {"s": "s"}
    spec = FunctionSpec(type="inline", code="lambda d: {**d, 'y': 2}")
    assert call(compiled(spec), {}) == {"y": 2}


def test_statement_code_returns_result_or_the_mutated_data():
    assign = compiled("total = data['a'] + data['b']\nresult = {'total': total}")
    assert call(assign, {"a": 1, "b": 2}) == {"total": 3}
    mutate = compiled("data['seen'] = True\nif data['seen']:\n    data['twice'] = 2")
    assert call(mutate, {}) == {"seen": True, "twice": 2}
    with_import = compiled("import math\ndata['r'] = math.sqrt(data['x'])")
    assert call(with_import, {"x": 9}) == {"x": 9, "r": 3.0}


def test_success_and_failure_conditions():
    success = compiled("success", condition=True)
    failure = compiled("failure", condition=True)
    assert success.fn({}) is True and failure.fn({}) is False
    assert success.fn({"valid": False}) is False and failure.fn({"valid": False}) is True


def test_registered_name_wins_over_the_condition_keywords():
    assert compiled("success", {"success": lambda d: "mine"}, condition=True).fn({}) == "mine"


def test_async_functions_run_to_completion():
    fn = compiled("double", {"double": async_double})
    assert fn.takes_context is False
    assert call(fn, {"n": 2}) == {"n": 4}
    assert call(fn, {"n": 3}) == {"n": 6}


def test_syntax_error_shows_the_line_and_the_code():
    error = config_error("total = data['x']\nresult = = total")
    assert "syntax error at line 2" in str(error)
    assert "    result = = total\n" in str(error)
    assert "syntax error at line 1" in str(config_error("data['x'] >"))


def test_unknown_function_name_lists_the_registered_ones():
    error = config_error("dubble", {"double": add_one, "add": add_one})
    assert "unknown function 'dubble'" in str(error) and "(add, double)" in str(error)
    error = config_error(FunctionSpec(type="registered", name="nope"))
    assert "unknown registered function 'nope'" in str(error) and "none" in str(error)


def test_import_path_that_does_not_import():
    error = config_error("no_such_pkg.mod:fn")
    assert "'no_such_pkg.mod:fn' does not import" in str(error)
    assert "ModuleNotFoundError" in str(error)
    assert "AttributeError" in str(config_error("os.path.no_such_function"))
    assert "does not import" in str(
        config_error(FunctionSpec(type="custom", module="json", name="nope"))
    )


def test_non_callables_and_bad_signatures():
    assert "not a callable" in str(config_error("os.sep"))
    assert "must accept (data)" in str(config_error("f", {"f": lambda: None}))
    assert "must accept (data)" in str(config_error("f", {"f": lambda a, b, c: None}))


def test_empty_reference_and_params_on_inline_code():
    assert "empty function reference" in str(config_error("  "))
    with pytest.raises(ValueError, match="params apply to registered and custom functions"):
        FunctionSpec(type="inline", code="data", params={"a": 1})


def test_one_resolver_serves_configs_and_pipeline_files():
    import pyarrow.compute as pc

    from fsm_actors.engine.functions import resolve_function
    from patterns._pipeline.values import function as _function

    assert resolve_function("json:dumps")({"a": 1}) == '{"a": 1}'
    assert resolve_function("os.path.join")("a", "b") == "a/b"
    assert resolve_function("lambda r: r['x'] + 1")({"x": 1}) == 2
    assert resolve_function("data['x'] * 2")({"x": 3}) == 6
    assert resolve_function("f", custom_functions={"f": len})([1, 2]) == 2
    expr = resolve_function("lambda t: pc.field('x') > 1", scope={"pc": pc})(None)
    assert isinstance(expr, pc.Expression)
    with pytest.raises(FSMConfigError) as info:
        resolve_function("nosuch.mod:fn", where="transformations[0]", source="p.yaml")
    assert str(info.value).startswith("p.yaml: transformations[0]: 'nosuch.mod:fn' does not import")
    # pipeline files resolve through it: inline code over `data` works there too
    assert _function("data['x'] + 1", "job.yaml: transformations[0]")({"x": 1}) == 2
