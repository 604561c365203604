"""``streammetric compare``: each side's value is its own ``eval``'s, the paired interval and
p-value, pairing in any order and layout, unpaired and repeated ids, --by, single-file mode,
--fail-if-worse, table output and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import binomtest

from .helpers import invoke
from .test_issue21_cli import one_line_error

ROWS = 600
FAST = ("--bootstrap", "200", "--seed", "7")


def tables(
    rows: int = ROWS, better: float = 1.0, seed: int = 0, noise: float = 0.0
) -> tuple[pa.Table, pa.Table]:
    """A baseline and a candidate over the same rows (id, label, probs, model); the
    candidate's logits give the true class ``better`` more, plus normal ``noise``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, rows)
    logits = rng.normal(size=(rows, 3))
    logits[np.arange(rows), labels] += 0.5
    other = logits + rng.normal(scale=noise, size=logits.shape) if noise else logits.copy()
    other[np.arange(rows), labels] += better

    def table(values: np.ndarray) -> pa.Table:
        probs = np.exp(values) / np.exp(values).sum(axis=1, keepdims=True)
        flat = pa.array(probs.reshape(-1))
        return pa.table(
            {
                "id": np.arange(rows) * 7 + 3,
                "label": labels,
                "probs": pa.FixedSizeListArray.from_arrays(flat, 3),
                "model": np.where(labels == 0, "a", "b"),
            }
        )

    return table(logits), table(other)


def write_pair(root: Path) -> Path:
    """``base.parquet`` and ``cand.parquet`` (`tables`) written in ``root``, returned."""
    base, cand = tables()
    pq.write_table(base, root / "base.parquet")
    pq.write_table(cand, root / "cand.parquet")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    base, cand = tables()
    pq.write_table(base, root / "base.parquet", row_group_size=128)
    pq.write_table(cand, root / "cand.parquet", row_group_size=128)
    # the candidate's rows shuffled, in two files of several row groups each
    order = np.random.default_rng(1).permutation(ROWS)
    shuffled = cand.take(pa.array(order))
    (root / "split").mkdir()
    pq.write_table(shuffled.slice(0, 250), root / "split" / "part-0.parquet", row_group_size=60)
    pq.write_table(shuffled.slice(250), root / "split" / "part-1.parquet", row_group_size=90)
    # one file with both prediction columns
    both = base.append_column("cand_probs", cand.column("probs"))
    pq.write_table(both, root / "both.parquet", row_group_size=128)
    return {"base": root / "base.parquet", "cand": root / "cand.parquet",
            "split": root / "split", "both": root / "both.parquet", "root": root}  # fmt: skip


def run_json(*args) -> dict:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def eval_json(path, *args) -> dict:
    result = invoke(
        "eval", path, "--preds", "probs", "-m", "acc", "-m", "ce", "--format", "json", *args
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_each_side_is_its_own_eval_bit_for_bit_and_delta_is_their_difference(files):
    out = run_json(
        "compare", files["base"], files["cand"], "--preds", "probs", "-m", "acc", "-m", "ce", *FAST
    )
    base, cand = eval_json(files["base"]), eval_json(files["cand"])
    assert out["rows"] == ROWS and out["unpaired"] == {"baseline": 0, "candidate": 0}
    assert out["ci"] == {"level": 0.95, "replicates": 200, "seed": 7, "method": out["ci"]["method"]}
    assert set(out["metrics"]) == {"accuracy", "cross-entropy"}
    for name, entry in out["metrics"].items():
        assert repr(entry["baseline"]) == repr(base["metrics"][name])
        assert repr(entry["candidate"]) == repr(cand["metrics"][name])
        assert entry["delta"] == entry["candidate"] - entry["baseline"]
        assert entry["lower"] <= entry["delta"] <= entry["upper"]
    assert out["metrics"]["accuracy"]["test"] == "mcnemar-exact"
    assert out["metrics"]["cross-entropy"]["test"] == "paired-bootstrap"
    # the candidate is clearly better: both intervals exclude 0, small p-values
    acc, ce = out["metrics"]["accuracy"], out["metrics"]["cross-entropy"]
    assert acc["lower"] > 0 and acc["p_value"] < 1e-6
    assert ce["upper"] < 0 and ce["p_value"] == 2 / 201  # no replicate at or above 0


def test_shuffled_and_split_candidate_gives_the_same_bits(files):
    args = ("--preds", "probs", "-m", "acc", "-m", "ce", *FAST)
    whole = invoke("compare", files["base"], files["cand"], *args, "--format", "json")
    split = invoke(
        "compare", files["base"], files["split"], *args, "--format", "json", "--threads", "1"
    )
    assert whole.exit_code == 0 and split.exit_code == 0, split.output
    assert split.stdout == whole.stdout


def test_the_output_files_extension_names_the_format(files, tmp_path):
    """``-o FILE.json`` writes JSON (as ``--format json``); another name, the table."""
    args = ("compare", files["base"], files["cand"], "--preds", "probs", "-m", "acc", *FAST)
    for name, fmt in (("c.json", "json"), ("c.txt", "table")):
        assert invoke(*args, "-o", tmp_path / name).exit_code == 0
        assert (tmp_path / name).read_text() == invoke(*args, "--format", fmt).stdout


def test_a_candidate_equal_to_the_baseline_has_delta_zero_and_p_one(files):
    out = run_json(
        "compare", files["base"], files["base"], "--preds", "probs", "-m", "acc", "-m", "ce", *FAST
    )
    for entry in out["metrics"].values():
        assert entry["delta"] == 0.0 and entry["lower"] == 0.0 and entry["upper"] == 0.0
        assert entry["p_value"] == 1.0


def test_a_tiny_difference_on_few_rows_has_an_interval_around_zero(tmp_path):
    base, cand = tables(rows=60, better=0.02, seed=4, noise=0.5)  # mostly noise
    pq.write_table(base, tmp_path / "b.parquet")
    pq.write_table(cand, tmp_path / "c.parquet")
    out = run_json(
        "compare",
        tmp_path / "b.parquet",
        tmp_path / "c.parquet",
        "--preds",
        "probs",
        "-m",
        "ce",
        *FAST,
    )
    entry = out["metrics"]["cross-entropy"]
    assert entry["delta"] != 0 and abs(entry["delta"]) < 0.1
    assert entry["lower"] < 0 < entry["upper"] and entry["p_value"] > 0.05


def test_unpaired_rows_are_counted_and_strict_refuses_them(tmp_path, files):
    base = pq.read_table(files["base"])
    cand = pq.read_table(files["cand"])
    pq.write_table(base.slice(0, ROWS - 5), tmp_path / "b.parquet")  # 5 candidate rows alone
    extra = cand.slice(0, 2).set_column(0, "id", pa.array([-1, -2]))
    pq.write_table(pa.concat_tables([cand, extra]), tmp_path / "c.parquet")
    args = (
        "compare",
        tmp_path / "b.parquet",
        tmp_path / "c.parquet",
        "--preds",
        "probs",
        "-m",
        "acc",
        *FAST,
    )
    out = run_json(*args)
    assert out["rows"] == ROWS - 5
    assert out["unpaired"] == {"baseline": 0, "candidate": 7}
    own = eval_json(tmp_path / "c.parquet")
    assert repr(out["metrics"]["accuracy"]["candidate"]) == repr(own["metrics"]["accuracy"])
    line = one_line_error(invoke(*args, "--strict"), 1, "c.parquet", "column `id`", "row ")
    assert "pair" in line
    # the other way round: the baseline's unpaired row, first in file order
    swapped = (
        "compare",
        tmp_path / "c.parquet",
        tmp_path / "b.parquet",
        "--preds",
        "probs",
        "-m",
        "acc",
        "--strict",
        *FAST,
    )
    one_line_error(invoke(*swapped), 1, "c.parquet", "column `id`", f"row {ROWS - 5}:")


def test_a_repeated_id_is_one_line_naming_file_column_and_row(tmp_path, files):
    base = pq.read_table(files["base"])
    ids = base.column("id").to_numpy().copy()
    ids[10] = ids[3]
    pq.write_table(base.set_column(0, "id", pa.array(ids)), tmp_path / "dup.parquet")
    line = one_line_error(
        invoke("compare", tmp_path / "dup.parquet", files["cand"], "--preds", "probs", "-m", "acc"),
        1, "dup.parquet", "column `id`", "row 10", "row 3",
    )  # fmt: skip
    assert "repeats" in line
    one_line_error(
        invoke("compare", files["cand"], tmp_path / "dup.parquet", "--preds", "probs", "-m", "acc"),
        1, "dup.parquet", "column `id`", "row 10", "repeats",
    )  # fmt: skip


def test_by_gives_each_groups_own_eval_values(files):
    out = run_json(
        "compare",
        files["base"],
        files["split"],
        "--preds",
        "probs",
        "-m",
        "acc",
        "-m",
        "ce",
        "--by",
        "model",
        *FAST,
    )
    base = eval_json(files["base"], "--by", "model")
    cand = eval_json(files["cand"], "--by", "model")
    assert [g["key"] for g in out["groups"]] == [g["key"] for g in base["groups"]]
    for group, b, c in zip(out["groups"], base["groups"], cand["groups"], strict=True):
        assert group["rows"] == b["rows"] == c["rows"]
        for name, entry in group["metrics"].items():
            assert repr(entry["baseline"]) == repr(b["metrics"][name])
            assert repr(entry["candidate"]) == repr(c["metrics"][name])
            assert entry["lower"] <= entry["delta"] <= entry["upper"]
        assert group["metrics"]["accuracy"]["test"] == "mcnemar-exact"
    assert sum(g["rows"] for g in out["groups"]) == out["rows"]


def test_single_file_mode_equals_two_files(files):
    two = run_json(
        "compare", files["base"], files["cand"], "--preds", "probs", "-m", "acc", "-m", "ce", *FAST
    )
    one = run_json(
        "compare",
        files["both"],
        "--baseline-preds",
        "probs",
        "--preds",
        "cand_probs",
        "-m",
        "acc",
        "-m",
        "ce",
        *FAST,
    )
    assert one["rows"] == two["rows"] and one["unpaired"] == two["unpaired"]
    for name in two["metrics"]:
        for field in ("baseline", "candidate", "delta", "test"):
            assert repr(one["metrics"][name][field]) == repr(two["metrics"][name][field])
    # McNemar's test reads the same pairs either way
    assert one["metrics"]["accuracy"]["p_value"] == two["metrics"]["accuracy"]["p_value"]
    # the intervals may differ: a row's identity (so its bucket and bootstrap weights) is its
    # id in two-file mode, and its file and row here, so the replicates resample other buckets


def test_fail_if_worse_in_both_directions(files):
    base, cand = files["base"], files["cand"]
    common = ("--preds", "probs", "-m", "acc", "-m", "ce", *FAST)
    # candidate worse (the files swapped): accuracy (higher is better) and ce (lower is better)
    worse = invoke("compare", cand, base, *common, "--fail-if-worse", "acc=0.01")
    assert worse.exit_code == 3 and "accuracy" in worse.stderr
    assert len(worse.stderr.strip().splitlines()) == 1
    worse = invoke("compare", cand, base, *common, "--fail-if-worse", "ce=0.01")
    assert worse.exit_code == 3 and "cross-entropy" in worse.stderr
    # a margin wider than the loss: not worse by more than that
    out = json.loads(invoke("compare", cand, base, *common, "--format", "json").stdout)
    margin = -out["metrics"]["accuracy"]["lower"] + 0.01
    assert invoke("compare", cand, base, *common, "--fail-if-worse", f"acc={margin}").exit_code == 0
    margin = out["metrics"]["cross-entropy"]["upper"] + 0.01
    assert invoke("compare", cand, base, *common, "--fail-if-worse", f"ce={margin}").exit_code == 0
    # a better candidate passes both
    better = invoke(
        "compare", base, cand, *common, "--fail-if-worse", "acc=0", "--fail-if-worse", "ce=0"
    )
    assert better.exit_code == 0, better.stderr
    # a metric not requested is a usage error, before reading
    one_line_error(invoke("compare", base, cand, *common, "--fail-if-worse", "mse=0"), 2, "mse")


def _with_zero_row(table: pa.Table) -> pa.Table:
    """``table`` with row 0 giving its true class probability 0 (an infinite cross-entropy)."""
    probs = np.asarray(table.column("probs").combine_chunks().flatten()).reshape(-1, 3).copy()
    label = table.column("label")[0].as_py()
    probs[0] = 0.0
    probs[0, (label + 1) % 3] = 1.0
    flat = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 3)
    return table.set_column(table.schema.get_field_index("probs"), "probs", flat)


def test_fail_if_worse_an_infinite_or_nan_delta(tmp_path):
    """A candidate's infinite loss fails the gate though the replicates without its row give
    an interval from 0 (the models are the same elsewhere); infinite on both sides, the delta
    is NaN: the gate cannot pass it; a finite candidate against an infinite baseline passes."""
    base, _ = tables()
    for name, table in (("base", base), ("zero", _with_zero_row(base))):
        pq.write_table(table, tmp_path / f"{name}.parquet")
    common = ("--preds", "probs", "-m", "ce", *FAST, "--fail-if-worse", "ce=0.01")
    out = invoke("compare", tmp_path / "base.parquet", tmp_path / "zero.parquet", *common,
                 "--format", "json")  # fmt: skip
    assert out.exit_code == 3
    entry = json.loads(out.stdout)["metrics"]["cross-entropy"]
    assert entry["delta"] == np.inf and entry["lower"] <= 0.01  # the interval alone would pass
    assert "delta inf" in out.stderr and len(out.stderr.strip().splitlines()) == 2  # note, gate
    both = invoke("compare", tmp_path / "zero.parquet", tmp_path / "zero.parquet", *common)
    assert both.exit_code == 3 and "delta nan" in both.stderr, both.stderr
    better = invoke("compare", tmp_path / "zero.parquet", tmp_path / "base.parquet", *common)
    assert better.exit_code == 0, better.stderr


def test_table_output(files):
    result = invoke(
        "compare", files["base"], files["cand"], "--preds", "probs", "-m", "acc", "-m", "ce", *FAST
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["metric", "paired", "rows", "baseline"]
    assert lines[1].startswith("accuracy") and "mcnemar-exact" in lines[1] and "[" in lines[1]
    assert lines[2].startswith("cross-entropy") and "paired-bootstrap" in lines[2]
    assert f"{ROWS} paired rows; unpaired: 0 baseline, 0 candidate" in result.stdout


def test_bad_input_is_one_line(tmp_path, files):
    table = pq.read_table(files["base"])
    pq.write_table(table.drop_columns(["id"]), tmp_path / "noid.parquet")
    # as eval --id: a missing column is a usage error (2), a column of floats a data error (1)
    one_line_error(
        invoke(
            "compare", tmp_path / "noid.parquet", files["cand"], "--preds", "probs", "-m", "acc"
        ),
        2,
        "noid.parquet",
        "`id`",
    )
    floats = table.set_column(0, "id", pa.array(np.arange(ROWS) * 0.5))
    pq.write_table(floats, tmp_path / "floatid.parquet")
    one_line_error(
        invoke(
            "compare", files["base"], tmp_path / "floatid.parquet", "--preds", "probs", "-m", "acc"
        ),
        1,
        "floatid.parquet",
        "`id`",
    )
    one_line_error(
        invoke("compare", files["base"], "--preds", "probs", "-m", "acc"), 2, "--baseline-preds"
    )
    one_line_error(
        invoke(
            "compare", files["base"], files["cand"], "--preds", "probs", "-m", "confusion_matrix"
        ),
        2,
        "one number",
    )


def test_weights_give_bootstrap_p_values_for_accuracy(tmp_path, files):
    table = pq.read_table(files["base"])
    weights = pa.array(np.linspace(0.5, 1.5, ROWS))
    pq.write_table(table.append_column("w", weights), tmp_path / "b.parquet")
    cand = pq.read_table(files["cand"])
    pq.write_table(cand.append_column("w", weights), tmp_path / "c.parquet")
    out = run_json(
        "compare",
        tmp_path / "b.parquet",
        tmp_path / "c.parquet",
        "--preds",
        "probs",
        "--weights",
        "w",
        "-m",
        "acc",
        *FAST,
    )
    assert out["metrics"]["accuracy"]["test"] == "paired-bootstrap"


@pytest.mark.parametrize("p_b_c", [(3, 11), (0, 6), (9, 9)])
def test_mcnemar_counts_from_constructed_rows(tmp_path, p_b_c):
    b, c = p_b_c
    n = 80
    labels = np.arange(n) % 3
    base_pred, cand_pred = labels.copy(), labels.copy()
    cand_pred[:b] = (labels[:b] + 1) % 3  # baseline right, candidate wrong
    base_pred[b : b + c] = (labels[b : b + c] + 2) % 3  # the reverse
    base_pred[70:], cand_pred[70:] = (labels[70:] + 1) % 3, (labels[70:] + 2) % 3  # both wrong

    def write(path: Path, predicted: np.ndarray, order: np.ndarray) -> None:
        probs = np.full((n, 3), 0.1)
        probs[np.arange(n), predicted] = 0.8
        flat = pa.array(probs[order].reshape(-1))
        pq.write_table(pa.table({"id": [f"row-{i}" for i in order], "label": labels[order],
                                 "probs": pa.FixedSizeListArray.from_arrays(flat, 3)}), path)  # fmt: skip

    write(tmp_path / "b.parquet", base_pred, np.arange(n))
    write(tmp_path / "c.parquet", cand_pred, np.arange(n)[::-1])
    out = run_json(
        "compare",
        tmp_path / "b.parquet",
        tmp_path / "c.parquet",
        "--preds",
        "probs",
        "-m",
        "acc",
        *FAST,
    )
    expected = 1.0 if b == c else binomtest(b, b + c, 0.5).pvalue
    assert out["metrics"]["accuracy"]["p_value"] == pytest.approx(expected, rel=1e-12)


def test_each_sides_notes_are_shown_with_its_name(tmp_path):
    flat = pa.array(np.array([[0.0, 1.0], [0.5, 0.5], [0.3, 0.7]]).reshape(-1))
    table = pa.table(
        {"id": [1, 2, 3], "label": [0, 1, 1], "probs": pa.FixedSizeListArray.from_arrays(flat, 2)}
    )
    pq.write_table(table, tmp_path / "p.parquet")
    result = invoke(
        "compare",
        tmp_path / "p.parquet",
        tmp_path / "p.parquet",
        "-m",
        "ce",
        "--format",
        "json",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["cross-entropy"]["baseline"] == float("inf")
    own = invoke("eval", tmp_path / "p.parquet", "-m", "ce").stderr.splitlines()
    assert own and all(line.startswith("streammetric: note: ") for line in own)
    for side in ("baseline", "candidate"):
        for line in own:
            note = line.removeprefix("streammetric: note: ")
            assert f"streammetric: note: {side}: {note}" in result.stderr.splitlines()


def test_an_id_repeated_across_row_groups_of_the_candidate_is_an_error(tmp_path, files):
    cand = pq.read_table(files["cand"])
    ids = cand.column("id").to_numpy().copy()
    ids[ROWS - 1] = ids[0]  # the last row group repeats the first row's id
    pq.write_table(
        cand.set_column(0, "id", pa.array(ids)), tmp_path / "c.parquet", row_group_size=100
    )
    result = invoke(
        "compare", files["base"], tmp_path / "c.parquet", "--preds", "probs", "-m", "acc"
    )
    line = one_line_error(result, 1, "c.parquet", "column `id`", "repeats")
    # which of the two rows is named depends on which row group's thread looked it up first
    assert f"row {ROWS - 1}:" in line or "row 0:" in line


def test_top_k_accuracy_gets_mcnemar_and_other_metrics_the_bootstrap(files):
    out = run_json(
        "compare", files["base"], files["cand"], "--preds", "probs",
        "-m", "top_k_accuracy:top_k=2", "-m", "f1:class_type=multiclass,average=macro", *FAST,
    )  # fmt: skip
    tests = {name: entry["test"] for name, entry in out["metrics"].items()}
    assert tests == {"top_k_accuracy_2": "mcnemar-exact", "f1": "paired-bootstrap"}


def test_groups_replicated_a_few_at_a_time_give_the_same_bits(files, monkeypatch):
    import streammetric.engine.compare as compare_module

    args = ("compare", files["base"], files["cand"], "--preds", "probs", "-m", "acc", "-m", "ce")
    args += ("--by", "label", "--format", "json", *FAST)
    whole = invoke(*args)
    monkeypatch.setattr(compare_module, "REPLICATE_VALUES", 200)  # one group per pass
    one_by_one = invoke(*args)
    assert whole.exit_code == 0 and one_by_one.exit_code == 0, one_by_one.output
    assert len(json.loads(whole.stdout)["groups"]) == 3
    assert one_by_one.stdout == whole.stdout


@pytest.mark.parametrize("layout", ["same order", "shuffled"])
def test_paired_rows_with_other_labels_are_refused(files, tmp_path, layout):
    """Rows paired by id whose labels differ are not the same rows (another evaluation set,
    shifted ids): the first such candidate row is the error, wherever it is paired."""
    _, cand = tables()
    labels = cand["label"].to_numpy().copy()
    labels[37] = (labels[37] + 1) % 3
    cand = cand.set_column(1, "label", pa.array(labels))
    if layout == "shuffled":
        order = np.random.default_rng(3).permutation(ROWS)
        cand = cand.take(pa.array(order))
        row = int(np.flatnonzero(order == 37)[0])
    else:
        row = 37
    path = tmp_path / "cand.parquet"
    pq.write_table(cand, path, row_group_size=128)
    result = invoke("compare", files["base"], path, "-m", "acc", *FAST)
    line = one_line_error(result, 1, f"{path}: column `label`, row {row}: its label")
    assert "the same id (`id`)" in line
