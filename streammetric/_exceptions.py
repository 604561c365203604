"""The exceptions streammetric raises.

The tree::

    StreamMetricError                 base of everything raised on purpose
    ├── InvalidInputError(ValueError) data that breaks a rule (shape, range, NaN, type)
    ├── ConfigError(ValueError)       unknown metric / convention / option, bad config
    └── StateError(ValueError)        a state or checkpoint that cannot be loaded or merged

Messages are one line and name the argument, the rule and what was received, e.g.
``"`labels` and `preds` must have the same number of rows, got 10 and 7"``.
"""

from __future__ import annotations


class StreamMetricError(Exception):
    """Base class of every error streammetric raises on purpose."""


class InvalidInputError(StreamMetricError, ValueError):
    """Input data breaks a rule: shape, range, NaN, dtype."""


class ConfigError(StreamMetricError, ValueError):
    """An unknown name or a bad option: metric, convention, keyword, config file."""


class StateError(StreamMetricError, ValueError):
    """A metric state, checkpoint or merge partner that does not fit."""
