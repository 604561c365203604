"""InvalidInputError's fields: argument, row, rule and value at every metric family's raise
sites, the same naming of the arguments everywhere, and errors located in files by fields."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import streammetric as sm
from streammetric.cli import main
from streammetric.engine.partial import locate_error
from streammetric.functional import binary_cross_entropy, cross_entropy
from streammetric.io import ResolvedColumns, Unit

P3 = np.full((3, 3), 1 / 3)


def _error(call) -> sm.InvalidInputError:
    with pytest.raises(sm.InvalidInputError) as info:
        call()
    error = info.value
    assert "\n" not in str(error)
    return error


def _fields(error: sm.InvalidInputError) -> tuple:
    return error.argument, error.row, error.rule, error.value


# --- the fields at the raise sites -------------------------------------------------------------

ROW_ERRORS = [
    pytest.param(
        lambda: sm.CrossEntropy().update([0, 1, 5], P3),
        ("labels", 2, "must be a class index in [0, 3)", 5),
        id="cross-entropy exact, label",
    ),
    pytest.param(
        lambda: sm.CrossEntropy().update([0, 1], [[0.5, 0.5], [-0.5, 1.5]]),
        ("preds", 1, "must hold probabilities in [0, 1] under convention 'exact'", -0.5),
        id="cross-entropy exact, probability",
    ),
    pytest.param(
        lambda: sm.CrossEntropy(convention="sklearn").update([0, 0], [[0.5, 0.5], [2.0, 0.5]]),
        ("preds", 1, "must hold probabilities in [0, 1] under convention 'sklearn'", 2.0),
        id="cross-entropy sklearn convention",
    ),
    pytest.param(
        lambda: cross_entropy([0, 3], [[0.2, 0.3, 0.5]] * 2, convention="torch"),
        ("labels", 1, "must be a class index in [0, 3)", 3),
        id="functional cross_entropy y_true is labels",
    ),
    pytest.param(
        lambda: binary_cross_entropy([1.0, 0.0], [0.5, 1.2], convention="torch"),
        ("preds", 1, "must hold probabilities in [0, 1] under convention 'torch'", 1.2),
        id="functional binary_cross_entropy y_pred is preds",
    ),
    pytest.param(
        lambda: cross_entropy(np.array([[0, 1], [1, 7]]), np.full((2, 2, 2), 0.5)),
        ("labels", (1, 1), "must be a class index in [0, 2)", 7),
        id="cross-entropy rows of several dimensions",
    ),
    pytest.param(
        lambda: sm.Accuracy().update([0, 1, 5], P3),
        ("labels", 2, "must be a class index in [0, 3)", [5]),
        id="accuracy",
    ),
    pytest.param(
        lambda: sm.TopKAccuracy(top_k=2).update([0, 1], [[0.2, 0.3, 0.5], [0.2, -math.inf, 0.5]]),
        ("preds", 1, "must be finite", [0.2, -math.inf, 0.5]),
        id="top-k accuracy",
    ),
    pytest.param(
        lambda: sm.F1().update([0, 2], [0.2, 0.7]),
        (
            "labels",
            1,
            "must be 0 or 1 for class_type='binary' (class indices of more classes: "
            "class_type='multiclass')",
            [2],
        ),
        id="f1",
    ),
    pytest.param(
        lambda: sm.MCC().update([1, 0], [0.2, math.inf]),
        ("preds", 1, "must be finite", [math.inf]),
        id="mcc",
    ),
    pytest.param(
        lambda: sm.PCC().update([0, -1], [0, 0]),
        ("labels", 1, "must be a class index >= 0", [-1]),
        id="pcc",
    ),
    pytest.param(
        lambda: sm.MAE().update(np.array([0.0, 1.0, math.inf]), np.zeros(3)),
        ("labels", 2, "must be finite", [math.inf]),
        id="regression",
    ),
    pytest.param(
        lambda: sm.ECE().update([0, 1, 0, 1], [0.1, 0.2, 0.3, 1.5]),
        ("preds", 3, "must be probabilities in [0, 1] (pass from_logits=True for logits)", [1.5]),
        id="ece",
    ),
    pytest.param(
        lambda: sm.Brier().update([0, 2], [0.1, 0.2]),
        ("labels", 1, "must be a class index in [0, 2)", [2]),
        id="brier",
    ),
    pytest.param(
        lambda: sm.AUC().update([0, 1], [0.2, 0.3], sample_weight=[1.0, 0.5]),
        ("sample_weight", 1, "must be whole numbers for AUC (its state counts rows)", 0.5),
        id="auc sample_weight",
    ),
    pytest.param(
        lambda: sm.MSE().update([0.0, 1.0], [0.0, 1.0], sample_weight=[1.0, -1.0]),
        ("sample_weight", 1, "must be finite and >= 0", -1.0),
        id="metric sample_weight",
    ),
    pytest.param(
        lambda: cross_entropy([0, 1], [[0.5, 0.5]] * 2, sample_weight=[1.0, math.inf]),
        ("sample_weight", 1, "must be finite", math.inf),
        id="cross-entropy sample_weight",
    ),
]


@pytest.mark.parametrize(("call", "fields"), ROW_ERRORS)
def test_a_bad_row_is_named_by_fields(call, fields) -> None:
    error = _error(call)
    assert _fields(error) == fields
    argument, row, rule, _ = fields
    assert str(error).startswith(f"`{argument}` row {row} {rule}, got ")
    assert (error.path, error.column) == (None, None)


ARGUMENT_ERRORS = [
    pytest.param(lambda: cross_entropy(["a"], [[0.5, 0.5]]), "labels", id="cross-entropy dtype"),
    pytest.param(lambda: cross_entropy([0], [0.5, 0.5]), "preds", id="cross-entropy shape"),
    pytest.param(
        lambda: cross_entropy([0], [[0.5, 0.5]], class_weight=[1.0, -2.0]),
        "class_weight",
        id="class_weight",
    ),
    pytest.param(lambda: sm.MAE().update(["a"], [0.0]), "labels", id="regression dtype"),
    pytest.param(lambda: sm.ECE().update([0], np.zeros((1, 2, 2))), "preds", id="ece shape"),
    pytest.param(
        lambda: sm.Accuracy().update([0], [[0.5, 0.5]], sample_weight=[1.0, 1.0]),
        "sample_weight",
        id="sample_weight rows",
    ),
]


@pytest.mark.parametrize(("call", "argument"), ARGUMENT_ERRORS)
def test_an_error_of_a_whole_argument_names_it(call, argument) -> None:
    error = _error(call)
    assert error.argument == argument and error.row is None
    assert str(error).startswith(f"`{argument}` ")


def test_errors_about_two_arguments_name_neither() -> None:
    error = _error(lambda: cross_entropy([0, 1], [[0.5, 0.5]] * 3))
    assert str(error) == "`labels` and `preds` must have the same number of rows, got 2 and 3"
    assert _fields(error) == (None, None, None, None)


def test_the_constructors_word_one_line_and_keep_python_values() -> None:
    error = sm.InvalidInputError.bad_row("preds", 4, "must be finite", np.array([0.5, np.inf]))
    assert str(error) == "`preds` row 4 must be finite, got [0.5, inf]"
    assert error.value == [0.5, math.inf] and type(error.value) is list
    long = sm.InvalidInputError.bad_row("preds", 0, "must be finite", list(range(100)))
    assert len(str(long).split("got ")[1]) == 80 and str(long).endswith("...")
    assert long.value == list(range(100))  # the field keeps it whole
    dtype = sm.InvalidInputError.bad_argument("labels", "must be numeric", np.dtype("<U1"))
    assert str(dtype) == "`labels` must be numeric, got dtype <U1"
    assert isinstance(dtype, ValueError) and isinstance(dtype, sm.StreamMetricError)


def test_fields_survive_pickling() -> None:
    """The Dask engine sends errors between processes."""
    error = sm.InvalidInputError.bad_row("labels", 2, "must be a class index in [0, 3)", [5])
    error = error.located("data.parquet", "label", 1002)
    copy = pickle.loads(pickle.dumps(error))
    assert (
        str(copy)
        == str(error)
        == "data.parquet: column `label`, row 1002: must be a class index in [0, 3), got [5]"
    )
    assert (*_fields(copy), copy.path, copy.column) == (
        "labels",
        1002,
        "must be a class index in [0, 3)",
        [5],
        "data.parquet",
        "label",
    )


# --- located by fields, not by the message ---------------------------------------------------

UNIT = Unit("data.parquet", "parquet", 1, 10, row_offset=100)
COLUMNS = ResolvedColumns("y", "sparse", ("p0", "p1"), "columns", weights="w")
ROWS = np.array([100, 102, 104, 105, 107, 109])  # file row of each updated row (some skipped)


@pytest.mark.parametrize(
    ("argument", "column"), [("labels", "y"), ("preds", "p0,p1"), ("sample_weight", "w")]
)
def test_locate_error_maps_the_argument_to_its_column(argument, column) -> None:
    error = sm.InvalidInputError.bad_row(argument, 3, "must be finite", [math.nan])
    located = locate_error(error, UNIT, COLUMNS, ROWS)
    assert str(located) == f"data.parquet: column `{column}`, row 105: must be finite, got [nan]"
    assert (located.path, located.column, located.row, located.argument) == (
        "data.parquet",
        column,
        105,
        argument,
    )


def test_locate_error_reads_no_row_or_argument_out_of_the_message() -> None:
    """Rule text that mentions another row or a backticked argument does not move the error."""
    rule = "must not exceed `labels` row 5 (see `sample_weight`)"
    error = sm.InvalidInputError.bad_row("preds", 1, rule, [9.0])
    located = locate_error(error, UNIT, COLUMNS, ROWS)
    assert str(located) == f"data.parquet: column `p0,p1`, row 102: {rule}, got [9.0]"
    # an error with no fields is not located in a column or row, whatever its message says
    plain = sm.InvalidInputError("`labels` row 5 must be finite, got [nan]")
    located = locate_error(plain, UNIT, COLUMNS, ROWS)
    assert str(located) == "data.parquet: `labels` row 5 must be finite, got [nan]"
    assert (located.column, located.row) == (None, None)


def test_locate_error_keeps_the_message_of_an_argument_without_a_column() -> None:
    error = sm.InvalidInputError.bad_argument("class_weight", "must be finite and >= 0", -2.0)
    located = locate_error(error, UNIT, COLUMNS, ROWS)
    assert str(located) == "data.parquet: `class_weight` must be finite and >= 0, got -2.0"


# --- files: the file, the column and the file's row -------------------------------------------


@pytest.fixture
def bad_file(tmp_path):
    """600 rows in row groups of 250: file row 503 has a label out of range, 260 a negative
    weight."""
    rows = 600
    labels = np.arange(rows) % 3
    labels[503] = 7
    weights = np.ones(rows)
    weights[260] = -1.0
    probs = np.full((rows, 3), 1 / 3).tolist()
    path = tmp_path / "bad.parquet"
    table = pa.table({"label": labels, "probs": probs, "w": weights})
    pq.write_table(table, path, row_group_size=250)
    return path


def test_the_cli_names_file_column_and_file_row(bad_file) -> None:
    result = CliRunner().invoke(main, ["eval", str(bad_file), "-m", "ce"])
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert f"{bad_file}: column `label`, row 503: must be a class index in [0, 3), got 7" in line


def test_evaluate_raises_the_located_fields(bad_file) -> None:
    error = _error(lambda: sm.evaluate(bad_file, "acc", labels="label", preds="probs"))
    assert (error.path, error.column, error.row) == (str(bad_file), "label", 503)
    assert (error.argument, error.rule, error.value) == (
        "labels",
        "must be a class index in [0, 3)",
        [7],
    )
    weighted = {"labels": "label", "preds": "probs", "weights": "w"}
    error = _error(lambda: sm.evaluate(bad_file, "acc", **weighted))
    assert (error.column, error.row, error.argument) == ("w", 260, "sample_weight")
    assert str(error).endswith("column `w`, row 260: must be finite and >= 0, got -1.0")


def test_a_structural_bad_row_of_a_file_has_fields(tmp_path) -> None:
    path = tmp_path / "ragged.parquet"
    table = pa.table({"label": [1, 0, 1], "probs": [[0.0, 1.0], [0.5], [0.2, 0.8]]})
    pq.write_table(table, path)
    error = _error(lambda: sm.evaluate(path, "ce"))
    assert (error.path, error.column, error.row) == (str(path), "probs", 1)
    assert error.rule is not None and str(error).endswith(f"row 1: {error.rule}")


# --- metrics updated group by group (no row terms) ---------------------------------------------


def _rejects_seven(label: np.ndarray, pred: np.ndarray) -> tuple[float, int]:
    """A custom metric's function that refuses the label 7, naming its row among those given."""
    bad = np.flatnonzero(label == 7)
    if bad.size:
        row = int(bad[0])
        raise sm.InvalidInputError.bad_row("labels", row, "must not be 7", label[row])
    return 0.0, len(label)


class RejectsSeven(sm.CustomMetric):
    """`CustomMetric` of `_rejects_seven`, registered so that a run can name it (and with a
    config, which a run's settings record)."""

    mxnet_positional = ()

    def __init__(self, *, name: str = "rejects_seven") -> None:
        super().__init__(feval=_rejects_seven, name=name)

    def get_config(self) -> dict:
        return {"metric": "rejectsseven", "name": self.name}


@pytest.fixture
def rejects_seven(monkeypatch):
    from streammetric.metrics import registry

    sm.list_metrics()  # the built-ins that load on first use are in the copies below
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # leave no trace
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    sm.register(RejectsSeven)


@pytest.fixture
def grouped_bad_file(tmp_path):
    """600 rows in row groups of 250, split a, b, c in turn: file row 503 (split c, the
    group's second row in its row group) has the label 7."""
    rows = 600
    labels = np.arange(rows) % 3
    labels[503] = 7
    split = np.array(["a", "b", "c"])[np.arange(rows) % 3]
    probs = np.full((rows, 3), 1 / 3).tolist()
    path = tmp_path / "grouped.parquet"
    pq.write_table(
        pa.table({"label": labels, "probs": probs, "split": split}), path, row_group_size=250
    )
    return path


@pytest.mark.parametrize("by", [(), ("split",)])
def test_a_metric_updated_group_by_group_names_the_file_row(rejects_seven, grouped_bad_file, by):
    """A metric without row terms gets each group's rows apart (`_ObjectStates`): the row it
    names among them is the file's row in the error, with or without --by."""
    error = _error(
        lambda: sm.evaluate(grouped_bad_file, "rejectsseven", labels="label", preds="probs", by=by)
    )
    assert (error.path, error.column, error.row) == (str(grouped_bad_file), "label", 503)
    assert (error.argument, error.rule, error.value) == ("labels", "must not be 7", 7)
    options = [arg for column in by for arg in ("--by", column)]
    result = CliRunner().invoke(
        main, ["eval", str(grouped_bad_file), "-m", "rejectsseven", *options]
    )
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert f"{grouped_bad_file}: column `label`, row 503: must not be 7, got 7" in line


def test_an_error_in_a_batch_names_the_batchs_row() -> None:
    error = sm.InvalidInputError.bad_row("labels", (1, 2), "must be finite", math.nan)
    moved = error.in_batch(np.array([4, 7, 9]))
    assert (str(moved), moved.row) == ("`labels` row (7, 2) must be finite, got nan", (7, 2))
    plain = sm.InvalidInputError("no row here", argument="labels", row=1)
    assert (str(plain.in_batch([5, 6])), plain.in_batch([5, 6]).row) == ("no row here", 6)
    assert plain.in_batch([5]) is plain  # a row the batch does not hold: left as it was
