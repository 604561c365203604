"""One batch's statistics, computed once for every metric of an update (`BatchStats`).

A metric declares, as a typed set, the statistics of a batch it reads (``batch_stats``, a
frozenset of `Stat`) and takes them from the batch's `BatchStats` in its ``_batch_terms``.
``CompositeEvalMetric.update`` and the engine (``Partial.row_terms``) make one `BatchStats` per
batch (per (label, pred, weight) triple) and hand it to every metric; a lone ``update()`` makes
one for its metric. So an eval loop's ``update()`` and the engine run the same path.

The first request computes, where a kernel can, the union of what the batch's metrics declared
in one pass: the cross-entropy scan (``_kernels.sparse_loss``, ``sparse_scan``) also ranks the
true classes when a metric of the batch wants `Stat.TRUE_CLASS_RANKS`, so ``ce``, ``acc`` and
``top_k_accuracy`` read the probabilities once, in whatever order they come. Later requests read
what is there: the loss terms are computed once per loss configuration (``ce``, ``nll_loss``
with the same convention and options share them). A `BatchStats` lives for one batch only, so
an eval loop that overwrites its arrays in place never reads stale statistics.

>>> from streammetric.metrics import create
>>> ce, acc = create("ce"), create("acc")
>>> labels, preds = np.array([0, 1]), np.array([[0.3, 0.7], [0.2, 0.8]])
>>> batch = BatchStats(labels, preds, None, (ce, acc))
>>> sorted(stat.name for stat in batch.stats)
['LOSS_TERMS', 'TRUE_CLASS_RANKS']
>>> batch.true_class_ranks().tolist()  # computed in ce's scan, which ce then reads
[[1, 1], [0, 0]]
>>> batch.loss_terms(ce).numerator.round(4).tolist()
[1.204, 0.2231]
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..functional._ce_terms import LossTerms
from ._inputs import as_pairs

if TYPE_CHECKING:
    from .base import EvalMetric

__all__ = ["BatchStats", "LossSource", "Stat"]


class Stat(enum.Enum):
    """A statistic of a batch that metrics read (declared in ``EvalMetric.batch_stats``)."""

    #: The cross-entropy family's per-row terms under a metric's convention and options
    #: (`LossTerms`): the loss (``-log p[y]`` after the convention's guard and renormalisation),
    #: each row's validity, and the diagnostics (true-class probability 0 or 1, guarded
    #: values, rows not summing to 1, ...). One per loss configuration (`LossSource`).
    LOSS_TERMS = "loss_terms"
    #: int64 (n, 2): the true class's rank among (n, k) scores in argmax's order of ties and in
    #: top-k's (``functional.classification._class_ranks``): Accuracy's and TopKAccuracy's hits.
    TRUE_CLASS_RANKS = "true_class_ranks"


class LossSource(Protocol):
    """A metric that declares `Stat.LOSS_TERMS`: how its batch's loss terms are computed."""

    @property
    def _loss_key(self) -> Hashable:
        """Equal for metrics whose terms are equal (the function, convention and options)."""

    @property
    def _ranks_in_scan(self) -> bool:
        """Whether `_loss_terms` can rank the true classes in its pass (``ranks=True``)."""

    def _loss_terms(self, labels: Any, preds: Any, ranks: bool) -> LossTerms:
        """The batch's terms; with ``ranks``, ``LossTerms.ranks`` where the scan took them."""


class BatchStats:
    """One batch (``labels``, ``preds``, ``weights``: one triple of `as_pairs`) and the
    statistics its ``metrics`` declared, each computed on its first request.

    ``metrics`` are the metrics that read this batch (a composite's children, the engine's
    leaves; a lone metric itself): the union of their ``batch_stats`` decides what a pass
    computes on the way, and with more than one the statistics are `shared` (each metric
    copies what it keeps).
    """

    __slots__ = ("_losses", "_ranks", "_stats", "labels", "metrics", "preds", "shared", "weights")

    def __init__(
        self,
        labels: Any,
        preds: Any,
        weights: np.ndarray | None = None,
        metrics: Sequence[EvalMetric] = (),
    ) -> None:
        self.labels = labels
        self.preds = preds
        self.weights = weights
        self.metrics = metrics
        #: whether several metrics read these statistics (then none may change them)
        self.shared = len(metrics) > 1
        self._stats: frozenset[Stat] | None = None
        self._ranks: np.ndarray | None = None
        self._losses: dict[Hashable, LossTerms] | None = None

    @classmethod
    def of(
        cls, labels: Any, preds: Any, sample_weight: Any, metrics: Sequence[EvalMetric]
    ) -> BatchStats:
        """One batch as ``EvalMetric.row_terms`` takes it: arrays, or one pair of `as_pairs`
        (sample weights are checked there)."""
        if (
            sample_weight is not None
            or type(labels) is not np.ndarray
            or type(preds) is not np.ndarray
        ):
            ((labels, preds, sample_weight),) = as_pairs(labels, preds, sample_weight)
        return cls(labels, preds, sample_weight, metrics)

    @property
    def stats(self) -> frozenset[Stat]:
        """The union of the statistics the batch's metrics declared."""
        stats = self._stats
        if stats is None:
            stats = self._stats = frozenset().union(*(m.batch_stats for m in self.metrics))
        return stats

    def loss_terms(self, source: LossSource) -> LossTerms:
        """`Stat.LOSS_TERMS` of ``source``'s configuration, computed once per configuration
        (ranking the true classes in the same pass when a metric of the batch wants them)."""
        losses = self._losses
        if losses is None:
            if not self.shared:  # a lone metric: nothing to share
                return source._loss_terms(self.labels, self.preds, False)
            losses = self._losses = {}
        key = source._loss_key
        terms = losses.get(key)
        if terms is None:
            ranks = (
                self._ranks is None
                and source._ranks_in_scan
                and Stat.TRUE_CLASS_RANKS in self.stats
            )
            terms = losses[key] = source._loss_terms(self.labels, self.preds, ranks)
            if terms.ranks is not None:
                self._ranks = terms.ranks
        return terms

    def true_class_ranks(self) -> np.ndarray:
        """`Stat.TRUE_CLASS_RANKS`: taken by the scan of a metric of the batch that computes
        its loss terms anyway, else by their own pass (``_kernels.class_ranks``)."""
        ranks = self._ranks
        if ranks is None:
            if self.shared and Stat.LOSS_TERMS in self.stats:
                self._rank_in_a_scan()
                ranks = self._ranks
            if ranks is None:
                ranks = self._ranks = _rank_pass()(self.labels, self.preds)
        return ranks

    def _rank_in_a_scan(self) -> None:
        """Compute the loss terms of the first metric of the batch whose pass ranks the true
        classes on the way and has not run yet (they are kept for its request)."""
        done = self._losses or {}
        for metric in self.metrics:
            if Stat.LOSS_TERMS in metric.batch_stats:
                source: LossSource = metric  # type: ignore[assignment]
                if source._ranks_in_scan and source._loss_key not in done:
                    try:
                        self.loss_terms(source)
                    except Exception:
                        pass  # that metric's own request raises it, in its turn
                    return


@functools.cache
def _rank_pass() -> Callable[[Any, Any], np.ndarray]:
    """`Stat.TRUE_CLASS_RANKS`' own pass, ``functional.classification._class_ranks``, imported
    when first needed (``eval -m ce`` imports nothing of that module)."""
    from ..functional.classification import _class_ranks

    return _class_ranks
