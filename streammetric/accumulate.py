"""Exact, order-independent summation: the sum behind every metric state.

Every finite float64 is an integer multiple of ``2**-1074`` (the smallest subnormal), so a sum of
float64 values is an exact integer in those units. :class:`ExactSum` keeps that integer (a Python
int) plus counts of ``+inf``, ``-inf`` and NaN. Adding is exact, so the result is the same bits
whatever the batch sizes, the order of batches and the merge tree, and :attr:`ExactSum.value` is
the correctly rounded sum (equal to :func:`math.fsum` of the same values).

The hot loop is C (``_kernels.exact_sum``, a long accumulator of 32-bit digits): one pass per
batch, a few ns per value, with the GIL released.

>>> s = ExactSum()
>>> s.add([1e16, 1.0, -1e16])
>>> s.value
1.0
>>> t = ExactSum.from_values([0.1] * 10)
>>> t.value == math.fsum([0.1] * 10)
True
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import numpy as np

from ._exceptions import StateError
from ._kernels import GroupSums as _GroupSums
from ._kernels import exact_sum as _exact_sum

__all__ = [
    "UNITS_PER_ONE",
    "ExactSum",
    "GroupedExactSum",
    "exact_sum_units",
    "units_to_float",
]

_UNIT_EXP = -1074  # float64 values are integer multiples of 2**_UNIT_EXP
_SCALE = 1 << -_UNIT_EXP  # 2**1074 as a Python int, for correctly rounded division
#: the units of 1.0 in an exact sum: a count ``c`` of rows is ``c * UNITS_PER_ONE`` units
UNITS_PER_ONE = _SCALE
#: No sum of float64 values comes near 2**MAX_UNIT_BITS units: each is below 2**1024, i.e.
#: 2**2098 units, so even 2**100 of them stay below 2**2198. A state beyond is not a sum.
MAX_UNIT_BITS = 2200
_MAX_DIGITS = len(str(1 << MAX_UNIT_BITS))  # 663 decimal digits
_MAX_COUNT = 1 << 63
_DECIMAL = re.compile(r"-?[0-9]+\Z")
#: The counts of non-finite values of an exact sum, by their name in its JSON form.
NONFINITE = ("num_pos_inf", "num_neg_inf", "num_nan")
_JSON_KEYS = frozenset({"mantissa", "shift", *NONFINITE})


def _sum(values: Any) -> tuple[int, int, int, int]:
    """(units, +inf count, -inf count, NaN count) of the values of an array-like."""
    result = _exact_sum(np.ascontiguousarray(values, dtype=np.float64))
    assert result is not None  # a contiguous float64 array is always accepted
    return result


def exact_sum_units(values: np.ndarray) -> int:
    """Exact sum of finite float64 ``values`` as an integer number of ``2**-1074`` units.

    >>> exact_sum_units(np.array([0.5, 0.25])) == (3 << 1072)
    True
    """
    units, *special = _sum(values)
    if any(special):
        raise ValueError("exact_sum_units takes finite values only")
    return units


def units_to_float(units: int, divisor: int = 1) -> float:
    """``units * 2**-1074 / divisor`` correctly rounded (inf on overflow).

    >>> units_to_float(3 << 1072)
    0.75
    """
    try:
        return units / (divisor * _SCALE)
    except OverflowError:
        return math.inf if (units > 0) == (divisor > 0) else -math.inf


def _sum_json(units: int, num_pos_inf: int, num_neg_inf: int, num_nan: int) -> dict[str, Any]:
    """The JSON form of an exact sum (`ExactSum.to_json`): ``units == int(mantissa) << shift``,
    and the counts of non-finite values that are not 0."""
    shift = (units & -units).bit_length() - 1 if units else 0
    state: dict[str, Any] = {"mantissa": str(units >> shift), "shift": shift}
    for name, count in zip(NONFINITE, (num_pos_inf, num_neg_inf, num_nan), strict=True):
        if count:
            state[name] = count
    return state


class ExactSum:
    """An exact running sum of float64 values, mergeable and JSON-serialisable.

    Non-finite values are counted, so the value is ``inf``/``-inf``/``nan`` as IEEE arithmetic
    would give, independent of order.
    """

    __slots__ = ("_units", "num_nan", "num_neg_inf", "num_pos_inf")

    def __init__(self) -> None:
        self._units = 0
        self.num_pos_inf = 0
        self.num_neg_inf = 0
        self.num_nan = 0

    @classmethod
    def from_values(cls, values: Any) -> ExactSum:
        s = cls()
        s.add(values)
        return s

    @property
    def units(self) -> int:
        """The exact finite part of the sum, in units of ``2**-1074``."""
        return self._units

    def add(self, values: Any) -> None:
        """Add every value of an array-like (any shape; converted to float64)."""
        result = _exact_sum(values) if type(values) is np.ndarray else None
        units, pos_inf, neg_inf, nan = _sum(values) if result is None else result
        self._units += units
        if pos_inf or neg_inf or nan:
            self.num_pos_inf += pos_inf
            self.num_neg_inf += neg_inf
            self.num_nan += nan

    def add_count(self, count: int) -> None:
        """Add an integer (e.g. a number of samples of weight 1) exactly."""
        self._units += count * _SCALE

    def add_float(self, value: float) -> None:
        """Add one Python float (cheap path for scalars)."""
        if math.isfinite(value):
            num, den = value.as_integer_ratio()
            self._units += num * (_SCALE // den)
        elif math.isnan(value):
            self.num_nan += 1
        elif value > 0:
            self.num_pos_inf += 1
        else:
            self.num_neg_inf += 1

    def merge(self, other: ExactSum) -> ExactSum:
        """Add another sum into this one (exact); returns ``self``."""
        self._units += other.units
        self.num_pos_inf += other.num_pos_inf
        self.num_neg_inf += other.num_neg_inf
        self.num_nan += other.num_nan
        return self

    def _special(self) -> float | None:
        if self.num_nan or (self.num_pos_inf and self.num_neg_inf):
            return math.nan
        if self.num_pos_inf:
            return math.inf
        if self.num_neg_inf:
            return -math.inf
        return None

    @property
    def value(self) -> float:
        """The correctly rounded sum."""
        special = self._special()
        return special if special is not None else units_to_float(self.units)

    def ratio(self, other: ExactSum | int) -> float:
        """``self / other`` correctly rounded from the exact values (NaN over 0).

        >>> ExactSum.from_values([1.0, 2.0]).ratio(3)
        1.0
        """
        if isinstance(other, int):
            special = self._special()
            if other == 0:
                return math.nan
            if special is not None:
                return special if other > 0 else -special
            return units_to_float(self.units, other)
        special, other_special = self._special(), other._special()
        if special is not None or other_special is not None:
            return self.value / other.value if other.value != 0 else math.nan
        if other.units == 0:  # a mean over no weight, as over no row: NaN (as PyTorch's)
            return math.nan
        try:
            return self.units / other.units
        except OverflowError:
            return math.inf if (self.units > 0) == (other.units > 0) else -math.inf

    def copy(self) -> ExactSum:
        return ExactSum().merge(self)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable exact state: ``units == int(mantissa) << shift``.

        >>> ExactSum.from_values([0.5]).to_json()
        {'mantissa': '1', 'shift': 1073}
        """
        return _sum_json(self.units, self.num_pos_inf, self.num_neg_inf, self.num_nan)

    @classmethod
    def from_json(cls, state: Any, field: str = "sum") -> ExactSum:
        """The inverse of `to_json`. Every field is checked before anything is allocated (a
        huge ``shift`` or ``mantissa`` would take all memory): a `StateError` names the field
        (``field`` is this sum's own name in the caller's state)."""
        if not isinstance(state, dict):
            raise StateError.bad_field(
                field, "must be an exact sum state {'mantissa': '<int>', 'shift': <int>}", state
            )
        if state.keys() - _JSON_KEYS:
            first = sorted(str(key) for key in state.keys() - _JSON_KEYS)[0]
            raise StateError.bad_field(
                f"{field}.{first}", "is not a field of an exact sum state", state[first]
            )
        mantissa, shift = state.get("mantissa"), state.get("shift")
        if (
            not isinstance(mantissa, str)
            or len(mantissa) > _MAX_DIGITS + 1
            or not _DECIMAL.match(mantissa)
        ):
            raise StateError.bad_field(
                f"{field}.mantissa",
                f"must be a string of at most {_MAX_DIGITS} decimal digits",
                mantissa,
            )
        if type(shift) is not int or not 0 <= shift <= MAX_UNIT_BITS:
            raise StateError.bad_field(
                f"{field}.shift", f"must be an int in 0..{MAX_UNIT_BITS}", shift
            )
        units = int(mantissa)
        if units.bit_length() + shift > MAX_UNIT_BITS:
            raise StateError.bad_field(
                f"{field}.mantissa",
                f"shifted by {shift} must stay below 2**{MAX_UNIT_BITS} units (beyond any float64 sum)",
                mantissa,
            )
        s = cls()
        s._units = units << shift
        if len(state) == 2:  # no counts of non-finite values
            return s
        for name in NONFINITE:
            count = state.get(name, 0)
            if type(count) is not int or not 0 <= count < _MAX_COUNT:
                raise StateError.bad_field(f"{field}.{name}", "must be an int in 0..2**63-1", count)
            setattr(s, name, count)
        return s

    @staticmethod
    def units_from_json(states: list[Any]) -> list[int] | None:
        """The units of a column of finite sums (``{"mantissa", "shift"}`` only), each
        checked as `from_json` checks it, in a few passes over the column instead of one call
        per sum; None if any is not such a sum (`from_json` of each then names the first)."""
        if set(map(type, states)) - {dict} or set(map(len, states)) - {2}:
            return None
        try:
            mantissas = [state["mantissa"] for state in states]
            shifts = [state["shift"] for state in states]
        except KeyError:
            return None
        return ExactSum.units_from_parts(mantissas, shifts)

    @staticmethod
    def units_from_parts(mantissas: list[Any], shifts: list[Any]) -> list[int] | None:
        """`units_from_json` of the sums ``{"mantissa": mantissas[i], "shift": shifts[i]}``."""
        if set(map(type, mantissas)) - {str} or set(map(type, shifts)) - {int}:
            return None
        if max(map(len, mantissas), default=0) > _MAX_DIGITS + 1:
            return None
        if not all(map(_DECIMAL.match, mantissas)):
            return None
        if min(shifts, default=0) < 0 or max(shifts, default=0) > MAX_UNIT_BITS:
            return None
        units = list(map(int, mantissas))
        if max(map(operator.add, map(int.bit_length, units), shifts), default=0) > MAX_UNIT_BITS:
            return None
        return list(map(operator.lshift, units, shifts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactSum):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"ExactSum({self.value!r})"


class GroupedExactSum:
    """Exact float64 sums per group code ``0 .. len(self) - 1``: a segmented :class:`ExactSum`.

    ``add(values, codes)`` adds each value to its row's group in one pass in C (no Python per
    group, no Python int per batch); a group's :class:`ExactSum` is made only when it is read.
    Group ``g`` holds the same bits as an :class:`ExactSum` of the values whose code is ``g``,
    whatever the batching, order or merge tree. ``merge(other, mapping)`` adds ``other``'s
    group ``i`` into group ``mapping[i]`` (codes of two units of work into one numbering).

    >>> s = GroupedExactSum()
    >>> s.add(np.array([1e16, 0.5, 1.0, -1e16]), np.array([0, 1, 0, 0]))
    >>> len(s), s[0].value, s[1].value, s[7].value
    (2, 1.0, 0.5, 0.0)
    >>> t = GroupedExactSum().merge(s, np.array([1, 0])).merge(s)
    >>> t[0].value, t[1].value
    (1.5, 1.5)
    """

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums = _GroupSums()

    def __len__(self) -> int:
        return int(self._sums.size)

    def add(self, values: Any, codes: Any) -> None:
        """Add ``values[i]`` to group ``codes[i]`` for every row (1-D, one code per value)."""
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        codes = np.asarray(codes)
        if codes.dtype not in (np.int32, np.int64):
            codes = codes.astype(np.int64)
        codes = np.ascontiguousarray(codes).reshape(-1)
        if len(codes) != len(values):
            raise ValueError(f"one group code per value: {len(values)} values, {len(codes)} codes")
        if not self._sums.add(values, codes):  # pragma: no cover - the arrays are made to fit
            raise TypeError("GroupSums.add refused contiguous float64 values and int codes")

    def merge(self, other: GroupedExactSum, mapping: Any = None) -> GroupedExactSum:
        """Add ``other``'s groups into this one (group ``i`` into ``mapping[i]``, or ``i``);
        exact. Returns ``self``."""
        if mapping is not None:
            mapping = np.ascontiguousarray(mapping, dtype=np.int64)
        self._sums.merge(other._sums, mapping)
        return self

    def json_columns(self, groups: Any, counts: Any) -> dict[str, list[Any]]:
        """The JSON form (`ExactSum.to_json`) of the sum of each group of ``groups`` plus the
        whole count beside it in ``counts`` (as `GroupedState` keeps counted rows apart), by
        field: ``{"mantissa": [...], "shift": [...]}`` (item ``i`` group ``groups[i]``'s), and
        a list of each count of non-finite values that is not 0 everywhere; no `ExactSum` and
        no dict per group."""
        mantissas, shifts, special = self._sums.json_parts(
            np.ascontiguousarray(groups, dtype=np.int64),
            np.ascontiguousarray(counts, dtype=np.int64),
        )
        out: dict[str, list[Any]] = {"mantissa": mantissas, "shift": shifts}
        counted = np.frombuffer(special, dtype=np.int64).reshape(-1, len(NONFINITE))
        for name, column in zip(NONFINITE, counted.T, strict=True):
            if column.any():
                out[name] = column.tolist()
        return out

    def __getitem__(self, group: int) -> ExactSum:
        """Group ``group``'s sum (an empty sum beyond the groups added to)."""
        units, pos_inf, neg_inf, nan = self._sums.get(group)
        s = ExactSum()
        s._units, s.num_pos_inf, s.num_neg_inf, s.num_nan = units, pos_inf, neg_inf, nan
        return s

    def sums(self) -> list[ExactSum]:
        """Every group's sum, in code order."""
        return [self[g] for g in range(len(self))]

    def to_json(self) -> list[dict[str, Any]]:
        """Each group's `ExactSum.to_json`, in code order."""
        return [s.to_json() for s in self.sums()]

    @classmethod
    def from_json(cls, states: Any, field: str = "sums") -> GroupedExactSum:
        """The inverse of `to_json` (each group checked as `ExactSum.from_json` checks it)."""
        if not isinstance(states, list):
            raise StateError.bad_field(field, "must be a list of exact sum states", states)
        out = cls()
        for g, state in enumerate(states):
            one = ExactSum.from_json(state, f"{field}[{g}]")
            out._add_sum(g, one)
        return out

    def add_units(self, groups: np.ndarray, units: list[int]) -> None:
        """Add the finite sum of ``units[i]`` units into group ``groups[i]``, for every i."""
        self._sums.add_units_many(np.ascontiguousarray(groups, dtype=np.int64), units)

    def _add_sum(self, group: int, s: ExactSum) -> None:
        """Add an `ExactSum` into one group (its units and counts as they are)."""
        self._sums.add_units(group, s.units, s.num_pos_inf, s.num_neg_inf, s.num_nan)

    def __getstate__(self) -> list[tuple[int, int, int, int]]:
        """Pickling and copying (a metric state holds these): each group's exact parts."""
        return [self._sums.get(g) for g in range(len(self))]

    def __setstate__(self, state: list[tuple[int, int, int, int]]) -> None:
        self._sums = _GroupSums()
        for group, (units, pos_inf, neg_inf, nan) in enumerate(state):
            self._sums.add_units(group, units, pos_inf, neg_inf, nan)
        if state and not len(self) == len(state):  # pragma: no cover - add_units sizes it
            raise StateError("a GroupedExactSum did not restore its groups")


def int_quotients(
    numerators: np.ndarray, denominators: np.ndarray, fill: float = math.nan
) -> np.ndarray:
    """``numerators / denominators`` of exact ints (int64, or Python ints in object arrays;
    arrays of one shape), float64, each rounded once as Python's ``int / int`` rounds it (in
    float64 where every int is below 2**53: exact there, so rounded once too); ``fill`` where
    a denominator is 0.

    >>> int_quotients(np.array([1, 2, 10**400], dtype=object), np.array([3, 0, 3 * 10**400]))
    array([0.33333333, nan, 0.33333333])
    """
    zero = np.asarray(denominators == 0, dtype=bool)
    if (
        numerators.dtype != object
        and denominators.dtype != object
        and (
            not numerators.size
            or max(float(np.abs(numerators).max()), float(np.abs(denominators).max())) < 2.0**53
        )
    ):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = numerators.astype(np.float64) / denominators.astype(np.float64)
    else:
        safe = np.where(zero, 1, denominators).astype(object)
        values = np.asarray(numerators.astype(object) / safe, dtype=object).astype(np.float64)
    values[zero] = fill
    return values
