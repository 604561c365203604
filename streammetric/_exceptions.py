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

from typing import Any


class StreamMetricError(Exception):
    """Base class of every error streammetric raises on purpose."""


class InvalidInputError(StreamMetricError, ValueError):
    """Input data breaks a rule: shape, range, NaN, dtype."""


class ConfigError(StreamMetricError, ValueError):
    """An unknown name or a bad option: metric, convention, keyword, config file."""


class StateError(StreamMetricError, ValueError):
    """A metric state, checkpoint or merge partner that does not fit.

    A bad field of a state or checkpoint is named by fields, not only in the message:
    ``path`` (the file, if any), ``field`` (dotted, e.g. ``"local.num_inst"`` or
    ``"partial.groups[0].state.local.num_inst"``), ``rule`` (what it must be) and ``value``.

    >>> error = StateError.bad_field("local.num_inst", "must be an int >= 0", -3)
    >>> str(error), error.field
    ('`state` field `local.num_inst` must be an int >= 0, got -3', 'local.num_inst')
    """

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        field: str | None = None,
        rule: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.path, self.field, self.rule, self.value = path, field, rule, value

    @classmethod
    def bad_field(
        cls, field: str, rule: str, value: Any, *, what: str = "`state`", path: str | None = None
    ) -> StateError:
        """``"[PATH: ]WHAT field `FIELD` RULE, got VALUE"`` (the value shortened to one line)."""
        text = repr(value)
        text = text if len(text) <= 80 else text[:77] + "..."
        where = f"{path}: " if path else ""
        message = f"{where}{what} field `{field}` {rule}, got {text}"
        return cls(message, path=path, field=field, rule=rule, value=value)

    def within(self, prefix: str, *, what: str, path: str | None = None) -> StateError:
        """This error as part of a larger document: the field under ``prefix``, in ``path``."""
        if self.field is None or self.rule is None:
            where = f"{path}: " if path else ""
            return StateError(f"{where}{self}", path=path, field=prefix or None)
        field = ".".join(part for part in (prefix, self.field) if part)
        return StateError.bad_field(field, self.rule, self.value, what=what, path=path)
