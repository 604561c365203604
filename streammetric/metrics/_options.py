"""Checks of constructor options: each raises one clear `ConfigError` line naming the option."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._exceptions import ConfigError


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_int(value: Any, name: str, *, optional: bool = False) -> Any:
    """An int (not a bool), or None when ``optional``; returned unchanged."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        what = "an int or None" if optional else "an int"
        raise ConfigError(f"`{name}` must be {what}, got {value!r}")
    return int(value)


def check_eps(value: Any, name: str = "eps") -> float | None:
    """None, or a finite number >= 0 (as a float)."""
    if value is None:
        return None
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"`{name}` must be a finite number >= 0 or None, got {value!r}")
    return float(value)


def check_number_array(value: Any, name: str, *, nonnegative: bool = False) -> Any:
    """None, or a number or array of numbers, all finite (and >= 0 with ``nonnegative``): a
    weight option such as ``pos_weight`` or ``class_weight`` (returned as given)."""
    if value is None:
        return None
    rule = "finite numbers >= 0" if nonnegative else "finite numbers"  # (a number: one of them)
    problem = isinstance(value, (str, bytes, bool, np.bool_))
    if not problem:
        from .._exceptions import StreamMetricError
        from ._inputs import to_numpy

        try:
            array = np.asarray(to_numpy(value, name), dtype=np.float64)
        except (StreamMetricError, TypeError, ValueError):
            problem = True
        else:
            problem = not np.isfinite(array).all() or bool(nonnegative and (array < 0).any())
    if problem:
        raise ConfigError(f"`{name}` must be one or a sequence of {rule}, got {value!r}")
    return value


def check_names(value: Any, name: str) -> list[str] | None:
    """``output_names``/``label_names``: None or a list (or tuple) of strings, as a list."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"`{name}` must be None or a list of str, got {value!r}")
