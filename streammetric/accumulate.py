"""Exact, order-independent summation: the sum behind every metric state.

Every finite float64 is an integer multiple of ``2**-1074`` (the smallest subnormal), so a sum of
float64 values is an exact integer in those units. :class:`ExactSum` keeps that integer (a Python
int) plus counts of ``+inf``, ``-inf`` and NaN. Adding is exact, so the result is the same bits
whatever the batch sizes, the order of batches and the merge tree, and :attr:`ExactSum.value` is
the correctly rounded sum (equal to :func:`math.fsum` of the same values).

The hot path (:func:`exact_sum_units`) avoids Python loops. It splits each value on a fixed
global grid of 32-bit *levels* (level ``L`` holds the multiples of ``2**(-1074 + 32*L)``) with the
classic magic-constant extraction ``hi = (r + M) - M``, from the level of the batch's largest
value downwards until nothing is left. Each level's limbs are integer multiples of the level's
unit no larger than ``2**31`` units, so ``np.sum`` of up to ``2**21`` of them is exact. The grid
does not depend on the data, so each value's limbs do not either.

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
from typing import Any

import numpy as np

from ._exceptions import StateError

__all__ = ["ExactSum", "exact_sum_units", "units_to_float"]

_UNIT_EXP = -1074  # float64 values are integer multiples of 2**_UNIT_EXP
_LEVEL_BITS = 32  # width of a level of the global grid
# Values per np.sum call: 2**21 limbs of at most 2**31 units would stay below 2**53; 2**16 keeps
# the working arrays in cache.
_CHUNK = 1 << 16
_BUFFER = 1 << 16  # small updates are buffered and split in one go
_SCALE = 1 << -_UNIT_EXP  # 2**1074 as a Python int, for correctly rounded division
# Values at or above 2**_BIG_EXP go through the slow exact path (M = 1.5 * 2**(b + 52) must not
# overflow); no loss or metric value comes near it.
_BIG_EXP = 960


def _level_of(exponent: int) -> int:
    """The lowest level whose limbs can hold a value below ``2**exponent``."""
    # A level with unit 2**b holds |r| < 2**(b + 31) without limb overflow (rounding to the
    # nearest multiple of the level above leaves at most half its unit).
    return max(0, -(-(exponent - _UNIT_EXP - _LEVEL_BITS + 1) // _LEVEL_BITS))


def _slow_units(values: np.ndarray) -> int:
    """Exact sum in units of 2**-1074 via Python's integer ratios (for extreme magnitudes)."""
    total = 0
    for v in values.tolist():
        num, den = float(v).as_integer_ratio()
        total += num * (_SCALE // den)  # den is a power of 2, at most 2**1074
    return total


def exact_sum_units(values: np.ndarray) -> int:
    """Exact sum of finite float64 ``values`` as an integer number of ``2**-1074`` units.

    >>> exact_sum_units(np.array([0.5, 0.25])) == (3 << 1072)
    True
    """
    x = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return 0
    total = 0
    for start in range(0, x.size, _CHUNK):
        total += _chunk_units(x[start : start + _CHUNK])
    return total


def _chunk_units(x: np.ndarray) -> int:
    biggest = max(float(x.max()), -float(x.min()))
    if biggest == 0.0:
        return 0
    exponent = math.frexp(biggest)[1]  # biggest < 2**exponent
    if exponent >= _BIG_EXP:
        return _slow_units(x)
    level = _level_of(exponent)
    total = 0
    residual = x  # replaced by a fresh array after the first level: x is never written
    limb = np.empty_like(x)
    while True:
        unit_exp = _UNIT_EXP + _LEVEL_BITS * level
        magic = math.ldexp(1.5, unit_exp + 52)
        np.add(residual, magic, out=limb)
        np.subtract(limb, magic, out=limb)  # residual rounded to a multiple of 2**unit_exp
        level_sum = float(np.sum(limb))  # exact: multiples of the unit, bounded in size
        if level_sum:
            total += int(math.ldexp(level_sum, -unit_exp)) << (unit_exp - _UNIT_EXP)
        if level == 0:
            return total
        residual = np.subtract(residual, limb, out=None if residual is x else residual)
        if not residual.any():
            return total
        level -= 1


def units_to_float(units: int, divisor: int = 1) -> float:
    """``units * 2**-1074 / divisor`` correctly rounded (inf on overflow).

    >>> units_to_float(3 << 1072)
    0.75
    """
    try:
        return units / (divisor * _SCALE)
    except OverflowError:
        return math.inf if (units > 0) == (divisor > 0) else -math.inf


class ExactSum:
    """An exact running sum of float64 values, mergeable and JSON-serialisable.

    Small updates are buffered (a float64 array of up to 65,536 values) and split into exact
    units in one go when the buffer is full or the sum is read; the buffer never changes the
    result. Non-finite values are counted, so the value is ``inf``/``-inf``/``nan`` as IEEE
    arithmetic would give, independent of order.
    """

    __slots__ = ("_buffer", "_fill", "_units", "num_nan", "num_neg_inf", "num_pos_inf")

    def __init__(self) -> None:
        self._units = 0
        self._buffer: np.ndarray | None = None
        self._fill = 0
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
        self._flush()
        return self._units

    def add(self, values: Any) -> None:
        """Add every value of an array-like (any shape; converted to float64)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.size < _BUFFER // 4:
            if self._buffer is None:
                self._buffer = np.empty(_BUFFER, dtype=np.float64)
            if self._fill + x.size > _BUFFER:
                self._flush()
            self._buffer[self._fill : self._fill + x.size] = x
            self._fill += x.size
            return
        self._add_now(x)

    def _flush(self) -> None:
        if self._fill:
            self._add_now(self._buffer[: self._fill])  # type: ignore[index]
            self._fill = 0

    def _add_now(self, x: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # the probe may overflow: no warning
            probe = float(np.add.reduce(x))
        if math.isfinite(probe):  # one pass proves every value finite
            self._units += exact_sum_units(x)
            return
        finite = np.isfinite(x)  # some inf/NaN (or a float sum that overflowed): split them off
        self._units += exact_sum_units(x[finite])
        rest = x[~finite]
        self.num_nan += int(np.isnan(rest).sum())
        self.num_pos_inf += int((rest == np.inf).sum())
        self.num_neg_inf += int((rest == -np.inf).sum())

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
        self._flush()
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
        """``self / other`` correctly rounded from the exact values (NaN for 0/0).

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
        if other.units == 0:
            return math.nan if self.units == 0 else (math.inf if self.units > 0 else -math.inf)
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
        units = self.units
        shift = (units & -units).bit_length() - 1 if units else 0
        state: dict[str, Any] = {"mantissa": str(units >> shift), "shift": shift}
        for name in ("num_pos_inf", "num_neg_inf", "num_nan"):
            if getattr(self, name):
                state[name] = getattr(self, name)
        return state

    @classmethod
    def from_json(cls, state: Any) -> ExactSum:
        s = cls()
        try:
            s._units = int(state["mantissa"]) << int(state["shift"])
            s.num_pos_inf = int(state.get("num_pos_inf", 0))
            s.num_neg_inf = int(state.get("num_neg_inf", 0))
            s.num_nan = int(state.get("num_nan", 0))
        except (TypeError, KeyError, ValueError) as exc:
            raise StateError(
                f"an exact sum state must be {{'mantissa': '<int>', 'shift': <int>, ...}}, got {state!r}"
            ) from exc
        return s

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactSum):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"ExactSum({self.value!r})"
