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

import sys
from typing import Any


class StreamMetricError(Exception):
    """Base class of every error streammetric raises on purpose."""


class InvalidInputError(StreamMetricError, ValueError):
    """Input data breaks a rule: shape, range, NaN, dtype.

    Besides the message, fields say what broke which rule (None when not known):

    - ``argument``: ``"labels"``, ``"preds"`` or ``"sample_weight"`` (the functional API's
      ``y_true`` and ``y_pred`` are ``"labels"`` and ``"preds"`` here too), or another
      argument by its name, e.g. ``"class_weight"``;
    - ``row``: the row within the arrays passed in (a tuple of indices when rows have several
      dimensions); once located in a file, the row of the file;
    - ``rule``: what the value must be, e.g. ``"must be finite"``;
    - ``value``: what was received (NumPy values as Python ones), e.g. the row's values;
    - ``path`` and ``column``: the file and column, once an evaluation located the error.

    >>> error = InvalidInputError.bad_row("labels", 3, "must be a class index in [0, 3)", [5])
    >>> str(error), error.argument, error.row
    ('`labels` row 3 must be a class index in [0, 3), got [5]', 'labels', 3)
    >>> str(error.located("data.parquet", "label", 1003))
    'data.parquet: column `label`, row 1003: must be a class index in [0, 3), got [5]'
    """

    def __init__(
        self,
        message: str = "",
        *,
        argument: str | None = None,
        row: int | tuple[int, ...] | None = None,
        rule: str | None = None,
        value: Any = None,
        path: str | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.argument, self.row, self.rule, self.value = argument, row, rule, value
        self.path, self.column = path, column

    @classmethod
    def bad_row(
        cls, argument: str, row: int | tuple[int, ...], rule: str, value: Any
    ) -> InvalidInputError:
        """``"`ARGUMENT` row ROW RULE, got VALUE"`` (the value shortened to one line)."""
        value = _plain(value)
        message = f"`{argument}` row {row} {rule}, got {_shown(value)}"
        return cls(message, argument=argument, row=row, rule=rule, value=value)

    @classmethod
    def bad_argument(cls, argument: str, rule: str, value: Any) -> InvalidInputError:
        """``"`ARGUMENT` RULE, got VALUE"``: a value of the whole argument (a dtype, a count)."""
        value = _plain(value)
        message = f"`{argument}` {rule}, got {_shown(value)}"
        return cls(message, argument=argument, rule=rule, value=value)

    def in_batch(self, rows: Any) -> InvalidInputError:
        """This error of an update with some rows of a batch, in the batch: ``rows[i]`` is the
        batch's row of the update's row ``i`` (the first index of a tuple row). An error
        without a row, or with a row ``rows`` does not hold, is returned as it is. The message
        of `bad_row` names the batch's row; another message is kept.

        >>> error = InvalidInputError.bad_row("labels", 1, "must be finite", [float("nan")])
        >>> moved = error.in_batch([4, 7, 9])
        >>> str(moved), moved.row
        ('`labels` row 7 must be finite, got [nan]', 7)
        """
        given = self.row
        row = given[0] if isinstance(given, tuple) and given else given
        if given is None or type(row) is not int or not 0 <= row < len(rows):
            return self
        moved: int | tuple[int, ...] = int(rows[row])
        if isinstance(given, tuple):
            moved = (int(rows[row]), *given[1:])
        message = str(self)
        if self.argument is not None and self.rule is not None:
            said = InvalidInputError.bad_row(self.argument, given, self.rule, self.value)
            if message == str(said):
                message = str(
                    InvalidInputError.bad_row(self.argument, moved, self.rule, self.value)
                )
        return InvalidInputError(
            message,
            argument=self.argument,
            row=moved,
            rule=self.rule,
            value=self.value,
            path=self.path,
            column=self.column,
        )

    def located(
        self, path: str, column: str | None = None, row: int | None = None
    ) -> InvalidInputError:
        """This error in a file: ``"PATH: column `COLUMN`, row ROW: RULE, got VALUE"``, what is
        not known left out (without a column or a rule, the message follows the path)."""
        where = path if column is None else f"{path}: column `{column}`"
        if row is not None:
            where += f", row {row}"
        known = column is not None and self.rule is not None
        said = f"{self.rule}, got {_shown(self.value)}" if known else str(self)
        return InvalidInputError(
            f"{where}: {said}",
            argument=self.argument,
            row=row,
            rule=self.rule,
            value=self.value,
            path=path,
            column=column,
        )


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
        where = f"{path}: " if path else ""
        message = f"{where}{what} field `{field}` {rule}, got {_shown(value)}"
        return cls(message, path=path, field=field, rule=rule, value=value)

    def within(self, prefix: str, *, what: str, path: str | None = None) -> StateError:
        """This error as part of a larger document: the field under ``prefix``, in ``path``."""
        if self.field is None or self.rule is None:
            where = f"{path}: " if path else ""
            return StateError(f"{where}{self}", path=path, field=prefix or None)
        field = ".".join(part for part in (prefix, self.field) if part)
        return StateError.bad_field(field, self.rule, self.value, what=what, path=path)


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python numbers and lists (``tolist``); the rest as given."""
    numpy = sys.modules.get("numpy")  # this module imports no NumPy (``import streammetric``)
    kinds = () if numpy is None else (numpy.generic, numpy.ndarray)
    return value.tolist() if kinds and isinstance(value, kinds) else value


def _shown(value: Any) -> str:
    """``repr(value)`` shortened to 80 characters (a dtype as ``dtype <U1``)."""
    numpy = sys.modules.get("numpy")  # a NumPy value means NumPy is loaded: no import here
    is_dtype = numpy is not None and isinstance(value, numpy.dtype)
    text = f"dtype {value}" if is_dtype else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
