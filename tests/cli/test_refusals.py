"""Input the commands refuse in one line instead of losing work or giving a number that means
nothing: an output that is an input or another output, a NaN threshold, weight options that
are not finite, class indices that would take gigabytes, columns of one name, and a comparison
of sides whose rows do not pair; and the loss metrics' weights, which were dropped."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streammetric as sm

from .helpers import invoke, write_preds
from .test_issue21_cli import one_line_error


@pytest.fixture
def preds(tmp_path: Path) -> Path:
    return write_preds(tmp_path / "p.parquet", 40, seed=3)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (("-o", "{input}"), "-o {input} is an input of this run"),
        (("--report", "{input}"), "--report {input} is an input of this run"),
        (("--textfile", "{input}"), "--textfile {input} is an input of this run"),
        (("--checkpoint", "{input}"), "--checkpoint {input} is an input of this run"),
        (("-o", "{dir}/r.json", "--report", "{dir}/./r.json"), "-o and --report name the same"),
        (("--checkpoint", "{dir}/r.json", "-o", "{dir}/r.json"), "-o and --checkpoint name"),
    ],
)
def test_eval_refuses_an_output_that_is_an_input_or_another_output(preds, options, needle):
    before = preds.read_bytes()
    fill = {"input": str(preds), "dir": str(preds.parent)}
    args = [option.format(**fill) for option in options]
    one_line_error(invoke("eval", preds, "-m", "acc", *args), 2, needle.format(**fill))
    assert preds.read_bytes() == before  # nothing written over it
    assert not (preds.parent / "r.json").exists()


def test_report_and_watch_refuse_the_same_files(preds, tmp_path):
    state = tmp_path / "s.ckpt"
    result = invoke("eval", preds, "-m", "acc", "--checkpoint", state)
    assert result.exit_code == 0, result.output
    saved = state.read_bytes()
    one_line_error(invoke("report", state, "-o", state), 2, "is an input of this run")
    assert state.read_bytes() == saved
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "w.json"
    watch = invoke("watch", folder, "--once", "-o", out, "--checkpoint", out)
    one_line_error(watch, 2, "-o and --checkpoint name the same file")


def test_a_nan_threshold_is_a_usage_error(preds):
    result = invoke("eval", preds, "-m", "ce", "--fail-above", "ce=nan")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'ce=nan': the threshold is NaN" in result.stderr


def test_loss_metrics_weigh_rows_instead_of_dropping_the_weights():
    for name in ("loss", "torch", "caffe"):
        metric = sm.create(name).update(None, [0.2, 0.7, 0.9], sample_weight=[1.0, 0.0, 0.0])
        assert metric.get() == (name, 0.2)
        rows = np.array([[1.0, 3.0], [5.0, 7.0]])  # a row's weight for each of its values
        metric = sm.create(name).update(None, [rows], sample_weight=[np.array([1.0, 3.0])])
        assert metric.get() == (name, (1 + 3 + 3 * 5 + 3 * 7) / 8)
        with pytest.raises(sm.InvalidInputError, match="finite and >= 0") as raised:
            sm.create(name).update(None, [0.2, 0.7], sample_weight=[1.0, math.nan])
        assert raised.value.argument == "sample_weight" and raised.value.row == 1


@pytest.mark.parametrize(
    ("metric", "option", "value"),
    [
        ("bce", "pos_weight", math.nan),
        ("bce", "pos_weight", math.inf),
        ("bce", "pos_weight", "abc"),
        ("ce", "class_weight", [1.0, math.nan]),
        ("ce", "class_weight", [1.0, -1.0]),
    ],
)
def test_weight_options_must_be_finite(metric, option, value):
    with pytest.raises(sm.ConfigError, match=f"`{option}` must be"):
        sm.create(metric, **{option: value})


def test_weight_options_from_the_command_line(tmp_path):
    path = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"label": [0.0, 1.0, 1.0], "preds": [0.2, 0.7, 0.9]}), path)
    for value in ("1e400", "nan"):
        result = invoke("eval", path, "-m", f"bce:pos_weight={value}")
        one_line_error(result, 2, "`pos_weight` must be")
    result = invoke("eval", path, "-m", "bce:pos_weight=2", "--format", "json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["f1", "precision", "recall", "mcc"])
def test_class_indices_without_num_classes_are_capped(name):
    with pytest.raises(sm.InvalidInputError, match=r"in \[0, 65536\)") as raised:
        sm.create(name, class_type="multiclass").update([0, 1, 10**9], [0, 1, 2])
    assert raised.value.row == 2 and raised.value.argument == "labels"
    if name != "mcc":  # (MCC has no num_classes)
        metric = sm.create(name, class_type="multiclass", num_classes=70000)
        metric.update([0, 69999], [0, 69999])  # with num_classes, as many as it says


def test_a_read_column_needs_a_name_of_its_own(tmp_path):
    table = pa.table(
        [pa.array([0, 1]), pa.array([[0.3, 0.7], [0.2, 0.8]]), pa.array([1, 1])],
        names=["label", "probs", "label"],
    )
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path)
    for command in ("eval", "explain"):
        one_line_error(invoke(command, path), 1, "column `label`: 2 columns have this name")
    with pytest.raises(sm.InvalidInputError) as raised:
        sm.evaluate(table, ["ce"])
    assert raised.value.column == "label"
    unused = table.rename_columns(["label", "probs", "extra"]).append_column(
        "extra", pa.array([0, 0])
    )
    assert sm.evaluate(unused, ["ce"]).rows == 2  # only the columns read must be unique


def test_compare_refuses_sides_whose_rows_do_not_pair(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 20)
    flat = pa.array(probs.reshape(-1))
    columns = {"label": rng.integers(0, 3, 20), "probs": pa.FixedSizeListArray.from_arrays(flat, 3)}
    base, cand = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    pq.write_table(pa.table({"id": np.arange(20), **columns}), base)
    pq.write_table(pa.table({"id": [str(i) for i in range(20)], **columns}), cand)
    result = invoke("compare", base, cand, "-m", "acc", "--bootstrap", "50")
    one_line_error(result, 1, "no row of the candidate (20 rows) pairs", "1 and '1'")


def test_one_hot_labels_for_class_index_metrics_name_the_label_column(tmp_path):
    rng = np.random.default_rng(2)
    one_hot = np.eye(4)[rng.integers(0, 4, 12)]
    probs = rng.dirichlet(np.ones(4), 12)
    path = tmp_path / "onehot.parquet"
    pq.write_table(pa.table({"label": one_hot.tolist(), "pred": probs.tolist()}), path)
    for metric in ("acc", "recall:average=none,class_type=multiclass", "confusion_matrix"):
        line = one_line_error(invoke("eval", path, "-m", metric), 1, "column `label`, row 0")
        assert "not a list of class scores (one-hot or soft targets" in line
    assert invoke("eval", path, "-m", "ce").exit_code == 0  # soft targets: cross-entropy


def test_error_fields_name_what_the_message_names(tmp_path):
    with pytest.raises(sm.InvalidInputError) as raised:  # a uint64 beyond int64, not wrapped
        sm.create("acc").update(np.array([1, 2**63 + 5], dtype=np.uint64), np.ones((2, 3)) / 3)
    assert raised.value.row == 1 and raised.value.value == [2**63 + 5]
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"label": [0.5, 1.0], "probs": [[0.3, 0.7], [0.2, 0.8]]}), path)
    with pytest.raises(sm.InvalidInputError) as raised:
        sm.evaluate(path, ["ce"])
    assert (raised.value.path, raised.value.column) == (str(path), "label")
    with pytest.raises(sm.InvalidInputError) as raised:
        sm.evaluate(tmp_path / "missing.parquet", ["ce"])
    assert raised.value.path == str(tmp_path / "missing.parquet")


def test_class_names_for_keys_beyond_them_are_a_usage_error(tmp_path):
    state = tmp_path / "r.json"
    result = {"rows": 4, "invalid_rows": 0, "metrics": {"recall": {"0": 0.5, "7": 0.1}}}
    state.write_text(json.dumps(result))
    line = one_line_error(
        invoke("report", state, "-o", tmp_path / "r.html", "--class-names", "a,b,c"), 2
    )
    assert "3 class names given, but recall has 8 classes" in line


@pytest.mark.parametrize("option", ["-o", "--report", "--textfile", "--checkpoint"])
def test_outputs_at_an_object_store_uri_are_refused_not_written_to_a_local_s3_folder(
    preds, option, tmp_path, monkeypatch
):
    """``--checkpoint s3://bucket/key`` wrote a local ``./s3:/bucket/key``, exit 0."""
    monkeypatch.chdir(tmp_path)
    done = invoke("eval", preds, "-m", "acc", option, "s3://bucket/out.file")
    assert done.exit_code == 2, done.output
    assert option in done.output and "local file" in done.output
    assert not (tmp_path / "s3:").exists()


def test_a_signalling_nan_is_refused_without_numpys_warning(tmp_path):
    import warnings

    probs = np.full((4, 3), 1 / 3, np.float32)
    probs.view(np.uint32)[2, 1] = 0x7F800001  # a float32 signalling NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would raise here
        with pytest.raises(sm.InvalidInputError, match="row 2"):
            sm.functional.cross_entropy([0, 1, 2, 0], probs)


@pytest.mark.parametrize("order", [("acc", "ce"), ("ce", "acc")])
def test_the_first_bad_row_is_named_whichever_metric_finds_it(tmp_path, order):
    """acc refuses the NaN at row 100, ce the label at row 50 (out of its 3 scores): the error
    names row 50 in either order (the first metric's error named row 100)."""
    rows = 1000
    probs = np.full((rows, 3), 1 / 3, np.float32)
    labels = np.random.default_rng(1).integers(0, 3, rows)
    probs[100, 1], labels[50] = np.nan, 5
    flat = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3)
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"label": labels, "probs": flat}), path)
    done = invoke("eval", path, *(x for m in order for x in ("-m", m)))
    one_line_error(done, 1, "column `label`, row 50: must be a class index in [0, 3), got 5")


def test_a_checkpoint_refusal_names_the_options_also_when_one_is_dropped(preds, tmp_path):
    checkpoint = tmp_path / "c.ckpt"
    ci = ("--ci", "0.9", "--bootstrap", "50")
    assert invoke("eval", preds, "-m", "acc", *ci, "--checkpoint", checkpoint).exit_code == 0
    dropped = invoke("eval", preds, "-m", "acc", "--checkpoint", checkpoint)  # without --ci
    one_line_error(dropped, 1, "checkpoint belongs to a run with different --ci resampling")
    other = invoke(
        "eval", preds, "-m", "acc", "--on-invalid", "skip", *ci, "--checkpoint", checkpoint
    )
    one_line_error(other, 1, "different --on-invalid;")
