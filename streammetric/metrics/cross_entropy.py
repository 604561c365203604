"""The cross-entropy family: CrossEntropy, NegativeLogLikelihood, BinaryCrossEntropy, Perplexity.

Each takes ``convention=`` (``exact`` by default; ``keras``, ``tf_keras``, ``torch``, ``mxnet``,
``sklearn`` or a user :class:`~streammetric.conventions.Convention`), ``from_logits=``, and keeps
exact sums of ``w * numerator`` and ``w * denominator`` (see
:class:`~streammetric.functional.losses.LossTerms`), so the value is

    sum_i w_i * loss_i * cw_i / sum_i w_i * cw_i        (cw: torch-style class weights)

the same bits whatever the batching. Diagnostics (true-class probability 0 or 1, guarded values,
rows not summing to 1, values outside [0, 1], NaN/inf, logits passed as probabilities, ignored and
invalid rows) are counted per update and globally: ``m.diagnostics()``.

>>> m = CrossEntropy(convention="mxnet")
>>> preds = np.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]], dtype=np.float32)
>>> name, value = m.update([np.array([0, 1, 1])], [preds]).get()
>>> name, round(value, 7)  # MXNet 1.9.1: 0.5715994834899902 (its float32 batch sum)
('cross-entropy', 0.5715995)
>>> CrossEntropy().update(np.array([1, 0]), np.array([[0.0, 1.0], [0.0, 1.0]])).get()
('cross-entropy', inf)
>>> CrossEntropy(convention="keras").update(np.array([1, 0]), np.array([[0.0, 1.0], [0.0, 1.0]])).get()
('cross-entropy', 8.059047875479163)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._exceptions import ConfigError
from ..conventions import Convention, get_convention, list_conventions, rules_phrase
from ..functional import _ce_inputs
from ..functional._ce_core import exp, exp_float
from ..functional.losses import (
    DIAGNOSTIC_KEYS,
    LossTerms,
    _binary_cross_entropy_update,
    _cross_entropy_update,
    _fast_sparse_terms,
    _general_terms,
    _perplexity_update,
)
from ._options import check_bool, check_eps, check_int, check_number_array
from .base import EvalMetric, State, ValueNote, outcome_of, plural
from .batch import BatchStats, Stat
from .registry import alias, register
from .state import ROWS, GroupedState, Rowwise, Terms, zero_counts

if TYPE_CHECKING:
    from ..explain import Explanation

__all__ = ["BinaryCrossEntropy", "CrossEntropy", "NegativeLogLikelihood", "Perplexity"]

_POLICIES = ("raise", "skip")


class _LossMetric(EvalMetric):
    """Shared state and update of the cross-entropy family."""

    higher_is_better: ClassVar[bool | None] = False
    batch_stats = frozenset({Stat.LOSS_TERMS})

    def __init__(
        self,
        *,
        name: str,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        convention: str = "exact",
        on_invalid: str = "raise",
        explain: Any = None,
        **options: Any,
    ) -> None:
        if on_invalid not in _POLICIES:
            raise ConfigError(f"`on_invalid` must be 'raise' or 'skip', got {on_invalid!r}")
        for key, check in _OPTION_CHECKS.items():
            if key in options:
                options[key] = check(options[key], key)
        self.convention: Convention = self._resolve_convention(convention, options)
        self.on_invalid = on_invalid
        self._options = {k: v for k, v in options.items() if k != "eps"}
        self.last_diagnostics: dict[str, int] = dict.fromkeys(DIAGNOSTIC_KEYS, 0)
        explained = _explained(explain, self.convention)
        #: the same loss under each other convention of ``explain`` (their sums are kept in
        #: this metric's state, entries prefixed "NAME:"), on the rows this metric counts
        self._siblings: dict[str, _LossMetric] = {
            conv.name: type(self)(convention=conv.name, on_invalid="skip", **self._options)
            for conv in explained
        }
        config_options = {k: _jsonable(v) for k, v in options.items()}
        config_options["explain"] = (
            explain if explain is None or isinstance(explain, str) else list(explain)
        )
        super().__init__(
            name,
            output_names,
            label_names,
            convention=convention,
            on_invalid=on_invalid,
            **config_options,
        )

    @staticmethod
    def _resolve_convention(convention: str, options: dict[str, Any]) -> Convention:
        if not isinstance(convention, str):
            raise ConfigError(
                f"`convention` must be a registered name (see streammetric.conventions.register_convention), got {type(convention).__name__}"
            )
        conv = get_convention(convention)
        eps = options.get("eps")
        if eps is not None:  # MXNet's CrossEntropy(eps=...): that framework's guard, this epsilon
            base = conv if conv.guard != "none" else get_convention("mxnet")
            conv = dataclasses.replace(base, name=f"{base.name}(eps={eps})", eps=float(eps))
        return conv

    def _init_states(self) -> None:
        # sum of w * numerator: negative only under a convention that lets a term be negative
        self._add_state("sum_metric", "sum", nonnegative=self._terms_nonnegative())
        self._add_state("sum_weight", "sum")  # sum of w * denominator (weights are >= 0)
        self._add_state("num_inst", "count")  # rows that count (not ignored, not invalid)
        self._add_state("num_invalid", "count")  # rows dropped by on_invalid="skip"
        self._add_state("diagnostics", "counts", size=len(DIAGNOSTIC_KEYS))
        for prefix, sibling in self._siblings.items():
            for key, spec in sibling._specs.items():
                self._add_state(
                    f"{prefix}:{key}", spec.kind, nonnegative=spec.nonnegative, size=spec.size
                )
        if self._siblings:
            self._add_state("explained_rows", "count")  # every row the conventions saw
            self._add_state("class_index_rows", "count")  # those with class-index labels
            for dtype in _NARROW:  # those whose predictions were float32 (float16)
                self._add_state(f"{dtype}_rows", "count")

    def _terms_nonnegative(self) -> bool:
        """Whether every term is >= 0: ``-log`` of a probability in [0, 1] (rows out of range
        are invalid, the guard is none or a clip into [0, 1]), weighted by weights >= 0. MXNet's
        ``-log(p + eps)`` is below 0 at p = 1, and a convention that computes out-of-range rows
        takes ``-log`` of p > 1."""
        conv = self.convention
        out_of_range = (
            conv.binary_out_of_range if self._guard_kind == "binary" else conv.out_of_range
        )
        pos_weight = self._options.get("pos_weight")
        return (
            out_of_range == "invalid"
            and conv.guard_for(self._guard_kind) in ("none", "clip")
            and (pos_weight is None or bool(np.all(np.asarray(pos_weight) >= 0)))
        )

    def _loss_terms(self, label: Any, pred: Any, ranks: bool = False) -> LossTerms:
        """This batch's terms (`Stat.LOSS_TERMS`; a `BatchStats` shares them with the
        same-configured metrics of its batch: ``ce``, ``nll_loss`` and ``perplexity`` compute
        them once). With ``ranks``, the fast path's scan also ranks the true classes."""
        sparse = self._sparse_arguments
        if sparse is not None:  # the fast path of _cross_entropy_update, called directly
            fast = _fast_sparse_terms(label, pred, *sparse, ranks)
            return fast if fast is not None else _general_terms(label, pred, *self._general)
        function, options, _ = self._call_and_key
        return function(label, pred, convention=self.convention, **options)

    @property
    def _loss_key(self) -> tuple[Any, ...]:
        """Equal for metrics whose `_loss_terms` are equal (see `BatchStats.loss_terms`)."""
        return self._call_and_key[2]

    @property
    def _ranks_in_scan(self) -> bool:
        """Whether `_loss_terms` scans with ``_fast_sparse_terms``, which can rank classes."""
        return self._sparse_arguments is not None

    @functools.cached_property
    def _call_and_key(self) -> tuple[Callable[..., LossTerms], dict[str, Any], tuple[Any, ...]]:
        function, options = self._call()
        return function, options, (function.__name__, self.convention, _hashable(options))

    @functools.cached_property
    def _sparse_arguments(self) -> tuple[Convention, Any, int | None, int, str] | None:
        """``_fast_sparse_terms``'s arguments after the batch when the update is
        ``_cross_entropy_update`` of probabilities without label smoothing (which then tries
        that fast path first, and ``_general_terms`` with `_general` if it declines), else
        None. Plain data, so the metric still pickles."""
        function, options, _ = self._call_and_key
        if (
            function is not _cross_entropy_update
            or not set(options) <= _SPARSE_OPTIONS
            or options.get("from_logits", False)
            or options.get("label_smoothing", 0.0) != 0.0
        ):
            return None
        return (
            self.convention,
            options.get("class_weight"),
            options.get("ignore_index"),
            options.get("axis", -1),
            "categorical",
        )

    @functools.cached_property
    def _general(self) -> tuple[Any, ...]:
        """``_general_terms``'s arguments after the batch (with `_sparse_arguments`)."""
        sparse = self._sparse_arguments
        assert sparse is not None
        conv, class_weight, ignore_index, axis, kind = sparse
        return (conv, False, 0.0, class_weight, ignore_index, axis, kind)

    def _call(self) -> tuple[Callable[..., LossTerms], dict[str, Any]]:
        """The functional update and its keyword arguments."""
        raise NotImplementedError

    def _batch_terms(self, batch: BatchStats) -> Terms:
        """Each row's ``w * numerator`` and ``w * denominator`` from the batch's
        `Stat.LOSS_TERMS`, whether it counts (not ignored, not invalid), whether it was skipped
        as invalid, and its diagnostics; with ``explain``, the same under each other convention
        (a row they reject leaves only their sums)."""
        own = self._own_terms(batch)
        if not self._siblings:
            return own
        terms = dict(own)
        for prefix, sibling in self._siblings.items():
            for key, term in sibling._own_terms(batch).items():
                terms[f"{prefix}:{key}"] = term
        terms["explained_rows"] = ROWS
        sparse = np.ndim(batch.labels) < np.ndim(batch.preds) and self._guard_kind != "binary"
        terms["class_index_rows"] = ROWS if sparse else None
        dtype = getattr(batch.preds, "dtype", None)
        for name in _NARROW:
            terms[f"{name}_rows"] = ROWS if dtype == name else None
        return terms

    def explain(self, scope: str = "global") -> Explanation:
        """Every convention of ``explain=`` side by side over the rows seen (since the last
        reset, or reset_local with ``scope="local"``): `streammetric.explain`'s table, kept
        exactly over a stream, mergeable, per group. A `ConfigError` without ``explain=``.

        >>> m = CrossEntropy(explain=["keras"])
        >>> e = m.update(np.array([0, 0]), np.array([[0.0, 1.0], [0.2, 0.8]])).explain()
        >>> e.value("exact"), round(e.value("keras"), 6)
        (inf, 8.863767)
        """
        state = self._global_state() if scope == "global" else self._local
        return self.explain_state(state)

    def explanation(self) -> Explanation | None:
        """`explain` when made with ``explain=`` (the engine's results carry it), else None."""
        return self.explain() if self._siblings else None

    def explain_state(self, state: State) -> Explanation:
        """`explain` of a state (one group's, say)."""
        from ..explain import StreamedConvention, streamed

        if not self._siblings:
            raise ConfigError(
                f"{self.name} keeps one convention's sums; make it with explain='all' (or a "
                "list of conventions) to set them side by side"
            )

        def entry(metric: _LossMetric, own: State) -> StreamedConvention:
            counts = _counts(own)
            return StreamedConvention(
                metric.convention, metric._compute(own), counts, int(own["num_invalid"])
            )

        entries = [entry(self, state)]
        for prefix, sibling in self._siblings.items():
            own = {key: state[f"{prefix}:{key}"] for key in sibling._specs}
            entries.append(entry(sibling, own))
        rows = int(state["explained_rows"])
        narrow = [name for name in _NARROW if state[f"{name}_rows"]]
        dtype = None  # several: each convention's rule, not one dtype
        if not narrow or (len(narrow) == 1 and state[f"{narrow[0]}_rows"] == rows):
            dtype = np.dtype(narrow[0] if narrow else np.float64)
        return streamed(
            entries,
            kind=self._guard_kind,
            from_logits=bool(self._options.get("from_logits", False)),
            sparse=bool(state["class_index_rows"]),
            rows=rows,
            dtype=dtype,
        )

    def _own_terms(self, batch: BatchStats) -> Terms:
        """`_batch_terms` of this metric's own convention."""
        terms = batch.loss_terms(self)
        weight = batch.weights
        diagnostics = terms.diagnostics
        if terms.invalid_reason is not None and self.on_invalid == "raise":
            raise terms.invalid_reason
        numerator, denominator, batch_shape = terms.numerator, terms.denominator, terms.batch_shape
        per_row = _same if len(batch_shape) <= 1 else _per_row(batch_shape)
        if weight is not None:
            row_weight = _ce_inputs.sample_weights(weight, batch_shape)
            numerator, denominator = numerator * row_weight, denominator * row_weight
        invalid = diagnostics["num_invalid"]
        all_count = not (diagnostics["num_ignored"] or invalid) and per_row is _same
        plain = weight is None and self._options.get("class_weight") is None
        # a copy when other metrics of the batch share the terms (a lone update's are its own)
        self.last_diagnostics = dict(diagnostics) if batch.shared else diagnostics
        row_diagnostics = terms.row_diagnostics
        assert row_diagnostics is not None
        return {
            "sum_metric": numerator if per_row is _same else per_row(numerator),
            "sum_weight": ROWS if plain and all_count else per_row(denominator),
            "num_inst": ROWS if all_count else per_row(_counted(terms)),
            "num_invalid": per_row(terms.invalid) if invalid else None,
            "diagnostics": _clean_diagnostics(batch_shape[0] if batch_shape else 0)
            if not any(diagnostics.values())  # no count in any row
            else _diagnostics_term(diagnostics, row_diagnostics, batch_shape),
        }

    def _add_diagnostics(self, state: State, diagnostics: dict[str, int]) -> None:
        values = [diagnostics[key] for key in DIAGNOSTIC_KEYS]
        if any(values) or state["diagnostics"].size == 0:  # a clean batch adds nothing
            counts = np.array(values, dtype=np.int64)
            state["diagnostics"] = (
                counts if state["diagnostics"].size == 0 else state["diagnostics"] + counts
            )
        self.last_diagnostics = dict(diagnostics)

    def may_note(self, state: State) -> bool:
        return bool(state["diagnostics"].any()) or super().may_note(state)

    def group_notes(self, grouped: GroupedState, values: dict[str, np.ndarray]) -> np.ndarray:
        flags = super().group_notes(grouped, values)
        diagnostics = grouped.whole_vector("diagnostics")
        if diagnostics.size:
            flags |= diagnostics.any(axis=1)
        return flags

    def invalid_rows(self, labels: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
        return self._batch_invalid_rows(BatchStats(labels, preds, None, (self,)))

    def _batch_invalid_rows(self, batch: BatchStats) -> np.ndarray | None:
        terms = batch.loss_terms(self)
        if not terms.invalid.any():
            return None
        samples = terms.batch_shape[0] if terms.batch_shape else len(terms.invalid)
        return np.asarray(terms.invalid.reshape(samples, -1).any(axis=1))

    #: the guard this metric uses (`Convention.guard_for`) and what holds the true probability
    _guard_kind: ClassVar[str] = "categorical"
    _target: ClassVar[str] = "class"

    def _rules(self) -> str:
        """What the convention does to this metric's probabilities ("clips probabilities ...")."""
        from_logits = bool(self._options.get("from_logits", False))
        return rules_phrase(
            self.convention,
            kind=self._guard_kind,
            sparse=False,
            from_logits=from_logits,
            renormalization=False,
        )

    def _renormalizes(self) -> bool:
        """Whether the convention renormalises rows of probabilities before the loss."""
        conv = self.convention
        return "before" in (conv.renormalize_sparse, conv.renormalize_dense) or "after" in (
            conv.renormalize_sparse,
            conv.renormalize_dense,
        )

    def _p_zero(self, count: int) -> str:
        gives, their = ("gives", "its") if count == 1 else ("give", "their")
        return f"{plural(count, 'row')} {gives} probability 0 to {their} true {self._target}"

    def value_notes(self) -> list[ValueNote]:
        """Why the value is inf or NaN (rows with p = 0 for the true class under a convention
        without a guard, NaN/inf or out-of-range inputs, no rows), and a note when the
        convention's guard changed values, so that the value is not the exact one."""
        notes = super().value_notes()
        counts = self.diagnostics()
        conv = self.convention
        unnormalized = counts["num_not_normalized"]
        if unnormalized:
            renormalizes = self._renormalizes()

            def not_normalized(counts: tuple[int, ...]) -> str:
                rows = plural(counts[0], "row")
                verb = "does" if counts[0] == 1 else "do"
                what = "it is not a distribution" if counts[0] == 1 else "they are no distributions"
                then = (
                    f"the {conv.name} convention renormalises them first"
                    if renormalizes
                    else f"the {conv.name} convention takes them as they are"
                )
                return f"{rows} of probabilities {verb} not sum to 1, so {what}; {then}"

            notes.append(
                ValueNote(
                    self.name,
                    "not_normalized",
                    (
                        "is over rows that are not distributions",
                        "are over rows that are not distributions",
                    ),
                    (unnormalized,),
                    not_normalized,
                    "are these logits (--from-logits)? `streammetric explain FILE` counts them; "
                    "--strict refuses such rows",
                )
            )
        guarded, p_zero = counts["num_guarded"], counts["num_true_prob_zero"]
        if guarded and conv.guard_for(self._guard_kind) != "none":
            rules = f"the {conv.name} convention {self._rules()}"

            def guard_reason(counts: tuple[int, ...]) -> str:
                text = f"{rules}, which changed {plural(counts[0], 'value')}"
                if counts[1]:
                    text += f", and {self._p_zero(counts[1])} (inf under the exact convention)"
                return text

            notes.append(
                ValueNote(
                    self.name,
                    "guard",
                    ("differs from the exact value", "differ from the exact values"),
                    (guarded, p_zero),
                    guard_reason,
                    "`streammetric explain FILE` compares the conventions on a file",
                )
            )
        return notes

    def _nonfinite_note(self, name: str, value: float, state: State) -> ValueNote:
        counts = self.diagnostics()
        conv = self.convention
        outcome = outcome_of(value)
        if math.isinf(value) and counts["num_true_prob_zero"]:
            rules = f"the {conv.name} convention {self._rules()}"
            return ValueNote(
                name,
                "p_zero",
                outcome,
                (counts["num_true_prob_zero"],),
                lambda c: (
                    f"{self._p_zero(c[0])}, and {rules}, so "
                    + ("its loss is inf" if c[0] == 1 else "their loss is inf")
                ),
                "`streammetric explain FILE` compares the conventions on a file, and "
                "`--convention keras` gives finite values",
            )
        if not state["num_inst"]:
            ignored, skipped = counts["num_ignored"], counts["num_invalid_skipped"]

            def no_rows(c: tuple[int, ...]) -> str:
                why = [f"{plural(c[0], 'row')} ignored"] if c[0] else []
                why += [f"{plural(c[1], 'invalid row')} skipped"] if c[1] else []
                return "no rows were counted" + (f" ({', '.join(why)})" if why else "")

            return ValueNote(name, "no_rows", outcome, (ignored, skipped), no_rows)
        if counts["num_nonfinite"]:
            return ValueNote(
                name,
                "nonfinite",
                outcome,
                (counts["num_nonfinite"],),
                lambda c: (
                    f"{plural(c[0], 'prediction value')} {'is' if c[0] == 1 else 'are'} "
                    f"NaN or inf (the {conv.name} convention does not reject them)"
                ),
            )
        if counts["num_out_of_range"]:
            return ValueNote(
                name,
                "out_of_range",
                outcome,
                (counts["num_out_of_range"],),
                lambda c: (
                    f"{plural(c[0], 'probability value')} {'lies' if c[0] == 1 else 'lie'} "
                    f"outside [0, 1] (the {conv.name} convention does not reject them)"
                ),
            )
        return super()._nonfinite_note(name, value, state)

    def diagnostics(self, scope: str = "global") -> dict[str, int]:
        """Diagnostic counts (``DIAGNOSTIC_KEYS``) since the last reset (``"global"``) or
        reset_local (``"local"``); ``last_diagnostics`` holds the last update's."""
        state = self._global_state() if scope == "global" else self._local
        return {**_counts(state), "num_invalid_skipped": int(state["num_invalid"])}

    def group_diagnostics(self, grouped: GroupedState) -> dict[str, np.ndarray]:
        """`diagnostics` of every group's state at once (kind -> int64 per group code)."""
        counts = grouped.whole_vector("diagnostics")
        out = {
            key: counts[:, k] if k < counts.shape[1] else np.zeros(grouped.size, dtype=np.int64)
            for k, key in enumerate(DIAGNOSTIC_KEYS)
        }
        invalid = grouped.whole("num_invalid")
        assert invalid is not None  # a count
        return {**out, "num_invalid_skipped": invalid}


#: the input dtypes an explained metric counts rows of (the rest compute as float64 would)
_NARROW = ("float32", "float16")


def _counts(state: State) -> dict[str, int]:
    """The diagnostic counts of a state (``DIAGNOSTIC_KEYS``)."""
    counts = state["diagnostics"]
    values = counts.tolist() if counts.size else [0] * len(DIAGNOSTIC_KEYS)
    return dict(zip(DIAGNOSTIC_KEYS, values, strict=True))


def _explained(explain: Any, own: Convention) -> tuple[Convention, ...]:
    """The other conventions ``explain`` asks for (``"all"``: every registered one; a name or
    a list of names), ``exact`` first (the reference), without ``own``."""
    if explain is None:
        return ()
    if isinstance(explain, str):
        names = list_conventions() if explain == "all" else [explain]
    elif isinstance(explain, (list, tuple)) and all(isinstance(n, str) for n in explain):
        names = list(explain)
    else:
        raise ConfigError(
            f"`explain` must be 'all', a convention's name or a list of names, got {explain!r}"
        )
    chosen = [get_convention(name) for name in ["exact", *names]]
    out: list[Convention] = []
    for conv in chosen:
        if conv.name != own.name and conv not in out:
            out.append(conv)
    return tuple(out)


#: the options of _cross_entropy_update that _LossMetric._sparse_arguments passes on
_SPARSE_OPTIONS = frozenset(
    {"from_logits", "label_smoothing", "class_weight", "ignore_index", "axis"}
)

#: checks of the options that take one kind of value (a bad one raises ConfigError)
_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "eps": check_eps,
    "from_logits": check_bool,
    "axis": check_int,
    "ignore_index": functools.partial(check_int, optional=True),
    "ignore_label": functools.partial(check_int, optional=True),
    "pos_weight": check_number_array,
    "class_weight": functools.partial(check_number_array, nonnegative=True),
}


def _same(values: np.ndarray) -> np.ndarray:
    return values


def _per_row(batch_shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """Per-element terms of a batch of rows (n, T, ...) as (n, elements) arrays: a row's
    elements go into its group together."""
    if len(batch_shape) <= 1:
        return _same
    rows = batch_shape[0]
    return lambda values: np.reshape(values, (rows, -1))


_NO_DIAGNOSTICS = zero_counts(len(DIAGNOSTIC_KEYS))


def _diagnostics_term(
    diagnostics: dict[str, int],
    row_diagnostics: Callable[[], np.ndarray],
    batch_shape: tuple[int, ...],
) -> Rowwise:
    """The diagnostics of a batch with some count (``_clean_diagnostics`` for the others):
    their totals (``DIAGNOSTIC_KEYS`` order), each row's on demand."""
    totals = np.array([diagnostics[key] for key in DIAGNOSTIC_KEYS], dtype=np.int64)
    return Rowwise(totals, lambda: _row_sums(row_diagnostics(), batch_shape))


@functools.lru_cache(maxsize=64)
def _clean_diagnostics(rows: int) -> Rowwise:
    """The diagnostics term of a clean batch of ``rows`` rows (counts are >= 0, so every row's
    are 0): `zero_counts`, and zeros per row if asked. One per batch size (they repeat)."""
    shape = (rows, len(DIAGNOSTIC_KEYS))
    return Rowwise(_NO_DIAGNOSTICS, functools.partial(np.zeros, shape, dtype=np.int64))


def _counted(terms: LossTerms) -> np.ndarray:
    """Whether each element counts (neither ignored nor invalid)."""
    rows = terms.row_diagnostics() if terms.row_diagnostics is not None else None
    if rows is None:  # pragma: no cover - every update gives its row diagnostics
        return ~terms.invalid
    return (rows[:, _IGNORED] == 0) & (rows[:, _INVALID] == 0)


def _row_sums(rows: np.ndarray, batch_shape: tuple[int, ...]) -> np.ndarray:
    """Per-element diagnostics summed per row of the batch."""
    if len(batch_shape) <= 1:
        return rows
    return rows.reshape(batch_shape[0], -1, rows.shape[-1]).sum(axis=1)


_IGNORED, _INVALID = DIAGNOSTIC_KEYS.index("num_ignored"), DIAGNOSTIC_KEYS.index("num_invalid")


def _hashable(options: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@register
@alias("ce", "cross-entropy")
class CrossEntropy(_LossMetric):
    """Cross-entropy of class indices (or one-hot/soft targets) and probabilities or logits.

    ``loss_i = -sum_c y_ic log p_ic`` under the chosen convention; MXNet 1.x's metric is
    ``convention="mxnet"`` (``-log(p[y] + 1e-12)``). Class index labels (n,) or dense targets
    (n, k); predictions (n, k) with the class axis ``axis``.

    Parameters
    ----------
    eps : float, optional
        MXNet's argument: the epsilon of the convention's guard against ``log(0)``, or, under a
        convention without one (``"exact"``), of MXNet's ``-log(p + eps)``; ``eps=1e-12`` is
        MXNet 1.x's own. None: the convention's epsilon.
    name : str, default "cross-entropy"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    convention : str, default "exact"
        Whose arithmetic: ``"exact"`` (``-log p``, inf when the true class has p = 0), or a
        framework's rules for guarding ``log(0)``, renormalising rows, the dtype and values
        outside [0, 1]: ``"keras"``, ``"tf_keras"``, ``"torch"``, ``"mxnet"``, ``"sklearn"``,
        or a name given to `streammetric.register_convention` (see
        :mod:`streammetric.conventions`; ``streammetric explain`` compares them on a file).
    from_logits : bool, default False
        ``preds`` are logits: a stable log-softmax over ``axis`` instead of the convention's
        guarded log of probabilities.
    axis : int, default -1
        The class axis of ``preds`` (MXNet's ``axis``; labels have the other axes' shape).
    label_smoothing : float, default 0.0
        Targets ``(1 - s) t + s / k`` for k classes, as Keras and PyTorch.
    class_weight : sequence of float, optional
        One weight per class, as PyTorch's ``weight``: with class-index labels a row of class
        y counts ``w_y`` in both sums (the value is ``sum_i w_y_i loss_i / sum_i w_y_i``); with
        one-hot or soft targets each class's term is weighted, and each row counts 1.
    ignore_index : int, optional
        Rows whose label is this class leave both sums and are counted as ignored
        (PyTorch's ``ignore_index``). None: no row is ignored.
    on_invalid : {"raise", "skip"}, default "raise"
        What a batch with rows the convention rejects does (a label outside the classes, soft
        targets that are all 0; probabilities outside [0, 1], or NaN, under a convention that does
        not compute them, as ``"exact"``): ``"raise"`` raises `InvalidInputError` naming the first
        such row and folds in nothing of that batch; ``"skip"`` leaves those rows out of both
        sums and counts them (``diagnostics()["num_invalid_skipped"]``).
    explain : "all", str or list of str, optional
        Also keep this loss under these conventions (``"all"``: every registered one;
        ``exact`` always), on the rows this metric counts, for `explain` (every convention
        side by side, with the diagnostics and why each differs). None: this convention only.
    """

    mxnet_positional = ("eps", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
        eps: float | None = None,
        name: str = "cross-entropy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        convention: str = "exact",
        from_logits: bool = False,
        axis: int = -1,
        label_smoothing: float = 0.0,
        class_weight: Any = None,
        ignore_index: int | None = None,
        on_invalid: str = "raise",
        explain: Any = None,
    ) -> None:
        super().__init__(
            name=name,
            output_names=output_names,
            label_names=label_names,
            convention=convention,
            on_invalid=on_invalid,
            explain=explain,
            eps=eps,
            from_logits=from_logits,
            axis=axis,
            label_smoothing=label_smoothing,
            class_weight=class_weight,
            ignore_index=ignore_index,
        )

    def _call(self) -> tuple[Callable[..., LossTerms], dict[str, Any]]:
        return _cross_entropy_update, self._options


@register
@alias("nll_loss", "nll-loss")
class NegativeLogLikelihood(CrossEntropy):
    """Negative log-likelihood of the true class: the cross-entropy of class indices (MXNet's
    ``nll_loss``); with ``convention="mxnet"``, ``-log(p[y] + 1e-12)``.

    Parameters
    ----------
    eps : float, optional
        MXNet's argument: the epsilon of the convention's guard against ``log(0)``, or, under a
        convention without one (``"exact"``), of MXNet's ``-log(p + eps)``; ``eps=1e-12`` is
        MXNet 1.x's own. None: the convention's epsilon.
    name : str, default "nll-loss"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    convention : str, default "exact"
        Whose arithmetic: ``"exact"`` (``-log p``, inf when the true class has p = 0), or a
        framework's rules for guarding ``log(0)``, renormalising rows, the dtype and values
        outside [0, 1]: ``"keras"``, ``"tf_keras"``, ``"torch"``, ``"mxnet"``, ``"sklearn"``,
        or a name given to `streammetric.register_convention` (see
        :mod:`streammetric.conventions`; ``streammetric explain`` compares them on a file).
    from_logits : bool, default False
        ``preds`` are logits: a stable log-softmax over ``axis`` instead of the convention's
        guarded log of probabilities.
    axis : int, default -1
        The class axis of ``preds`` (MXNet's ``axis``; labels have the other axes' shape).
    class_weight : sequence of float, optional
        One weight per class, as PyTorch's ``weight``: with class-index labels a row of class
        y counts ``w_y`` in both sums (the value is ``sum_i w_y_i loss_i / sum_i w_y_i``); with
        one-hot or soft targets each class's term is weighted, and each row counts 1.
    ignore_index : int, optional
        Rows whose label is this class leave both sums and are counted as ignored
        (PyTorch's ``ignore_index``). None: no row is ignored.
    on_invalid : {"raise", "skip"}, default "raise"
        What a batch with rows the convention rejects does (a label outside the classes, soft
        targets that are all 0; probabilities outside [0, 1], or NaN, under a convention that does
        not compute them, as ``"exact"``): ``"raise"`` raises `InvalidInputError` naming the first
        such row and folds in nothing of that batch; ``"skip"`` leaves those rows out of both
        sums and counts them (``diagnostics()["num_invalid_skipped"]``).
    explain : "all", str or list of str, optional
        Also keep this loss under these conventions (``"all"``: every registered one;
        ``exact`` always), on the rows this metric counts, for `explain` (every convention
        side by side, with the diagnostics and why each differs). None: this convention only.
    """

    # configs of earlier versions held CrossEntropy's label_smoothing, always 0.0 here
    retired_options: ClassVar[dict[str, Any]] = {"label_smoothing": 0.0}

    mxnet_positional = ("eps", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
        eps: float | None = None,
        name: str = "nll-loss",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        convention: str = "exact",
        from_logits: bool = False,
        axis: int = -1,
        class_weight: Any = None,
        ignore_index: int | None = None,
        on_invalid: str = "raise",
        explain: Any = None,
    ) -> None:
        # _LossMetric's, not CrossEntropy's __init__: the config holds exactly these arguments
        # (CrossEntropy's would add its label_smoothing, which this constructor does not take)
        _LossMetric.__init__(
            self,
            name=name,
            output_names=output_names,
            label_names=label_names,
            convention=convention,
            on_invalid=on_invalid,
            explain=explain,
            eps=eps,
            from_logits=from_logits,
            axis=axis,
            class_weight=class_weight,
            ignore_index=ignore_index,
        )

    def _call(self) -> tuple[Callable[..., LossTerms], dict[str, Any]]:
        # CrossEntropy's options exactly, so a composite of both computes the terms once
        return _cross_entropy_update, {"label_smoothing": 0.0, **self._options}


@register
@alias("bce", "binary-cross-entropy", "binary_cross_entropy")
class BinaryCrossEntropy(_LossMetric):
    """Binary cross-entropy ``-(y log p + (1 - y) log(1 - p))``, the mean over the last axis for
    (n, d) predictions, under the chosen convention (torch clamps logs at -100, Keras clips).

    Parameters
    ----------
    name : str, default "binary-cross-entropy"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    convention : str, default "exact"
        Whose arithmetic: ``"exact"`` (``-log p``, inf when the true class has p = 0), or a
        framework's rules for guarding ``log(0)``, renormalising rows, the dtype and values
        outside [0, 1]: ``"keras"``, ``"tf_keras"``, ``"torch"``, ``"mxnet"``, ``"sklearn"``,
        or a name given to `streammetric.register_convention` (see
        :mod:`streammetric.conventions`; ``streammetric explain`` compares them on a file).
    from_logits : bool, default False
        ``preds`` are logits: a stable log-sigmoid instead of the convention's guarded log of
        probabilities.
    label_smoothing : float, default 0.0
        Targets ``(1 - s) y + s / 2``, as Keras and PyTorch.
    pos_weight : float or sequence of float, optional
        The weight of the positive term ``y log p``, one for every output or one per output
        (PyTorch's ``pos_weight``). None: 1.
    on_invalid : {"raise", "skip"}, default "raise"
        What a batch with rows the convention rejects does (a label outside the classes, soft
        targets that are all 0; probabilities outside [0, 1], or NaN, under a convention that does
        not compute them, as ``"exact"``): ``"raise"`` raises `InvalidInputError` naming the first
        such row and folds in nothing of that batch; ``"skip"`` leaves those rows out of both
        sums and counts them (``diagnostics()["num_invalid_skipped"]``).
    explain : "all", str or list of str, optional
        Also keep this loss under these conventions (``"all"``: every registered one;
        ``exact`` always), on the rows this metric counts, for `explain` (every convention
        side by side, with the diagnostics and why each differs). None: this convention only.
    """

    mxnet_positional = ()  # not an MXNet metric: keywords only

    def __init__(
        self,
        *,
        name: str = "binary-cross-entropy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        convention: str = "exact",
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        pos_weight: Any = None,
        on_invalid: str = "raise",
        explain: Any = None,
    ) -> None:
        super().__init__(
            name=name,
            output_names=output_names,
            label_names=label_names,
            convention=convention,
            on_invalid=on_invalid,
            explain=explain,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            pos_weight=pos_weight,
        )

    _guard_kind = "binary"
    _target = "label"

    def _call(self) -> tuple[Callable[..., LossTerms], dict[str, Any]]:
        return _binary_cross_entropy_update, self._options


@register
class Perplexity(_LossMetric):
    """``exp(sum_i w_i (-log p_i[y_i]) / sum_i w_i)``; rows whose label is ``ignore_label`` leave
    both sums (MXNet 1.x's ``Perplexity(ignore_label)``; its guard is ``convention="mxnet"``).

    Parameters
    ----------
    ignore_label : int, optional
        Rows whose label is this class leave both sums (MXNet's argument, required there).
        None: no row is ignored.
    axis : int, default -1
        The class axis of ``preds`` (MXNet's ``axis``; labels have the other axes' shape).
    name : str, default "perplexity"
        The name ``get()`` reports the value under.
    output_names, label_names : list of str, optional
        The prediction and label names `update_dict` picks from its dicts (None: every value).
    convention : str, default "exact"
        Whose arithmetic: ``"exact"`` (``-log p``, inf when the true class has p = 0), or a
        framework's rules for guarding ``log(0)``, renormalising rows, the dtype and values
        outside [0, 1]: ``"keras"``, ``"tf_keras"``, ``"torch"``, ``"mxnet"``, ``"sklearn"``,
        or a name given to `streammetric.register_convention` (see
        :mod:`streammetric.conventions`; ``streammetric explain`` compares them on a file).
    from_logits : bool, default False
        ``preds`` are logits: a stable log-softmax over ``axis`` instead of the convention's
        guarded log of probabilities.
    on_invalid : {"raise", "skip"}, default "raise"
        What a batch with rows the convention rejects does (a label outside the classes, soft
        targets that are all 0; probabilities outside [0, 1], or NaN, under a convention that does
        not compute them, as ``"exact"``): ``"raise"`` raises `InvalidInputError` naming the first
        such row and folds in nothing of that batch; ``"skip"`` leaves those rows out of both
        sums and counts them (``diagnostics()["num_invalid_skipped"]``).
    explain : "all", str or list of str, optional
        Also keep this loss under these conventions (``"all"``: every registered one;
        ``exact`` always), on the rows this metric counts, for `explain` (every convention
        side by side, with the diagnostics and why each differs). None: this convention only.

    >>> m = Perplexity(convention="mxnet")
    >>> preds = np.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]], dtype=np.float32)
    >>> round(m.update([np.array([0, 1, 1])], [preds]).get()[1], 7)  # MXNet's doc: 1.7710976285
    1.7710976
    """

    mxnet_positional = ("ignore_label", "axis", "name", "output_names", "label_names")

    def __init__(
        self,
        *,
        ignore_label: int | None = None,
        axis: int = -1,
        name: str = "perplexity",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        convention: str = "exact",
        from_logits: bool = False,
        on_invalid: str = "raise",
        explain: Any = None,
    ) -> None:
        super().__init__(
            name=name,
            output_names=output_names,
            label_names=label_names,
            convention=convention,
            on_invalid=on_invalid,
            explain=explain,
            ignore_label=ignore_label,
            axis=axis,
            from_logits=from_logits,
        )

    def _call(self) -> tuple[Callable[..., LossTerms], dict[str, Any]]:
        options = {k: v for k, v in self._options.items() if k != "ignore_label"}
        options["ignore_index"] = self._options["ignore_label"]
        conv = self.convention
        if conv.perplexity_guard is not None or conv.perplexity_eps is not None:
            return _perplexity_update, options  # its own guard (MXNet: max(1e-10, p))
        # otherwise -log p[y] is cross-entropy's term: the same call, so a composite shares it
        return _cross_entropy_update, {"label_smoothing": 0.0, "class_weight": None, **options}

    _guard_kind = "perplexity"

    def _compute(self, state: State) -> float:
        mean = super()._compute(state)
        return exp_float(mean)

    def group_values(self, grouped: GroupedState) -> dict[str, np.ndarray] | None:
        means = self._group_means(grouped)
        return None if means is None else {self.name: exp(means)}  # exp_float's kernel

    def _nonfinite_reason(self, state: State, value: float) -> tuple[str, str]:
        mean = super()._compute(state)
        if math.isinf(value) and math.isfinite(mean):
            return "overflow", "the mean cross-entropy exceeds 709.78, whose exp overflows"
        return super()._nonfinite_reason(state, value)
