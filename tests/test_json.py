"""The result writer gives json.dumps(indent=2, allow_nan=True)'s text for whatever a result holds."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streammetric import _json
from streammetric._json import dumps_indented, dumps_parts

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_text_is_json_dumps_indent_2(value):
    assert dumps_indented(value) == json.dumps(value, indent=2, allow_nan=True)


def test_numpy_scalars_are_written_as_the_standard_encoder_refuses_them():
    import numpy as np
    import pytest

    with pytest.raises(TypeError):
        json.dumps({"a": np.float32(1.5)}, indent=2)
    with pytest.raises(TypeError):
        dumps_indented({"a": np.float32(1.5)})


leaf_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
)


@st.composite
def uniform_lists(draw):
    """Lists long enough for the column-by-column path: items of one shape (nested dicts with
    scalar leaves), sometimes with one item changed (a key, the key order, a leaf made a list
    or a dict) so that the path must notice it and fall back."""
    shape = draw(
        st.recursive(
            st.just(None),
            lambda inner: st.dictionaries(st.text(max_size=3), inner, min_size=1, max_size=3),
            max_leaves=6,
        ).filter(lambda s: isinstance(s, dict))
    )
    kind = draw(st.sampled_from(["float", "int", "str", "mixed"]))
    leaf = {
        "float": st.floats(allow_nan=True, allow_infinity=True),
        "int": st.integers(),
        "str": st.text(max_size=5),
        "mixed": leaf_scalars,
    }[kind]

    def fill(node):
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        return draw(leaf)

    items = [fill(shape) for _ in range(draw(st.integers(64, 90)))]
    change = draw(st.sampled_from(["none", "key", "order", "list", "dict"]))
    victim = items[draw(st.integers(0, len(items) - 1))]
    first = next(iter(victim))
    if change == "key":
        victim["%new"] = victim.pop(first)
    elif change == "order" and len(victim) > 1:
        victim[first] = victim.pop(first)
    elif change == "list":
        victim[first] = [1.5, "x"]
    elif change == "dict":
        victim[first] = {"a": 1}
    return items


@settings(max_examples=200, deadline=None)
@given(uniform_lists())
def test_long_lists_of_one_shape_give_the_same_text(items):
    value = {"rows": 1, "groups": items}
    assert dumps_indented(value) == json.dumps(value, indent=2, allow_nan=True)


def test_a_result_s_groups_take_the_column_path():
    from streammetric import _json

    groups = [
        {"key": {"model": f"m{i}", "day": i}, "rows": i, "metrics": {"ce": i / 7, "acc": None}}
        for i in range(100)
    ]
    groups[3]["metrics"]["ce"] = float("nan")
    text = _json._uniform(groups, "\n  ")
    assert text is not None
    assert text == json.dumps(groups, indent=2, allow_nan=True).replace("\n", "\n  ")
    groups[5]["metrics"] = {"acc": None, "ce": 0.5}  # another key order: not one shape
    assert _json._uniform(groups, "\n  ") is None


@settings(max_examples=150, deadline=None)
@given(uniform_lists())
def test_a_table_writes_the_dicts_it_stands_for(items):
    """A `Table` (the groups by column) writes the text of its records, whatever they hold
    (numbers, strings, or leaves the column path cannot write: lists, dicts)."""
    from streammetric._json import Table, _shape

    columns: list[list] = []
    shape = _shape(items[:1], columns)
    assert shape is not None
    leaves = []

    def walk(item, node):
        for key, sub in node.items():
            if isinstance(sub, dict):
                assume(isinstance(item.get(key), dict))
                walk(item[key], sub)
            else:
                assume(key in item)
                leaves.append((sub, item[key]))

    columns = [[] for _ in columns]
    for item in items:
        leaves.clear()
        walk(item, shape)
        for index, value in leaves:
            columns[index].append(value)
    table = Table(shape, columns)
    value = {"rows": 1, "groups": table}
    expected = {"rows": 1, "groups": table.records()}
    assert dumps_indented(value) == json.dumps(expected, indent=2, allow_nan=True)
    assert len(table) == len(items)


#: A list of numbers as ``json.dumps(indent=2)`` writes it: one number a line (the reference
#: of ``number_lists="inline"``).
_NUMBER_LIST = re.compile(r"\[\n[-+0-9.eEaNIinfty,\s]*\n\s*\]")


def _one_line(match: re.Match[str]) -> str:
    return "[" + ", ".join(item.strip() for item in match.group(0)[1:-1].split(",")) + "]"


@settings(max_examples=300, deadline=None)
@given(values)
def test_number_lists_go_on_one_line_as_a_regex_over_the_indented_text_puts_them(value):
    """``render``'s json puts each list of numbers on one line: the text of the indented
    JSON with each such list joined."""
    value = {"v": value, "m": [[1, 2.5], [float("nan"), -3]], "t": [math.inf, True]}
    text = dumps_indented(value)
    inline = "".join(dumps_parts(value, number_lists="inline"))
    assert inline == _NUMBER_LIST.sub(_one_line, text)
    with pytest.MonkeyPatch.context() as patch:  # Python's json without its C encoder
        patch.setattr(_json, "_encode", None)
        assert "".join(dumps_parts(value, number_lists="inline")) == inline
