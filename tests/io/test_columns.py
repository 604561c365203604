"""Column resolution and Arrow → NumPy conversion."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.io import ColumnSpec, group_codes, resolve
from streammetric.io.columns import list_values, scalar_values, stacked_values
from tests.io.fixtures import list_array, probabilities


def schema_of(**types: pa.DataType) -> pa.Schema:
    return pa.schema(list(types.items()))


FLOATS = pa.list_(pa.float32())


@pytest.mark.parametrize(
    ("names", "label", "pred"),
    [
        (["label", "probs"], "label", "probs"),
        (["target", "y", "scores", "output"], "y", "output"),
        (["y_true", "y_pred", "labels"], "labels", "y_pred"),
        (["preds", "pred", "target"], "target", "preds"),
    ],
)
def test_default_columns_take_the_first_existing_name(names, label, pred):
    label_names = ("label", "labels", "y", "y_true", "target")
    fields = [(name, pa.int64() if name in label_names else FLOATS) for name in names]
    resolved = resolve(pa.schema(fields), ColumnSpec())
    assert (resolved.labels, resolved.preds) == (label, (pred,))
    assert resolved.from_logits is False and resolved.notes == ()


def test_logits_column_implies_from_logits_with_a_note():
    resolved = resolve(schema_of(label=pa.int64(), logits=FLOATS), ColumnSpec())
    assert resolved.from_logits is True
    assert resolved.notes == ("column `logits` implies --from-logits",)
    explicit = resolve(schema_of(label=pa.int64(), logits=FLOATS), ColumnSpec(from_logits=False))
    assert explicit.from_logits is False and explicit.notes == ()


@pytest.mark.parametrize(
    ("label_type", "kind"),
    [
        (pa.int32(), "sparse"),
        (pa.uint8(), "sparse"),
        (pa.float64(), "binary"),
        (pa.bool_(), "binary"),
        (pa.list_(pa.float64()), "dense"),
        (pa.dictionary(pa.int8(), pa.int64()), "sparse"),
    ],
)
def test_label_kind_follows_the_arrow_type(label_type, kind):
    assert resolve(schema_of(label=label_type, probs=FLOATS), ColumnSpec()).label_kind == kind


def test_pred_kinds_and_widths():
    schema = schema_of(
        label=pa.int64(),
        p_1=pa.float32(),
        x=pa.int8(),
        p_0=pa.float32(),
        fixed=pa.list_(pa.float64(), 5),
    )
    globbed = resolve(schema, ColumnSpec(preds="p_*"))  # by the number, not the stored order
    assert (globbed.preds, globbed.pred_kind, globbed.pred_width) == (("p_0", "p_1"), "columns", 2)
    named = resolve(schema, ColumnSpec(preds=["p_1", "x"]))
    assert (named.preds, named.pred_kind, named.pred_width) == (("p_1", "x"), "columns", 2)
    assert resolve(schema, ColumnSpec(preds="p_1")).pred_kind == "scalar"
    fixed = resolve(schema, ColumnSpec(preds=["fixed"]))
    assert (fixed.pred_kind, fixed.pred_width) == ("list", 5)
    assert fixed.columns == ("label", "fixed")


def test_unknown_columns_name_file_column_and_available():
    schema = schema_of(label=pa.int64(), probs=FLOATS)
    with pytest.raises(
        ConfigError, match=r"a\.parquet: label column `lbl` not found .*label, probs"
    ):
        resolve(schema, ColumnSpec(labels="lbl"), "a.parquet")
    with pytest.raises(ConfigError, match=r"a\.parquet: prediction glob `q_\*` matches no column"):
        resolve(schema, ColumnSpec(preds="q_*"), "a.parquet")
    with pytest.raises(ConfigError, match=r"weight column `wt` not found"):
        resolve(schema, ColumnSpec(weights="wt"), "a.parquet")
    with pytest.raises(ConfigError, match=r"group-by column `split` not found"):
        resolve(schema, ColumnSpec(by=("split",)), "a.parquet")
    with pytest.raises(ConfigError, match=r"no prediction column: none of probs, preds"):
        resolve(schema_of(label=pa.int64(), z=FLOATS), ColumnSpec(), "a.parquet")


def test_unsupported_types_name_file_column_and_type():
    with pytest.raises(InvalidInputError, match=r"a\.parquet: column `label`: type string is not"):
        resolve(schema_of(label=pa.string(), probs=FLOATS), ColumnSpec(), "a.parquet")
    with pytest.raises(InvalidInputError, match=r"column `probs`: type string is not numeric"):
        resolve(schema_of(label=pa.int64(), probs=pa.string()), ColumnSpec(), "a.parquet")
    with pytest.raises(InvalidInputError, match=r"column `probs`: type list<item: string>"):
        resolve(schema_of(label=pa.int64(), probs=pa.list_(pa.string())), ColumnSpec())
    with pytest.raises(InvalidInputError, match=r"column `fixed`: type fixed_size_list"):
        resolve(
            schema_of(label=pa.int64(), fixed=pa.list_(pa.float64(), 2)), ColumnSpec(preds="f*")
        )
    with pytest.raises(InvalidInputError, match=r"column `w`: type string is not numeric"):
        resolve(schema_of(label=pa.int64(), probs=FLOATS, w=pa.string()), ColumnSpec(weights="w"))


@pytest.mark.parametrize("kind", ["list", "large_list", "fixed_size_list"])
def test_uniform_lists_convert_zero_copy(kind):
    matrix = probabilities(50, 3)
    array = list_array(matrix, kind).slice(7, 30)
    converted = list_values(array, name="probs", role="predictions", width=None)
    assert converted.invalid is None and converted.values.dtype == np.float32
    np.testing.assert_array_equal(converted.values, matrix[7:37])
    assert np.shares_memory(converted.values, array.values.to_numpy())


@pytest.mark.parametrize(
    ("value_type", "dtype"),
    [(pa.float16(), np.float32), (pa.float64(), np.float64), (pa.int32(), np.float64)],
)
def test_list_value_dtypes(value_type, dtype):
    array = pa.array([[1, 2], [3, 4]], pa.list_(value_type))
    assert list_values(array, name="p", role="predictions", width=2).values.dtype == dtype


def test_ragged_and_null_rows_are_masked_not_raised():
    array = pa.array([[1.0, 2.0], [3.0], None, [4.0, None], [5.0, 6.0], [7.0, 8.0, 9.0]])
    converted = list_values(array, name="probs", role="predictions", width=None)
    assert converted.invalid.tolist() == [False, True, True, True, False, True]
    assert converted.first_invalid == (1, "probs", "list has 1 values, expected 2 (ragged lists)")
    np.testing.assert_array_equal(converted.values[[0, 4]], [[1.0, 2.0], [5.0, 6.0]])
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([1.0, None, 3.0, 4.0]), 2)
    masked = list_values(fixed, name="probs", role="predictions", width=None)
    assert masked.invalid.tolist() == [True, False]
    assert (
        masked.first_invalid[2]
        == "list contains a null value (nulls are not allowed in predictions)"
    )


def test_scalar_values_keep_float32_and_mask_nulls():
    float32 = pa.array(np.arange(4, dtype=np.float32))
    converted = scalar_values(float32, name="p", role="predictions")
    assert converted.values.dtype == np.float32
    assert np.shares_memory(converted.values, float32.to_numpy())
    nulls = scalar_values(pa.array([1, None, 3]), name="label", role="labels", dtype="int64")
    assert nulls.invalid.tolist() == [False, True, False]
    assert nulls.first_invalid == (1, "label", "null value (nulls are not allowed in labels)")


def test_stacked_columns_form_a_matrix_in_the_given_order():
    arrays = {"b": pa.array([1.0, 2.0], pa.float32()), "a": pa.array([3.0, None], pa.float16())}
    converted = stacked_values(arrays, role="predictions")
    assert converted.values.dtype == np.float32 and converted.values[0].tolist() == [1.0, 3.0]
    assert converted.first_invalid == (1, "a", "null value (nulls are not allowed in predictions)")
    mixed = stacked_values({"a": pa.array([1.0]), "b": pa.array([2], pa.int8())}, role="p")
    assert mixed.values.dtype == np.float64


def test_group_codes_combine_columns_and_keep_nulls():
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 2, None, 0], pa.int32()), pa.array(["x", "y", "x"])
    )
    codes, keys = group_codes({"s": dictionary, "k": pa.array([1, 1, 1, 1, 2])})
    rows = [keys[code] for code in codes]
    assert rows == [("x", 1), ("y", 1), ("x", 1), (None, 1), ("x", 2)]
    assert len(keys) == 4 and codes.dtype == np.int64
    assert group_codes({})[1] == []


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.none(),
            st.lists(st.one_of(st.none(), st.floats(0, 1, width=32)), min_size=2, max_size=4),
        ),
        max_size=12,
    ),
    start=st.integers(0, 3),
)
def test_list_values_mask_matches_a_row_by_row_reference(rows, start):
    array = pa.array([[0.5, 0.5, 0.5]] * start + rows, pa.list_(pa.float32())).slice(start)
    converted = list_values(array, name="p", role="predictions", width=3)
    expected = [row is None or len(row) != 3 or None in row for row in rows]
    assert (converted.invalid is None and not any(expected)) or (
        converted.invalid.tolist() == expected
    )
    valid = [row for row, bad in zip(rows, expected, strict=True) if not bad]
    kept = converted.values if converted.invalid is None else converted.values[~converted.invalid]
    np.testing.assert_array_equal(kept, np.array(valid, dtype=np.float32).reshape(-1, 3))
