"""Column mapping: which Arrow columns hold labels, predictions, weights and groups.

`resolve` looks only at a schema and decides what to read; the ``*_values`` converters turn one
Arrow array into NumPy plus a mask of structurally invalid rows (nulls, ragged lists). They never
raise for a row-level problem: the reader decides whether to raise or skip. Group-by columns
become integer group ids in `streammetric.io.grouping`.

>>> import pyarrow as pa
>>> schema = pa.schema([("label", pa.int64()), ("logits", pa.list_(pa.float32(), 3))])
>>> cols = resolve(schema, ColumnSpec(), "preds.parquet")
>>> cols.labels, cols.label_kind, cols.preds, cols.pred_kind, cols.pred_width, cols.from_logits
('label', 'sparse', ('logits',), 'list', 3, True)
>>> cols.notes
('column `logits` implies --from-logits',)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pyarrow as pa

from streammetric._exceptions import ConfigError, InvalidInputError

from .._arrow import as_numpy

DEFAULT_LABEL_COLUMNS = ("label", "labels", "y", "y_true", "target")
DEFAULT_PRED_COLUMNS = ("probs", "preds", "pred", "y_pred", "output", "scores", "logits")

LabelKind = Literal["sparse", "dense", "binary"]
PredKind = Literal["list", "scalar", "columns"]


@dataclass(frozen=True)
class ColumnSpec:
    """What the user asked for; ``None`` means "use the defaults".

    ``preds`` is one name, a glob such as ``"p_*"`` (several scalar columns, ordered by the
    number in their names: see `glob_order`) or a sequence of names/globs (stacked in the order
    given, each glob's matches in number order). ``from_logits=None`` means auto:
    true when the prediction column is named ``logits``.
    """

    labels: str | None = None
    preds: str | tuple[str, ...] | None = None
    weights: str | None = None
    by: tuple[str, ...] = ()
    from_logits: bool | None = None
    #: each row's identity (integers or strings), for the bootstrap's resampling (not in the
    #: repr: a run's identity names it only when set, `streammetric.engine.Job.settings`)
    ids: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.preds is not None and not isinstance(self.preds, str):
            object.__setattr__(self, "preds", tuple(self.preds))
        object.__setattr__(self, "by", (self.by,) if isinstance(self.by, str) else tuple(self.by))


@dataclass(frozen=True)
class ResolvedColumns:
    """The physical columns to read and how to interpret them.

    ``label_kind``: ``sparse`` (integer class indices, 1-D int64), ``dense`` (list of floats,
    2-D) or ``binary`` (floats, 1-D). ``pred_kind``: ``list`` (one list column, 2-D),
    ``scalar`` (one numeric column, 1-D) or ``columns`` (several scalar columns stacked, 2-D).
    ``*_width`` is the number of classes when the schema fixes it (fixed-size lists, stacked
    columns), else ``None`` (inferred per batch as the most common list length).
    """

    labels: str
    label_kind: LabelKind
    preds: tuple[str, ...]
    pred_kind: PredKind
    weights: str | None = None
    by: tuple[str, ...] = ()
    from_logits: bool = False
    label_width: int | None = None
    pred_width: int | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    ids: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column to read, without duplicates: labels, preds, weights, groups, ids."""
        names = [self.labels, *self.preds, *([self.weights] if self.weights else []), *self.by]
        names += [self.ids] if self.ids else []
        return tuple(dict.fromkeys(names))


class ColumnValues(NamedTuple):
    """One converted column: values for every row, and which rows are structurally invalid.

    ``first_invalid`` is ``(row, column, rule)`` for the first invalid row (row within the
    converted array). Values in invalid rows are unspecified.
    """

    values: np.ndarray
    invalid: np.ndarray | None = None
    first_invalid: tuple[int, str, str] | None = None


def _base_type(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type))


def _is_list(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    )


def _find(schema: pa.Schema, name: str, *, role: str, path: str) -> pa.Field:
    if name not in schema.names:
        available = ", ".join(schema.names)
        raise ConfigError(
            f"{path}: {role} column `{name}` not found (available columns: {available})"
        )
    return schema.field(_unique(schema, name, path))


def _unique(schema: pa.Schema, name: str, path: str) -> str:
    """``name``, if one column of ``schema`` has it (a column read is found by its name)."""
    count = schema.names.count(name)
    if count > 1:
        raise InvalidInputError(
            f"{path}: column `{name}`: {count} columns have this name (a column read needs a "
            "name of its own)",
            path=path,
            column=name,
        )
    return name


def _default(schema: pa.Schema, candidates: Sequence[str], *, role: str, path: str) -> str:
    for name in candidates:
        if name in schema.names:
            return _unique(schema, name, path)
    raise ConfigError(
        f"{path}: no {role} column: none of {', '.join(candidates)} exists, name one "
        f"(available columns: {', '.join(schema.names)})"
    )


_DIGITS = re.compile(r"[0-9]+")


def _common_prefix(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    size = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
    )
    return first[:size]


def glob_order(names: Sequence[str], pattern: str, path: str = "<input>") -> list[str]:
    """The columns a prediction glob matched, in class order: by the number that varies
    between their names (``p_0, p_1, p_2, ..., p_10``, whatever order they are stored in).

    The order is never guessed: `ConfigError` when the varying part of a name is not a number,
    two names carry the same number (``p_1`` and ``p_01``) or the numbers have a gap.

    >>> glob_order(["p_0", "p_1", "p_10", "p_11", "p_2", "p_3", "p_4", "p_5", "p_6", "p_7",
    ...             "p_8", "p_9"], "p_*")[:4]
    ['p_0', 'p_1', 'p_2', 'p_3']
    >>> glob_order(["c2_prob", "c1_prob"], "c*_prob")
    ['c1_prob', 'c2_prob']
    """
    if len(names) < 2:
        return list(names)
    prefix = _common_prefix(names)
    suffix = _common_prefix([name[::-1] for name in names])[::-1]
    prefix = prefix.rstrip("0123456789")  # p_1, p_10: the number starts after "p_"
    suffix = suffix.lstrip("0123456789")
    numbered: dict[int, str] = {}
    fix = "name the columns in class order instead: --preds a,b,c"
    for name in names:
        varying = name[len(prefix) : len(name) - len(suffix)]
        if not _DIGITS.fullmatch(varying):
            raise ConfigError(
                f"{path}: prediction glob `{pattern}` matches {', '.join(names)}: the class order "
                f"of `{name}` is not a number in its name, so it is ambiguous ({fix})"
            )
        other = numbered.setdefault(int(varying), name)
        if other != name:
            raise ConfigError(
                f"{path}: prediction glob `{pattern}` matches `{other}` and `{name}`, which carry "
                f"the same number {int(varying)}, so the class order is ambiguous ({fix})"
            )
    numbers = sorted(numbered)
    if numbers[-1] - numbers[0] != len(numbers) - 1:
        missing = next(n for n in range(numbers[0], numbers[-1]) if n not in numbered)
        raise ConfigError(
            f"{path}: prediction glob `{pattern}` matches {', '.join(numbered[n] for n in numbers)}"
            f": no column has number {missing}, so the class of each column is ambiguous ({fix})"
        )
    return [numbered[number] for number in numbers]


def _expand_preds(schema: pa.Schema, spec: ColumnSpec, path: str) -> tuple[list[str], bool]:
    """Return the prediction column names and whether they are stacked scalar columns."""
    if spec.preds is None:
        return [_default(schema, DEFAULT_PRED_COLUMNS, role="prediction", path=path)], False
    patterns = (spec.preds,) if isinstance(spec.preds, str) else spec.preds
    names: list[str] = []
    for pattern in patterns:
        if any(char in pattern for char in "*?["):
            matched = [name for name in schema.names if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                raise ConfigError(
                    f"{path}: prediction glob `{pattern}` matches no column "
                    f"(available columns: {', '.join(schema.names)})"
                )
            names.extend(glob_order([_unique(schema, n, path) for n in matched], pattern, path))
        else:
            names.append(_find(schema, pattern, role="prediction", path=path).name)
    stacked = len(patterns) > 1 or names != list(patterns)
    return list(dict.fromkeys(names)), stacked


def _label_kind(arrow_type: pa.DataType, name: str, path: str) -> tuple[LabelKind, int | None]:
    base = _base_type(arrow_type)
    if _is_list(base) and _is_numeric(base.value_type):
        width = base.list_size if pa.types.is_fixed_size_list(base) else None
        return "dense", width
    if pa.types.is_integer(base):
        return "sparse", None
    if pa.types.is_floating(base) or pa.types.is_boolean(base):
        return "binary", None
    raise InvalidInputError(
        f"{path}: column `{name}`: type {arrow_type} is not a supported label type (expected "
        "integer class indices, float binary labels or a list of floats)"
    )


def _require_numeric(arrow_type: pa.DataType, name: str, path: str, *, lists: bool) -> None:
    base = _base_type(arrow_type)
    if _is_numeric(base) or (lists and _is_list(base) and _is_numeric(base.value_type)):
        return
    expected = "a float column, a list of floats or several float columns"
    raise InvalidInputError(
        f"{path}: column `{name}`: type {arrow_type} is not numeric (predictions must be {expected})"
    )


def resolve(schema: pa.Schema, spec: ColumnSpec, path: str = "<input>") -> ResolvedColumns:
    """Decide which columns of ``schema`` to read for ``spec`` and how to interpret them.

    Raises `ConfigError` for unknown columns and `InvalidInputError` for unsupported types.
    """
    if spec.labels is None:
        label_name = _default(schema, DEFAULT_LABEL_COLUMNS, role="label", path=path)
    else:
        label_name = _find(schema, spec.labels, role="label", path=path).name
    label_kind, label_width = _label_kind(schema.field(label_name).type, label_name, path)

    pred_names, stacked = _expand_preds(schema, spec, path)
    pred_kind: PredKind
    pred_width: int | None = None
    if stacked:
        for name in pred_names:
            _require_numeric(schema.field(name).type, name, path, lists=False)
        pred_kind, pred_width = "columns", len(pred_names)
    else:
        pred_type = _base_type(schema.field(pred_names[0]).type)
        _require_numeric(pred_type, pred_names[0], path, lists=True)
        pred_kind = "list" if _is_list(pred_type) else "scalar"
        if pa.types.is_fixed_size_list(pred_type):
            pred_width = pred_type.list_size

    if spec.weights is not None:
        weight_type = _find(schema, spec.weights, role="weight", path=path).type
        if not _is_numeric(_base_type(weight_type)):
            raise InvalidInputError(
                f"{path}: column `{spec.weights}`: type {weight_type} is not numeric "
                "(weights must be integers or floats)"
            )
    from .grouping import check_group_type  # grouping imports this module

    for name in spec.by:
        check_group_type(_find(schema, name, role="group-by", path=path).type, name, path)
    if spec.ids is not None:
        id_type = _find(schema, spec.ids, role="id", path=path).type
        base = id_type.value_type if pa.types.is_dictionary(id_type) else id_type
        if not (
            pa.types.is_integer(base)
            or pa.types.is_string(base)
            or pa.types.is_large_string(base)
            or pa.types.is_binary(base)
            or pa.types.is_large_binary(base)
        ):
            raise InvalidInputError(
                f"{path}: column `{spec.ids}`: type {id_type} cannot be a row id "
                "(ids must be integers or strings)",
                path=path,
                column=spec.ids,
                rule="ids must be integers or strings",
            )

    notes: tuple[str, ...] = ()
    from_logits = spec.from_logits
    if from_logits is None:
        from_logits = "logits" in pred_names
        if from_logits:
            notes = ("column `logits` implies --from-logits",)
    return ResolvedColumns(
        labels=label_name,
        label_kind=label_kind,
        preds=tuple(pred_names),
        pred_kind=pred_kind,
        weights=spec.weights,
        by=spec.by,
        from_logits=from_logits,
        label_width=label_width,
        pred_width=pred_width,
        notes=notes,
        ids=spec.ids,
    )


# --------------------------------------------------------------------------- conversion


def _float_dtype(values: np.ndarray) -> np.ndarray:
    """float64/float32 stay as they are; float16 becomes float32; integers become float64."""
    if values.dtype == np.float16:
        return values.astype(np.float32)
    if values.dtype.kind == "f":
        return values
    return values.astype(np.float64)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _null_rule(role: str) -> str:
    return f"null value (nulls are not allowed in {role})"


def scalar_values(array: pa.Array, *, name: str, role: str, dtype: str = "float") -> ColumnValues:
    """Convert a scalar numeric column: ``dtype`` is ``"float"`` (float16 → float32, ints →
    float64), ``"float64"`` or ``"int64"``; zero-copy when the type already fits."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    invalid = None
    if array.null_count:
        invalid = array.is_null().to_numpy(zero_copy_only=False)
        array = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
    values = as_numpy(array)
    too_large = None
    if dtype == "int64" and values.dtype == np.uint64:  # 2**64 - 1 must not read as -1
        too_large = values > np.iinfo(np.int64).max
        if invalid is not None:
            too_large &= ~invalid
        too_large = too_large if too_large.any() else None
    if dtype == "float":
        values = _float_dtype(values)
    else:
        values = values.astype(dtype, copy=False)
    if too_large is not None:
        row = _first(too_large)
        value = int(as_numpy(array)[row])
        first_null = _first(invalid) if invalid is not None else row + 1
        invalid = too_large if invalid is None else invalid | too_large
        if row < first_null:
            rule = f"value {value} is too large (at most {np.iinfo(np.int64).max} in {role})"
            return ColumnValues(values, invalid, (row, name, rule))
    if invalid is None:
        return ColumnValues(values)
    return ColumnValues(values, invalid, (_first(invalid), name, _null_rule(role)))


def _most_common(lengths: np.ndarray) -> int:
    if lengths.size == 0:
        return 0
    if lengths[0] == lengths[-1] and (lengths == lengths[0]).all():
        return int(lengths[0])
    return int(np.argmax(np.bincount(lengths)))


def list_values(array: pa.Array, *, name: str, role: str, width: int | None) -> ColumnValues:
    """Convert a list / large_list / fixed_size_list column of numbers to a 2-D array.

    Zero-copy (a reshaped view of the Arrow values buffer) when there are no nulls and every
    list has the same length; otherwise rows that are null, ragged (length ≠ ``width``, or the
    most common length when ``width`` is None) or contain a null are flagged invalid.
    """
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    num_rows = len(array)
    lengths: np.ndarray | None = None
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
        start, offsets = array.offset * width, None
        flat = array.values.slice(start, num_rows * width)
    else:
        offsets = as_numpy(array.offsets)
        start = int(offsets[0]) if num_rows else 0
        flat = array.values.slice(start, int(offsets[-1]) - start if num_rows else 0)
        lengths = np.diff(offsets)
        if width is None:
            if array.null_count:
                width = _most_common(lengths[~array.is_null().to_numpy(zero_copy_only=False)])
            else:
                width = _most_common(lengths)
    invalid = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if lengths is not None and not (lengths == width).all():
        ragged = lengths != width
        invalid = ragged if invalid is None else invalid | ragged
    if flat.null_count:
        value_rows = np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))
        if offsets is None:
            value_rows //= max(width, 1)
        else:
            value_rows = np.searchsorted(offsets[1:] - start, value_rows, side="right")
        with_null = np.zeros(num_rows, dtype=bool)
        with_null[value_rows] = True
        invalid = with_null if invalid is None else invalid | with_null

    flat_values = as_numpy(flat)
    if invalid is None:
        return ColumnValues(_float_dtype(flat_values.reshape(num_rows, width)))
    if offsets is None:
        matrix = flat_values.reshape(num_rows, width)
    else:
        matrix = np.zeros((num_rows, width), dtype=flat_values.dtype)
        valid = ~invalid
        positions = (offsets[:-1][valid] - start)[:, None] + np.arange(width)
        matrix[valid] = flat_values[positions]
    row = _first(invalid)
    if not array[row].is_valid:
        rule = _null_rule(role)
    elif lengths is not None and lengths[row] != width:
        rule = f"list has {lengths[row]} values, expected {width} (ragged lists)"
    else:
        rule = f"list contains a null value (nulls are not allowed in {role})"
    return ColumnValues(_float_dtype(matrix), invalid, (row, name, rule))


_INDEX_TYPES = (pa.int32(), pa.int64())
_SCORE_TYPES = (pa.float32(), pa.float64())


def clean_arrays(
    data: pa.RecordBatch | pa.Table, cols: ResolvedColumns
) -> tuple[np.ndarray, np.ndarray] | None:
    """Class-index labels (int32/int64) and 2-D float32/float64 predictions of Arrow data as
    NumPy views, when no row needs the checks or conversions of the general conversion: no
    nulls, every list of one length, no weights or groups. None otherwise.
    """
    if (
        cols.label_kind != "sparse"
        or cols.pred_kind != "list"
        or cols.weights is not None
        or cols.by
        or cols.ids
        or not isinstance(data, pa.RecordBatch)
    ):
        return None
    try:
        labels, preds = data.column(cols.labels), data.column(cols.preds[0])
    except KeyError:  # a partition column
        return None
    if labels.type not in _INDEX_TYPES or labels.null_count or preds.null_count:
        return None
    if pa.types.is_fixed_size_list(preds.type):
        width = preds.type.list_size
        flat = preds.values.slice(preds.offset * width, len(preds) * width)
        if width != (cols.pred_width or width) or flat.type not in _SCORE_TYPES or flat.null_count:
            return None
        matrix = as_numpy(flat).reshape(len(preds), width)
    else:
        values = list_values(preds, name=cols.preds[0], role="predictions", width=cols.pred_width)
        if values.invalid is not None or values.values.dtype not in (np.float32, np.float64):
            return None
        matrix = values.values
    return as_numpy(labels), matrix


def stacked_values(arrays: Mapping[str, pa.Array], *, role: str) -> ColumnValues:
    """Stack several scalar numeric columns into an (n, k) float array, in mapping order.

    The result is float32 when every column is float32/float16, else float64.
    """
    parts = [scalar_values(array, name=name, role=role) for name, array in arrays.items()]
    dtype = np.result_type(*(part.values.dtype for part in parts)) if parts else np.float64
    num_rows = len(parts[0].values) if parts else 0
    matrix = np.empty((num_rows, len(parts)), dtype=dtype)
    invalid: np.ndarray | None = None
    first: tuple[int, str, str] | None = None
    for position, part in enumerate(parts):
        matrix[:, position] = part.values
        if part.invalid is not None and part.first_invalid is not None:
            invalid = part.invalid if invalid is None else invalid | part.invalid
            if first is None or part.first_invalid[0] < first[0]:
                first = part.first_invalid
    return ColumnValues(matrix, invalid, first)
