import ast

import pytest

from safurai_csharp.benchmark.translate import Context, TranslationError, to_camel_case


def _ann(src: str) -> ast.expr:
    return ast.parse(src, mode="eval").body


def _val(ctx: Context, src: str) -> str:
    return ctx.expr(_ann(src))[0]


@pytest.mark.parametrize(
    ("py", "cs"),
    [
        ("int", "long"),
        ("float", "float"),
        ("str", "string"),
        ("bool", "bool"),
        ("List[int]", "List<long>"),
        ("List[List[str]]", "List<List<string>>"),
        ("Dict[str, int]", "Dictionary<string,long>"),
        ("Tuple[int, float]", "Tuple<long, float>"),
        ("Tuple[str, ...]", "List<string>"),
        ("Optional[int]", "Nullable<long>"),
        ("Optional[str]", "string"),
        ("List[Any]", "List<object>"),
    ],
)
def test_type_translation(py, cs):
    assert Context().cs_type(_ann(py)) == cs


def test_union_is_rejected():
    with pytest.raises(TranslationError):
        Context().cs_type(_ann("Union[int, str]"))


def test_values():
    ctx = Context()
    assert _val(ctx, "-3") == "-3L"
    assert _val(ctx, "2.5") == "2.5f"
    assert _val(ctx, "True") == "true"
    assert _val(ctx, "None") == "null"
    assert _val(ctx, "'a\\nb'") == '"a\\nb"'
    assert _val(ctx, "[]") == "new List<long>()"
    assert _val(ctx, "[[1], [2, -3]]") == (
        "new List<List<long>>(new List<long>[]{(List<long>)new List<long>(new long[]{(long)1L}), "
        "(List<long>)new List<long>(new long[]{(long)2L, (long)-3L})})"
    )
    assert _val(ctx, "[1.5, 2]") == "new List<float>(new float[]{(float)1.5f, (float)2L})"
    assert _val(ctx, "{'a': 1}") == 'new Dictionary<string,long>(){{"a", 1L}}'
    assert _val(ctx, "(None, 1)") == "Tuple.Create((Nullable<long>)null, 1L)"
    assert _val(ctx, "('x', 2)") == 'Tuple.Create("x", 2L)'


def test_call_coerces_arguments_and_result():
    ctx = Context()
    ctx.setup("sum_it", ast.parse("def f(xs: List[str], y: float): pass").body[0].args.args, _ann("List[str]"))
    call = ctx.expr(_ann("candidate([], 3)"))[0]
    assert call == "SumIt((new List<string>()), (float)3L)"
    assert ctx.finalize_rhs(ctx.expr(_ann("[]"))) == "(new List<string>())"
    assert ctx.assertion(call, "x") == f"    Debug.Assert({call}.Equals(x));"


def test_camel_case_matches_upstream_quirk():
    assert to_camel_case("minSubArraySum") == "Minsubarraysum"
    assert to_camel_case("has_close_elements") == "HasCloseElements"
