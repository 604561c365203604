"""Input checks of the classification family: rows, scores, 0/1 labels, options, invalid rows.

Errors name the argument, the rule and the received value in one line; :func:`_invalid_rows`
finds the rows an update would reject for their values (for ``on_invalid="skip"``).

>>> _strip((4, 1, 1)), _strip((4, 2))
((4,), (4, 2))
>>> _invalid_rows([0, 1, 3], [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]).tolist()
[False, False, True]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import ConfigError, InvalidInputError
from ._validation import first_bad_row, row_values

__all__ = [
    "MAX_SEEN_CLASSES",
    "check_beta",
    "check_config",
    "check_normalize",
    "check_num_classes",
    "check_zero_division",
]

CLASS_TYPES = ("binary", "multiclass", "multilabel")
AVERAGES: tuple[str | None, ...] = ("micro", "macro")
#: the averages of the per-class scores (precision, recall, F-beta, F1): None is one value per class
CLASS_AVERAGES: tuple[str | None, ...] = ("micro", "macro", "weighted", None)
NORMALIZE = ("true", "pred", "all")
#: the confusion matrix keeps num_classes**2 counts: its classes are capped
MAX_MATRIX_CLASSES = 4096
#: per-class counts grow with the largest class seen: without num_classes they are capped (a
#: label of 10**9 would take gigabytes)
MAX_SEEN_CLASSES = 1 << 16


def _rows(values: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(values))


def _as_scores(values: np.ndarray, name: str = "preds", *, keep_float: bool = False) -> np.ndarray:
    """Finite scores, shape kept: float64, or any float dtype as given with ``keep_float``
    (enough where only the order matters; thresholds compare in float64)."""
    if values.dtype.kind not in "biuf":
        raise InvalidInputError.bad_argument(name, "must be numeric", values.dtype)
    keep = keep_float and values.dtype.kind == "f"
    scores = values if keep else values.astype(np.float64, copy=False)
    finite = np.isfinite(scores)
    if not finite.all():
        row = first_bad_row(~finite)
        raise InvalidInputError.bad_row(name, row, "must be finite", row_values(scores, row))
    return scores


def _as_zero_one(values: np.ndarray, name: str, class_type: str) -> np.ndarray:
    """Boolean array of 0/1 labels; anything else is an error naming the row."""
    if values.dtype.kind == "b":
        return values
    if values.dtype.kind not in "iuf":
        raise InvalidInputError.bad_argument(name, "must be numeric", values.dtype)
    bad = (values != 0) & (values != 1)
    if bad.any():
        rule = f"must be 0 or 1 for class_type={class_type!r}"
        row = first_bad_row(bad)
        shown = row_values(values, row)
        if class_type == "binary" and np.all((shown >= 0) & (shown == np.floor(shown))):
            rule += " (class indices of more classes: class_type='multiclass')"
        raise InvalidInputError.bad_row(name, row, rule, shown)
    return values == 1


def _strip(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without trailing 1s: (n, 1) and (n,) hold the same labels."""
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _by_row(values: np.ndarray, rows: int) -> np.ndarray:
    return values.reshape(rows, values.size // rows if rows else 0)


def check_config(
    class_type: str,
    average: str | None,
    threshold: float,
    averages: tuple[str | None, ...] = AVERAGES,
) -> str | None:
    """Raise ConfigError for an unknown ``class_type``/``average`` or a non-finite threshold;
    return the average (the string ``"none"``, any case, is None where None is allowed)."""
    if class_type not in CLASS_TYPES:
        raise ConfigError(
            f"`class_type` must be one of {', '.join(CLASS_TYPES)}, got {class_type!r}"
        )
    if None in averages and isinstance(average, str) and average.lower() == "none":
        average = None
    if average not in averages or not (average is None or isinstance(average, str)):
        raise ConfigError(
            f"`average` must be one of {', '.join(map(str, averages))}, got {average!r}"
        )
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not math.isfinite(threshold)
    ):
        raise ConfigError(f"`threshold` must be a finite number, got {threshold!r}")
    return average


def check_num_classes(num_classes: Any, class_type: str, maximum: int | None = None) -> int | None:
    """None (the classes seen), or an int >= 1 (2 for ``class_type="binary"``)."""
    if num_classes is None:
        return None
    if (
        isinstance(num_classes, (bool, np.bool_))
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
        or (maximum is not None and num_classes > maximum)
    ):
        most = "" if maximum is None else f" and <= {maximum:,}"
        raise ConfigError(f"`num_classes` must be None or an int >= 1{most}, got {num_classes!r}")
    if class_type == "binary" and num_classes != 2:
        raise ConfigError(
            f"`num_classes` must be None or 2 for class_type='binary', got {num_classes!r}"
        )
    return int(num_classes)


def check_zero_division(value: Any) -> float | str:
    """The value of a score whose denominator is 0: 0, 1 or NaN (as scikit-learn's
    ``zero_division``; its default ``"warn"`` gives 0). Returned as a config holds it: 0.0, 1.0
    or ``"nan"`` (JSON has no NaN)."""
    if isinstance(value, str) and value.lower() == "nan":
        return "nan"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ):
        if math.isnan(value):
            return "nan"
        if value in (0, 1):
            return float(value)
    raise ConfigError(f"`zero_division` must be 0, 1 or 'nan', got {value!r}")


def zero_division_value(value: float | str) -> float:
    """The float of a `check_zero_division` result."""
    return math.nan if value == "nan" else float(value)


def check_beta(beta: Any) -> float:
    """F-beta's ``beta``: a number >= 0 (inf: the recall), as a float."""
    if (
        isinstance(beta, (bool, np.bool_))
        or not isinstance(beta, (int, float, np.integer, np.floating))
        or math.isnan(beta)
        or beta < 0
    ):
        raise ConfigError(f"`beta` must be a number >= 0, got {beta!r}")
    return float(beta)


def check_normalize(normalize: Any) -> str | None:
    """The confusion matrix's ``normalize``: None (or ``"none"``), ``"true"``, ``"pred"``, ``"all"``.

    ``True`` is ``"true"`` and ``False`` None: a metric spec's ``normalize=true`` parses as
    the boolean (``streammetric.metrics.specs``).
    """
    if normalize is True:
        return "true"
    if normalize is None or normalize is False:
        return None
    if isinstance(normalize, str) and normalize.lower() == "none":
        return None
    if normalize not in NORMALIZE or not isinstance(normalize, str):
        raise ConfigError(
            f"`normalize` must be one of None, {', '.join(NORMALIZE)}, got {normalize!r}"
        )
    return normalize


def _invalid_rows(
    labels: Any,
    preds: Any,
    *,
    axis: int = -1,
    zero_one: bool = False,
    num_classes: int | None = None,
) -> np.ndarray | None:
    """Rows an update would reject for their values (for ``on_invalid="skip"``); None if none.

    Non-finite scores; labels that are not 0/1 (``zero_one``) or not class indices in range
    (below ``num_classes`` too, when given); predicted classes that are not class indices.
    Shape and dtype errors are left to the update.
    """
    label, pred = _rows(labels), _rows(preds)
    if len(label) != len(pred) or label.dtype.kind not in "biuf" or pred.dtype.kind not in "biuf":
        return None
    label, pred = label.astype(np.float64), pred.astype(np.float64)
    bad_pred = ~np.isfinite(pred)
    if zero_one:
        bad_label = (label != 0) & (label != 1)
    else:
        with np.errstate(invalid="ignore"):
            bad_label = ~np.isfinite(label) | (label < 0) | (label != np.floor(label))
        if _strip(label.shape) == _strip(pred.shape):
            with np.errstate(invalid="ignore"):
                bad_pred |= (pred < 0) | (pred != np.floor(pred))
                if num_classes is not None:
                    bad_pred |= pred >= num_classes
                    bad_label |= label >= num_classes
        elif -pred.ndim <= axis < pred.ndim:
            bad_label |= label >= pred.shape[axis]
    bad = bad_label.reshape(len(label), -1).any(axis=1) | bad_pred.reshape(len(pred), -1).any(
        axis=1
    )
    return bad if bad.any() else None
