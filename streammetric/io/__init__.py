"""Chunked, bounded-memory reading of prediction files into NumPy batches.

Typical use (the local engine maps ``iter_unit`` over a thread pool)::

    spec = ColumnSpec(preds="p_*", by=("split",))
    units = plan(["preds/"], spec)                # checks every input's columns up front
    columns = resolve_units(units, spec)          # kinds, from_logits, notes for the CLI
    for unit in units:
        for batch in iter_unit(unit, columns, on_invalid="skip"):
            codes, keys = group_codes(batch.groups)   # when grouping
"""

from streammetric.io.columns import (
    DEFAULT_LABEL_COLUMNS,
    DEFAULT_PRED_COLUMNS,
    ColumnSpec,
    ColumnValues,
    ResolvedColumns,
    clean_arrays,
    resolve,
)
from streammetric.io.grouping import group_codes
from streammetric.io.reader import (
    STDIN,
    Batch,
    Unit,
    file_items,
    file_key,
    file_signature,
    fingerprint,
    iter_arrow,
    iter_unit,
    make_batch,
    plan,
    read_unit,
    resolve_paths,
    resolve_units,
    same_column_chunks,
)

__all__ = [
    "DEFAULT_LABEL_COLUMNS",
    "DEFAULT_PRED_COLUMNS",
    "STDIN",
    "Batch",
    "ColumnSpec",
    "ColumnValues",
    "ResolvedColumns",
    "Unit",
    "clean_arrays",
    "file_items",
    "file_key",
    "file_signature",
    "fingerprint",
    "group_codes",
    "iter_arrow",
    "iter_unit",
    "make_batch",
    "plan",
    "read_unit",
    "resolve",
    "resolve_paths",
    "resolve_units",
    "same_column_chunks",
]
