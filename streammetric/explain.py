"""Every convention's cross-entropy side by side, and why each differs from ``exact``.

>>> report = explain([1, 0], [[0, 1], [0, 1]])
>>> report.value("exact"), report.value("keras"), report.value("sklearn")
(inf, 8.059047875479163, 18.021826694558577)
>>> print(report.result("keras").sentence)
Keras clips probabilities to [1e-7, 1-1e-7]: 1 row had p=0 for its true class, so its loss is
16.118 instead of inf.

``to_dict()`` is JSON-serialisable: non-finite values are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streammetric._exceptions import InvalidInputError
from streammetric.accumulate import ExactSum
from streammetric.conventions import Convention, get_convention, list_conventions, rules_phrase
from streammetric.functional._ce_inputs import row_error, sample_weights, to_numpy
from streammetric.functional._validation import as_sample_weight
from streammetric.functional.losses import (
    DIAGNOSTIC_KEYS,
    LossTerms,
    _binary_cross_entropy_update,
    _cross_entropy_update,
)

__all__ = ["ConventionResult", "Explanation", "StreamedConvention", "explain", "streamed"]

_DIAGNOSTIC_PHRASES = {
    "num_true_prob_zero": "{} with p=0 for the true class",
    "num_true_prob_one": "{} with p=1 for the true class",
    "num_guarded": "{} changed by the guard",
    "num_not_normalized": "{} not summing to 1",
    "num_out_of_range": "{} outside [0, 1]",
    "num_nonfinite": "{} NaN/inf",
    "num_looks_like_logits": "{} looking like logits",
    "num_ignored": "{} ignored",
    "num_invalid": "{} invalid under exact",
}
_VALUE_KEYS = ("num_guarded", "num_out_of_range", "num_nonfinite")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class ConventionResult:
    """One convention's weighted mean (``None`` when its rules reject the data)."""

    name: str
    display_name: str
    value: float | None
    error: str | None
    dtype: str
    sentence: str
    diagnostics: dict[str, int]


@dataclass(frozen=True)
class Explanation:
    """Conventions side by side for one batch, with data diagnostics and sentences."""

    kind: str
    from_logits: bool
    rows: int
    diagnostics: dict[str, int]
    results: tuple[ConventionResult, ...]

    def result(self, name: str) -> ConventionResult:
        """The result of convention ``name``."""
        wanted = get_convention(name).name
        return next(result for result in self.results if result.name == wanted)

    def value(self, name: str) -> float | None:
        """The weighted mean under convention ``name`` (None if rejected)."""
        return self.result(name).value

    def to_dict(self, *, nonfinite_strings: bool = True) -> dict[str, Any]:
        """JSON-serialisable form; inf/NaN values become the strings "inf", "-inf", "nan"
        (``nonfinite_strings=False``: they stay floats, as a result's metrics)."""
        number = _json_number if nonfinite_strings else (lambda value: value)
        return {
            "kind": self.kind,
            "from_logits": self.from_logits,
            "rows": self.rows,
            "diagnostics": dict(self.diagnostics),
            "conventions": {
                result.name: {
                    "display_name": result.display_name,
                    "value": number(result.value),
                    "error": result.error,
                    "dtype": result.dtype,
                    "sentence": result.sentence,
                    "diagnostics": dict(result.diagnostics),
                }
                for result in self.results
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """The explanation `to_dict` wrote (a JSON result's ``"conventions"``)."""
        return cls(
            kind=str(data["kind"]),
            from_logits=bool(data["from_logits"]),
            rows=int(data["rows"]),
            diagnostics={str(k): int(v) for k, v in data["diagnostics"].items()},
            results=tuple(
                ConventionResult(
                    name=str(name),
                    display_name=str(entry["display_name"]),
                    value=None if entry["value"] is None else float(entry["value"]),
                    error=entry["error"],
                    dtype=str(entry["dtype"]),
                    sentence=str(entry["sentence"]),
                    diagnostics={str(k): int(v) for k, v in entry["diagnostics"].items()},
                )
                for name, entry in data["conventions"].items()
            ),
        )

    def to_text(self) -> str:
        """An aligned table of the values, the diagnostics and one sentence per convention."""
        header = ("convention", "dtype", "mean")
        rows = [
            (r.name, r.dtype, repr(r.value) if r.error is None else f"error: {r.error}")
            for r in self.results
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
        lines = [
            f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}".rstrip()
            for cells in [header, *rows]
        ]
        counts = [
            _DIAGNOSTIC_PHRASES[key].format(
                _plural(count, "value" if key in _VALUE_KEYS else "row")
            )
            for key, count in self.diagnostics.items()
            if count
        ]
        lines.append("")
        kind = f"{self.kind}, from logits" if self.from_logits else self.kind
        lines.append(f"{_plural(self.rows, 'row')} ({kind}): " + ("; ".join(counts) or "clean"))
        lines.append("")
        lines.extend(f"- {result.name}: {result.sentence}" for result in self.results)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _row_values(terms: LossTerms) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(terms.denominator != 0, terms.numerator / terms.denominator, 0.0)


@dataclass(frozen=True)
class _Facts:
    """What a convention's sentence says of its result: the value, why it rejects the data
    (None: it does not), the diagnostics, the rows whose loss is inf, and the rows inf under
    exact that it makes finite (with their losses when each row's is known)."""

    value: float
    error: str | None
    diagnostics: dict[str, int]
    inf_rows: int = 0
    rescued: int = 0
    rescued_costs: np.ndarray | None = None


def _facts(terms: LossTerms, value: float, exact_inf: np.ndarray | None) -> _Facts:
    """The facts of one batch's terms; ``exact_inf``: the rows whose loss is inf under exact
    and that exact counts (None: these are exact's terms, or exact rejects the data)."""
    rows = _row_values(terms)
    rescued = None
    if exact_inf is not None:
        rescued = exact_inf & np.isfinite(rows)
    return _Facts(
        value,
        None if terms.invalid_reason is None else str(terms.invalid_reason),
        dict(terms.diagnostics),
        int(np.count_nonzero(np.isinf(rows))),
        0 if rescued is None else int(np.count_nonzero(rescued)),
        None if rescued is None else rows[rescued],
    )


def _cost_phrase(count: int, values: np.ndarray | None) -> str:
    if values is None:
        return "so " + ("its loss is" if count == 1 else "their losses are") + " finite, not inf"
    if len(values) == 1:
        return f"so its loss is {values[0]:.3f} instead of inf"
    if np.all(np.round(values, 3) == np.round(values[0], 3)):
        return f"so each costs {values[0]:.3f} instead of inf"
    return f"so they cost {values.min():.3f} to {values.max():.3f} instead of inf"


def _sentence(
    conv: Convention,
    facts: _Facts,
    exact: _Facts,
    *,
    phrase: str,
    kind: str,
    dtype: np.dtype | None,
) -> str:
    """One sentence saying why ``conv`` differs from exact on this data."""
    name = conv.display_name
    target = "label" if kind == "binary" else "class"
    value, exact_value = facts.value, exact.value
    if facts.error is not None:
        return f"{name} rejects this data: {facts.error}."
    if conv.name == "exact":
        if math.isinf(value):
            return (
                f"The definition itself: {_plural(facts.inf_rows, 'row')} had p=0 for the true "
                f"{target}, so the mean is inf."
            )
        stable = "log-sigmoid" if kind == "binary" else "log-softmax"
        return (
            f"The mathematical definition in float64 (stable {stable}, no epsilon): the reference."
        )
    if exact.error is not None:
        return f"exact rejects this data; {name} {phrase} and gets {value:.6g}."
    if facts.rescued:
        owner = "its" if facts.rescued == 1 else "their"
        return (
            f"{name} {phrase}: {_plural(facts.rescued, 'row')} had p=0 for {owner} true {target}, "
            f"{_cost_phrase(facts.rescued, facts.rescued_costs)}."
        )
    if math.isnan(value):
        return f"{name} {phrase}, which gives NaN on this data (log of a negative number or NaN)."
    if value == exact_value:
        if math.isinf(value):
            return f"{name} {phrase}, so like exact it gives inf when p=0 for the true {target}."
        return (
            f"{name} gives exactly the exact value here: it {phrase}, and nothing reached a guard."
        )
    difference = value - exact_value
    guarded = facts.diagnostics.get("num_guarded", 0)
    unnormalized = facts.diagnostics.get("num_not_normalized", 0)
    causes = []
    if guarded:
        causes.append(f"the guard changed {_plural(guarded, 'value')}")
    if unnormalized and "renormalises" in phrase:
        causes.append(f"{_plural(unnormalized, 'row')} did not sum to 1")
    if not causes:
        rounding = "float32 rounding" if dtype == np.float32 else "rounding"
        return f"{name} {phrase}: it differs from exact only by {rounding} ({difference:+.2g})."
    return f"{name} {phrase}: {' and '.join(causes)}, which moves the mean by {difference:+.4g}."


def _ordered(conventions: Sequence[str | Convention] | None) -> list[Convention]:
    """``exact`` first, then the others (every registered one for None)."""
    chosen = [
        get_convention(c) for c in (conventions if conventions is not None else list_conventions())
    ]
    return [get_convention("exact")] + [c for c in chosen if c.name != "exact"]


def _data_counts(diagnostics: dict[str, int]) -> dict[str, int]:
    """The counts that describe the data (the guard's count belongs to a convention)."""
    return {key: diagnostics.get(key, 0) for key in DIAGNOSTIC_KEYS if key != "num_guarded"}


def explain(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    sample_weight: Any = None,
    label_smoothing: float = 0.0,
    binary: bool | None = None,
    conventions: Sequence[str | Convention] | None = None,
) -> Explanation:
    """Weighted mean cross-entropy under each convention, the diagnostics, and the reasons.

    ``binary=None`` picks binary cross-entropy when ``y_pred`` is 1-D or has one column.
    ``conventions=None`` means every registered convention (``exact`` is always shown first).

    >>> round(explain([0, 1], [0.2, 1.0]).value("torch"), 6)
    0.111572
    """
    pred = to_numpy(y_pred, "preds")
    if binary is None:
        binary = pred.ndim == 1 or pred.shape[-1] == 1
    kind = "binary" if binary else "categorical"
    ordered = _ordered(conventions)

    def terms_for(conv: Convention) -> LossTerms:
        if binary:
            return _binary_cross_entropy_update(
                y_true,
                pred,
                convention=conv,
                from_logits=from_logits,
                label_smoothing=label_smoothing,
            )
        return _cross_entropy_update(
            y_true, pred, convention=conv, from_logits=from_logits, label_smoothing=label_smoothing
        )

    def mean(terms: LossTerms) -> float:
        numerator = terms.numerator if weights is None else weights * terms.numerator
        denominator = terms.denominator if weights is None else weights * terms.denominator
        return ExactSum.from_values(numerator).ratio(ExactSum.from_values(denominator))

    exact_terms = terms_for(ordered[0])
    weights = _row_weights(sample_weight, exact_terms.batch_shape)
    exact = _facts(exact_terms, mean(exact_terms), None)
    exact_inf = None
    if exact_terms.invalid_reason is None:  # once, not per convention
        exact_inf = np.isinf(_row_values(exact_terms)) & ~exact_terms.invalid
    sparse = not binary and to_numpy(y_true, "labels").ndim < pred.ndim
    results = []
    for conv in ordered:
        if conv is ordered[0]:
            facts = exact
        else:
            terms = terms_for(conv)
            facts = _facts(terms, mean(terms), exact_inf)
        results.append(
            _result(conv, facts, exact, kind, sparse, from_logits, conv.compute_dtype(pred.dtype))
        )
    return Explanation(
        kind=kind,
        from_logits=from_logits,
        rows=len(exact_terms.numerator),
        diagnostics=_data_counts(exact.diagnostics),
        results=tuple(results),
    )


def _row_weights(sample_weight: Any, batch_shape: tuple[int, ...]) -> np.ndarray | None:
    """The flat weight of each row of ``batch_shape`` (None: unweighted), each finite and >= 0
    as `as_sample_weight` (the metrics', thus ``eval``'s, rule) wants: a bad value is an
    `InvalidInputError` of argument ``sample_weight`` with its row in ``sample_weight`` (a
    tuple of indices when the weights have several dimensions)."""
    if sample_weight is None:
        return None
    given = to_numpy(sample_weight, "sample_weight").astype(np.float64, copy=False)
    try:
        as_sample_weight(given, given.size)
    except InvalidInputError as exc:
        if not isinstance(exc.row, int) or exc.rule is None:
            raise
        sample_weights(np.zeros_like(given), batch_shape)  # a wrong shape first, as elsewhere
        raise row_error("sample_weight", exc.row, given.shape, exc.rule, exc.value) from None
    return sample_weights(given, batch_shape)  # its shape rule, and per-row weights broadcast


def _result(
    conv: Convention,
    facts: _Facts,
    exact: _Facts,
    kind: str,
    sparse: bool,
    from_logits: bool,
    dtype: np.dtype | None,
) -> ConventionResult:
    """One convention's line of the table (``dtype`` None: the convention's dtype rule)."""
    phrase = rules_phrase(
        conv,
        kind=kind,
        sparse=sparse,
        from_logits=from_logits,
        dtype=dtype,
        renormalization=facts.diagnostics.get("num_not_normalized", 0) > 0,
    )
    return ConventionResult(
        name=conv.name,
        display_name=conv.display_name,
        value=None if facts.error is not None else facts.value,
        error=facts.error,
        dtype=_DTYPE_RULES[conv.dtype] if dtype is None else dtype.name,
        sentence=_sentence(conv, facts, exact, phrase=phrase, kind=kind, dtype=dtype),
        diagnostics=dict(facts.diagnostics),
    )


#: the dtype column of a streamed explanation, which knows the rule, not the input's dtype
_DTYPE_RULES = {"float64": "float64", "float32": "float32", "input": "as input"}


@dataclass(frozen=True)
class StreamedConvention:
    """One convention's totals over a stream (what a metric's state holds of it): its value,
    its diagnostic counts, and the rows its rules rejected (left out of its value)."""

    convention: Convention
    value: float
    diagnostics: dict[str, int]
    rejected: int


def streamed(
    entries: Sequence[StreamedConvention],
    *,
    kind: str,
    from_logits: bool,
    sparse: bool,
    rows: int,
    dtype: np.dtype | None = None,
) -> Explanation:
    """The `Explanation` of totals kept over a stream (a cross-entropy metric's ``explain()``,
    whose state keeps each convention's sums): the same table as `explain`'s, with sentences
    from the counts alone (no row's own loss is kept), and a convention that rejected rows
    shown as rejecting the data. ``dtype``: the input's (None when it varied: each
    convention's dtype rule is shown). ``entries`` must hold ``exact``."""
    exact_entry = next(e for e in entries if e.convention.name == "exact")
    exact = _streamed_facts(exact_entry, None)
    ordered = [exact_entry] + [e for e in entries if e is not exact_entry]
    results = tuple(
        _result(
            entry.convention,
            exact if entry is exact_entry else _streamed_facts(entry, exact),
            exact,
            kind,
            sparse,
            from_logits,
            None if dtype is None else entry.convention.compute_dtype(dtype),
        )
        for entry in ordered
    )
    return Explanation(
        kind=kind,
        from_logits=from_logits,
        rows=rows,
        diagnostics=_data_counts(exact_entry.diagnostics),
        results=results,
    )


def _streamed_facts(entry: StreamedConvention, exact: _Facts | None) -> _Facts:
    error = None
    if entry.rejected:
        error = f"its rules reject {_plural(entry.rejected, 'row')} of these"
    zero = entry.diagnostics.get("num_true_prob_zero", 0)
    inf_rows = zero if math.isinf(entry.value) else 0
    rescued = 0
    if exact is not None and math.isinf(exact.value) and math.isfinite(entry.value):
        rescued = exact.inf_rows
    return _Facts(entry.value, error, dict(entry.diagnostics), inf_rows, rescued, None)
