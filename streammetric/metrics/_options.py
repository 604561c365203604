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


def check_names(value: Any, name: str) -> list[str] | None:
    """``output_names``/``label_names``: None or a list (or tuple) of strings, as a list."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"`{name}` must be None or a list of str, got {value!r}")
