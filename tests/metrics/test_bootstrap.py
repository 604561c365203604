"""Bootstrap intervals in eval loops (`streammetric.metrics.bootstrap`) and the weighted sum of
bucket states they rest on (`GroupedState.replicated`): the value is the metric's own bits,
the intervals do not depend on batching, order or merges (given row ids), they agree with
SciPy's row bootstrap, and they cover the population value at the nominal rate."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.stats

import streammetric as sm
from streammetric._exceptions import ConfigError, InvalidInputError
from streammetric.metrics.bootstrap import Bootstrap, Resampling
from streammetric.metrics.state import ROWS, At, GroupedState, Spec

# --- replicated against Python ints and fractions -------------------------------------------

SPECS = {
    "total": Spec("sum", nonnegative=False),
    "rows": Spec("sum"),  # whole units (ROWS) in a sum entry
    "n": Spec("count"),
    "per_class": Spec("counts"),
    "weighted": Spec("sums", nonnegative=False),
}


def _random_state(rng: np.random.Generator, groups: int, rows: int) -> GroupedState:
    state = GroupedState(SPECS)
    codes = rng.integers(0, groups, rows)
    scale = rng.choice([1e-300, 1e-3, 1.0, 1e20, 1e300], rows)
    values = rng.normal(size=rows) * scale
    classes = rng.integers(0, 4, rows)
    state.add(
        {
            "total": values,
            "rows": ROWS,
            "n": ROWS,
            "per_class": At(classes, size=4),
            "weighted": At(classes, rng.normal(size=rows) * scale[::-1], size=4),
        },
        codes,
        groups,
    )
    return state


def _cut(value: float, scale: Fraction) -> Fraction:
    """``value`` truncated toward zero to a multiple of ``scale`` (`GroupedState.replicated`
    keeps a cell's bits down to 2**-114 of its group's largest cell)."""
    exact = Fraction(value)
    whole = abs(exact) // scale
    return (whole if exact >= 0 else -whole) * scale


def _scale(values: list[float]) -> Fraction:
    top = max((abs(v) for v in values), default=0.0)
    exponent = np.frexp(top)[1]
    return Fraction(2) ** max(int(exponent) - 114, -1074)


@pytest.mark.parametrize("seed", range(6))
def test_replicated_is_the_weighted_sum_of_the_cells(seed):
    rng = np.random.default_rng(seed)
    cells_count, buckets, replicates = 12, 8, 5
    other = _random_state(rng, cells_count, 60)
    cells = np.arange(cells_count)
    groups = np.sort(rng.integers(0, 3, cells_count))
    buckets_of = np.zeros(cells_count, dtype=np.int64)
    for g in range(3):  # distinct buckets within a group
        mine = np.flatnonzero(groups == g)
        buckets_of[mine] = rng.permutation(buckets)[: mine.shape[0]]
    weights = rng.integers(0, 6, (replicates, buckets))
    out = other.replicated(cells, groups, buckets_of, weights)
    products: dict[bytes, np.ndarray] = {}  # shared, as by the metrics of a chunk
    everything = np.arange(out.size)
    for _ in range(2):  # the second time, every whole entry's product is taken from the first
        again = other.replicated(cells, groups, buckets_of, weights, products)
        assert again.columns(everything) == out.columns(everything)
    assert products  # the whole entries' products, kept
    alone = [other.state(c) for c in range(cells_count)]
    for g in range(int(groups.max()) + 1):
        mine = np.flatnonzero(groups == g)
        totals = [alone[c]["total"].value for c in mine]
        per_position = [[alone[c]["weighted"][k].value for c in mine] for k in range(4)]
        for r in range(replicates):
            state = out.state(g * replicates + r)
            w = [int(weights[r, buckets_of[c]]) for c in mine]
            scale = _scale(totals)
            expected = sum(
                (wi * _cut(v, scale) for wi, v in zip(w, totals, strict=True)), Fraction(0)
            )
            assert state["total"].value == float(expected)
            rows = sum(wi * int(alone[c]["rows"].value) for wi, c in zip(w, mine, strict=True))
            assert state["rows"].value == float(rows)
            assert state["n"] == sum(wi * alone[c]["n"] for wi, c in zip(w, mine, strict=True))
            counts = [0] * 4
            for wi, c in zip(w, mine, strict=True):
                for k, count in enumerate(alone[c]["per_class"].tolist()):
                    counts[k] += wi * count
            got = state["per_class"].tolist() + [0] * (4 - state["per_class"].size)
            assert got == counts
            for k in range(4):
                scale = _scale(per_position[k])
                expected = sum(
                    (wi * _cut(v, scale) for wi, v in zip(w, per_position[k], strict=True)),
                    Fraction(0),
                )
                assert state["weighted"][k].value == float(expected)


def test_replicated_keeps_every_bit_of_cells_of_one_magnitude():
    """Cells within 2**40 of each other: the slices (114 bits below the largest) hold every
    bit of each, so a replicate is the exact weighted sum of the cells' rounded sums."""
    rng = np.random.default_rng(9)
    state = GroupedState({"total": Spec("sum", nonnegative=False)})
    values = rng.normal(size=40) * 10.0 ** rng.integers(-5, 6, 40)
    state.add({"total": values}, np.arange(40), 40)
    weights = rng.integers(0, 4, (3, 40))
    out = state.replicated(np.arange(40), np.zeros(40, dtype=np.int64), np.arange(40), weights)
    for r in range(3):
        expected = sum((int(weights[r, k]) * Fraction(values[k]) for k in range(40)), Fraction(0))
        assert out.state(r)["total"].value == float(expected)
    assert [state.state(k)["total"].value for k in range(40)] == values.tolist()  # untouched


@pytest.mark.parametrize(
    "values",
    [
        np.arange(1.0, 41.0),  # whole numbers: every bit in the first slice
        np.linspace(0.5, 1.0, 40),  # within 2**23 of the largest: two slices
        np.r_[1e-30, np.ones(39)],  # a cell far below the largest: three slices
        -np.geomspace(1e-3, 1e3, 40),
    ],
    ids=["one-slice", "two-slices", "three-slices", "negative"],
)
def test_replicated_takes_as_many_slices_as_the_cells_need(values):
    """Slices that would hold nothing are not taken: a replicate is the same weighted sum of
    the cells (cut 114 bits below the group's largest) whether one, two or three are."""
    rng = np.random.default_rng(3)
    state = GroupedState({"total": Spec("sum", nonnegative=False)})
    state.add({"total": values}, np.arange(40), 40)
    weights = rng.integers(0, 4, (5, 40))
    out = state.replicated(np.arange(40), np.zeros(40, dtype=np.int64), np.arange(40), weights)
    scale = _scale(values.tolist())
    for r in range(5):
        expected = sum(
            (int(weights[r, k]) * _cut(float(values[k]), scale) for k in range(40)), Fraction(0)
        )
        assert out.state(r)["total"].value == float(expected)


# --- Bootstrap ---------------------------------------------------------------------------------


def _classification(rows: int, seed: int, classes: int = 3):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(classes), rows)
    labels = (rng.random(rows)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    return np.minimum(labels, classes - 1), probs


F1_PER_CLASS = dict(average=None, class_type="multiclass", num_classes=3)
MAKERS = {
    "ce": lambda: sm.create("ce"),
    "acc": lambda: sm.create("acc"),
    "ce+acc": lambda: sm.create(["ce", "acc"]),
    "f1-per-class": lambda: sm.F1(**F1_PER_CLASS),
    "confusion-matrix": lambda: sm.create("confusion_matrix"),
}


def _same(a, b) -> bool:
    """The same names and the same value bits (floats, lists, arrays)."""
    return repr(_bits(a)) == repr(_bits(b))


def _bits(value):
    if isinstance(value, (list, tuple)):
        return [_bits(v) for v in value]
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, float):
        return np.float64(value).tobytes()
    return value


@pytest.mark.parametrize("name", list(MAKERS))
def test_get_is_the_metric_updated_alone(name):
    labels, probs = _classification(1500, seed=1)
    metric, boot = MAKERS[name](), Bootstrap(MAKERS[name](), replicates=50)
    for start in range(0, 1500, 400):
        metric.update(labels[start : start + 400], probs[start : start + 400])
        boot.update(labels[start : start + 400], probs[start : start + 400])
    assert _same(boot.get(), metric.get())
    names, lower, upper = boot.get_interval()
    assert names == metric.get()[0]
    value = metric.get()[1]
    flat = [np.ravel(np.asarray(x, dtype=float)) for x in (lower, value, upper)]
    for lo, v, hi in zip(*flat, strict=True):
        assert lo <= v <= hi and lo < hi


def test_get_with_sample_weights_is_the_metric_updated_alone():
    labels, probs = _classification(800, seed=2)
    weights = np.random.default_rng(2).random(800)
    metric, boot = sm.create(["ce", "acc"]), Bootstrap(sm.create(["ce", "acc"]), replicates=20)
    metric.update(labels, probs, weights)
    boot.update(labels, probs, weights, sample_ids=np.arange(800))
    assert _same(boot.get(), metric.get())


@pytest.mark.parametrize("ids", ["int", "str"])
def test_with_ids_order_and_batching_do_not_change_the_bits(ids):
    labels, probs = _classification(3000, seed=3)
    row_ids = np.arange(3000) * 7 + 11 if ids == "int" else np.array([f"r{i}" for i in range(3000)])
    first = Bootstrap(sm.create(["ce", "acc"]), replicates=300, seed=4)
    first.update(labels, probs, sample_ids=row_ids)
    order = np.random.default_rng(5).permutation(3000)
    second = Bootstrap(sm.create(["ce", "acc"]), replicates=300, seed=4)
    for part in np.array_split(order, [1, 17, 900, 2000]):
        second.update(labels[part], probs[part], sample_ids=row_ids[part])
    assert _same(first.get_interval(), second.get_interval())
    # the value (a sum in another order) is the same bits too
    assert _same(first.get(), second.get())
    other_seed = Bootstrap(sm.create(["ce", "acc"]), replicates=300, seed=5)
    other_seed.update(labels, probs, sample_ids=row_ids)
    assert not _same(first.get_interval(), other_seed.get_interval())
    assert _same(first.get(), other_seed.get())


def test_merge_of_two_halves_is_one_object_over_all_rows():
    labels, probs = _classification(2000, seed=6)
    ids = np.arange(2000)
    whole = Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=1)
    whole.update(labels, probs, sample_ids=ids)
    a = Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=1)
    b = Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=1)
    a.update(labels[1000:], probs[1000:], sample_ids=ids[1000:])
    b.update(labels[:1000], probs[:1000], sample_ids=ids[:1000])
    assert a.merge(b) is a
    assert a.num_rows == 2000
    assert _same(a.get(), whole.get()) and _same(a.get_interval(), whole.get_interval())
    with pytest.raises(ConfigError):
        a.merge(Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=2))


def test_without_ids_rows_are_known_by_position_and_reset_forgets():
    labels, probs = _classification(1000, seed=7)
    one = Bootstrap(sm.create("acc"), replicates=100)
    one.update(labels, probs)
    batched = Bootstrap(sm.create("acc"), replicates=100)
    for part in np.array_split(np.arange(1000), 3):  # same order, other batches
        batched.update(labels[part], probs[part])
    assert _same(one.get_interval(), batched.get_interval())
    batched.reset()
    assert batched.num_rows == 0
    batched.update(labels, probs)
    assert _same(one.get_interval(), batched.get_interval())


def test_bad_sample_ids_and_settings_are_refused():
    labels, probs = _classification(10, seed=8)
    boot = Bootstrap(sm.create("acc"), replicates=10)
    with pytest.raises(InvalidInputError, match="sample_ids"):
        boot.update(labels, probs, sample_ids=np.arange(9))
    with pytest.raises(InvalidInputError, match="sample_ids"):
        boot.update(labels, probs, sample_ids=np.linspace(0, 1, 10))
    with pytest.raises(InvalidInputError, match="sample_ids"):
        boot.update(labels, probs, sample_ids=[f"r{i}" if i else None for i in range(10)])
    for settings in [dict(level=1.0), dict(level=0.0), dict(replicates=0), dict(seed=-1)]:
        with pytest.raises(ConfigError):
            Resampling(**settings)


def test_a_metric_whose_state_is_not_a_sum_over_rows_is_refused():
    custom = sm.CustomMetric(feval=lambda label, pred: float(np.mean(label)), name="mean-label")
    with pytest.raises(ConfigError, match="not a sum over rows"):
        Bootstrap(custom)
    with pytest.raises(ConfigError, match="not a sum over rows"):
        Bootstrap(sm.create(["acc", custom]))


@pytest.mark.parametrize("metric", ["acc", "ce"])
def test_agrees_with_scipy_row_bootstrap(metric):
    """Accuracy and cross-entropy are means of row terms: SciPy's percentile bootstrap of the
    mean of those terms estimates the same interval. Both are Monte Carlo estimates with R
    replicates: a percentile bound's sd is ~2.7 sigma / sqrt(R) for a normal sampling
    distribution (sigma = width / 3.92), so two of them differ by ~0.1 sigma at R=2000; the
    buckets (1024 random clusters of ~2 rows) add a relative error of the width of about
    sqrt(1/(2*1024)) ~ 2%. Tolerance: 0.5 sigma per bound, 10% on the width."""
    rows, replicates = 2000, 2000
    labels, probs = _classification(rows, seed=10)
    if metric == "acc":
        terms = (probs.argmax(axis=1) == labels).astype(np.float64)
    else:
        terms = -np.log(probs[np.arange(rows), labels])
    boot = Bootstrap(sm.create(metric), replicates=replicates, seed=3)
    boot.update(labels, probs)
    assert boot.get()[1] == pytest.approx(terms.mean(), rel=1e-12)
    _, lower, upper = boot.get_interval()
    reference = scipy.stats.bootstrap(
        (terms,),
        np.mean,
        n_resamples=replicates,
        method="percentile",
        confidence_level=0.95,
        vectorized=True,
        random_state=np.random.default_rng(0),
    ).confidence_interval
    width = reference.high - reference.low
    sigma = width / 3.92
    assert abs(lower - reference.low) < 0.5 * sigma, (lower, reference)
    assert abs(upper - reference.high) < 0.5 * sigma, (upper, reference)
    assert abs((upper - lower) / width - 1) < 0.10
    # and the interval is not trivially wide: about 3.92 standard errors of the mean
    standard_error = terms.std(ddof=1) / np.sqrt(rows)
    assert abs((upper - lower) / (3.92 * standard_error) - 1) < 0.10


@pytest.mark.slow  # ~6 s alone, up to ~15 s on a busy 2-core machine: scheduled first
def test_coverage_of_a_calibrated_classifier():
    """Probabilities p ~ Dirichlet(1, 1, 1) (uniform on the simplex), the label drawn from p:
    a calibrated classifier whose population values are known exactly. Accuracy is
    E[max p] = H_3 / 3 = 11/18 (the mean largest spacing of 2 uniform points on [0, 1]); the
    cross-entropy E[-log p_y] = E[entropy of p] = digamma(4) - digamma(2) = 1/2 + 1/3 = 5/6.

    400 independent datasets of 400 rows, each with its own seed, 200 replicates. A percentile
    interval from R = 200 replicates covers a little less than its level (its bounds are
    noisy order statistics): the textbook row bootstrap (NumPy, multinomial resampling) at
    R = 200 covered 0.929 (accuracy) and 0.938 (cross-entropy) of 1000 such datasets, at
    R = 2000 0.945 and 0.943. So the expected rate here is ~0.935, and the number of
    intervals that cover is Binomial(400, ~0.935), sd sqrt(0.935 * 0.065 / 400) = 0.0123:
    [0.90, 0.97] is that rate -2.8/+2.8 sd (a correct method falls outside with probability
    < 1%; the data are fixed by the seed, so the test is deterministic). A method whose
    intervals are too narrow by 25% (coverage ~0.86) or too wide by 50% (~0.997) fails. The
    same datasets' textbook bootstrap (R = 200) is computed here too: the two rates, on the
    same data, agree within 0.03 (their difference is only the resampling noise)."""
    datasets, rows, classes = 400, 400, 3
    population = {"accuracy": 11 / 18, "cross-entropy": 5 / 6}
    rng = np.random.default_rng(2026)
    probs = rng.dirichlet(np.ones(classes), (datasets, rows))
    cumulative = np.cumsum(probs, axis=2)
    labels = np.minimum((rng.random((datasets, rows))[..., None] > cumulative).sum(axis=2), 2)
    # the simulation itself: the sample means are close to the population values
    accuracy = (probs.argmax(axis=2) == labels).mean()
    assert abs(accuracy - population["accuracy"]) < 4 * np.sqrt(0.24 / (datasets * rows))
    covered = {name: 0 for name in population}
    widths = {name: [] for name in population}
    for d in range(datasets):
        boot = Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=d)
        boot.update(labels[d], probs[d])
        names, lower, upper = boot.get_interval()
        for name, lo, hi in zip(names, lower, upper, strict=True):
            covered[name] += lo <= population[name] <= hi
            widths[name].append(hi - lo)
    rates = {name: count / datasets for name, count in covered.items()}
    for name, rate in rates.items():
        assert 0.90 <= rate <= 0.97, (rates, np.mean(widths[name]))
    terms = {
        "accuracy": (probs.argmax(axis=2) == labels).astype(np.float64),
        "cross-entropy": -np.log(np.take_along_axis(probs, labels[..., None], axis=2)[..., 0]),
    }
    textbook = {name: 0 for name in population}
    resample = np.random.default_rng(1)
    for d in range(datasets):
        rows_drawn = resample.integers(0, rows, (200, rows))
        for name, values in terms.items():
            means = values[d][rows_drawn].mean(axis=1)
            low, high = np.quantile(means, [0.025, 0.975])
            textbook[name] += low <= population[name] <= high
    for name in population:
        assert abs(rates[name] - textbook[name] / datasets) <= 0.03, (rates, textbook)
    # the widths are about 3.92 standard errors of the mean row term (sd of the hits:
    # sqrt(p(1-p)); of -log p_y: computed from the pooled sample)
    expected = {
        "accuracy": 3.92 * np.sqrt(11 / 18 * 7 / 18 / rows),
        "cross-entropy": 3.92 * terms["cross-entropy"].std() / np.sqrt(rows),
    }
    for name in population:
        assert abs(np.mean(widths[name]) / expected[name] - 1) < 0.05, (name, widths[name][:5])


@pytest.mark.slow  # ~5 s alone
def test_coverage_where_buckets_hold_many_rows():
    """The same classifier, 100 datasets of 30,000 rows (~29 rows a bucket: the replicates
    resample buckets, not rows). Their intervals must be as wide as the sampling distribution
    says (3.92 standard errors of the mean row term): the mean width over 100 datasets has
    ~0.5% of noise (each width's ~5% from 200 replicates, over sqrt(100)), so 3% catches a
    bucket scheme that loses or adds variance; and they cover at a rate consistent with 0.95
    (Binomial(100, ~0.94): sd 0.024; [0.87, 1.0] is -3 sd). scripts/coverage.py measures more
    datasets, and the textbook row bootstrap beside it."""
    datasets, rows = 100, 30_000
    population = {"accuracy": 11 / 18, "cross-entropy": 5 / 6}
    rng = np.random.default_rng(7)
    covered = {name: 0 for name in population}
    ratios = {name: [] for name in population}
    for d in range(datasets):
        probs = rng.dirichlet(np.ones(3), rows)
        labels = np.minimum((rng.random(rows)[:, None] > np.cumsum(probs, axis=1)).sum(1), 2)
        boot = Bootstrap(sm.create(["ce", "acc"]), replicates=200, seed=d)
        boot.update(labels, probs, sample_ids=np.arange(rows))
        names, lower, upper = boot.get_interval()
        losses = -np.log(probs[np.arange(rows), labels])
        expected = {
            "accuracy": 3.92 * np.sqrt(11 / 18 * 7 / 18 / rows),
            "cross-entropy": 3.92 * losses.std() / np.sqrt(rows),
        }
        for name, lo, hi in zip(names, lower, upper, strict=True):
            covered[name] += lo <= population[name] <= hi
            ratios[name].append((hi - lo) / expected[name])
    for name in population:
        assert abs(np.mean(ratios[name]) - 1) < 0.03, (name, np.mean(ratios[name]))
        assert 0.87 <= covered[name] / datasets <= 1.0, covered


def test_no_rows_give_nan_intervals_like_the_value():
    boot = Bootstrap(sm.create(["ce", "acc"]), replicates=10)
    names, lower, upper = boot.get_interval()
    assert names == ["cross-entropy", "accuracy"]
    assert np.isnan(lower).all() and np.isnan(upper).all()
    per_class = Bootstrap(sm.F1(**F1_PER_CLASS), replicates=10)
    _, value = per_class.get()
    _, lower, upper = per_class.get_interval()
    assert np.shape(lower) == np.shape(upper) == np.shape(value)
    assert np.isnan(lower).all() and np.isnan(upper).all()


def test_intervals_are_the_brute_force_weighted_replicates():
    """A reference from the definition: row i's weight in replicate r is
    W[r, bucket(hash(id_i))]; a replicate's accuracy is sum(w * hit) / sum(w) (ints: exact,
    one rounding) and its cross-entropy sum(w * term) / sum(w); the bounds are NumPy's
    quantiles of the replicates at (1 -+ level) / 2."""
    from streammetric.functional.resample import buckets_of, hash_ids, poisson_weights

    rows, replicates, level, seed = 3000, 300, 0.9, 12
    labels, probs = _classification(rows, seed=13)
    ids = np.array([f"row-{i}" for i in range(rows)])
    boot = Bootstrap(sm.create(["ce", "acc"]), level=level, replicates=replicates, seed=seed)
    boot.update(labels, probs, sample_ids=ids)
    _, lower, upper = boot.get_interval()
    weights = poisson_weights(seed, replicates)[:, buckets_of(hash_ids(ids, seed))]  # (R, n)
    hits = (probs.argmax(axis=1) == labels).astype(np.int64)
    accuracy = (weights @ hits) / weights.sum(axis=1)
    alpha = (1 - level) / 2
    assert lower[1] == np.quantile(accuracy, alpha) and upper[1] == np.quantile(accuracy, 1 - alpha)
    terms = -np.log(probs[np.arange(rows), labels])
    cross_entropy = (weights @ terms) / weights.sum(axis=1)
    assert lower[0] == pytest.approx(np.quantile(cross_entropy, alpha), rel=1e-12)
    assert upper[0] == pytest.approx(np.quantile(cross_entropy, 1 - alpha), rel=1e-12)


def test_the_engine_gives_the_bits_of_bootstrap_with_the_same_ids(tmp_path):
    """``eval --ci --id`` and `Bootstrap` with ``sample_ids`` hash the same ids into the same
    buckets with the same weights: the same intervals, bit for bit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from streammetric.engine import Job, run_job
    from streammetric.io import ColumnSpec

    labels, probs = _classification(2500, seed=14, classes=4)
    probs = probs.astype(np.float32)
    ids = np.arange(2500) * 5 - 1000
    flat = pa.array(probs.reshape(-1))
    table = pa.table(
        {"label": labels, "probs": pa.FixedSizeListArray.from_arrays(flat, 4), "rid": ids}
    )
    pq.write_table(table, tmp_path / "preds.parquet", row_group_size=300)
    resampling = Resampling(0.8, 150, 3)
    job = Job(
        paths=[str(tmp_path)],
        metrics=["ce", "acc"],
        columns=ColumnSpec(labels="label", preds="probs", ids="rid"),
        resampling=resampling,
    )
    result = run_job(job, threads=2).to_dict()
    boot = Bootstrap(sm.create(["ce", "acc"]), level=0.8, replicates=150, seed=3)
    boot.update(labels, probs, sample_ids=ids)
    names, lower, upper = boot.get_interval()
    assert names == list(result["intervals"])
    for name, lo, hi in zip(names, lower, upper, strict=True):
        assert result["intervals"][name] == {"lower": lo, "upper": hi}
        assert repr(result["metrics"][name]) == repr(boot.get()[1][names.index(name)])


def test_lists_of_arrays_are_pairs_as_the_metrics_update_takes_them():
    """MXNet-style lists pair element-wise: the rows of every pair count (a list of one pair
    was one row), with the positions of the concatenated arrays."""
    rng = np.random.default_rng(7)
    y, p = rng.random(200), rng.random(200)
    whole = sm.Bootstrap(sm.create("mae"), replicates=50)
    whole.update(y, p)
    one = sm.Bootstrap(sm.create("mae"), replicates=50)
    one.update([y], [p])
    two = sm.Bootstrap(sm.create("mae"), replicates=50)
    two.update([y[:80], y[80:]], [p[:80], p[80:]])
    assert one.num_rows == two.num_rows == 200
    assert repr(one.get_interval()) == repr(two.get_interval()) == repr(whole.get_interval())
    with pytest.raises(sm.InvalidInputError, match="not lists of them") as raised:
        two.update([y[:2], y[2:4]], [p[:2], p[2:4]], sample_ids=[1, 2, 3, 4])
    assert raised.value.argument == "sample_ids" and two.num_rows == 200


def test_a_replicate_without_rows_has_no_per_class_value():
    """A replicate that drew no row is left out of a per-class interval, as of a number's
    (it scored zero_division, 0, for every class: lower bounds of 0 for one right row)."""
    for metric in (
        sm.Recall(average=None, class_type="multiclass"),
        sm.create("confusion_matrix", normalize="all"),  # counts vary with the weights
    ):
        boot = sm.Bootstrap(metric, replicates=200, seed=0)
        boot.update(np.array([2]), np.array([[0.1, 0.2, 0.7]]), sample_ids=np.array([5]))
        (_, value), (_, lower, upper) = boot.get(), boot.get_interval()
        assert np.array_equal(lower, value) and np.array_equal(upper, value)
