"""``_repr_html_``: results and metric objects show as compact tables in notebooks."""

from __future__ import annotations

from pathlib import Path

import streammetric as sm
from streammetric import metrics
from tests.report.test_html_report import multiclass


def test_result_repr_html(tmp_path: Path) -> None:
    data = multiclass(tmp_path / "p.parquet", rows=400)
    result = sm.evaluate(str(data), ["ce", "acc"], by="model")
    text = result._repr_html_()
    assert text.startswith("<table><caption>400 rows, 0 invalid</caption>")
    assert f"<td>{result.metrics['accuracy']:.6g}</td>" in text
    assert "3 groups" in text and '<td style="text-align:left">vit</td>' in text
    assert text.count("<table>") == 2


def test_metric_repr_html() -> None:
    metric = metrics.Accuracy()
    metric.update([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    text = metric._repr_html_()
    assert "<caption>Accuracy</caption>" in text and "<td>0.666667</td>" in text


def test_many_groups_are_shortened(tmp_path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    rows = 300
    pq.write_table(
        pa.table(
            {
                "label": rng.integers(0, 2, rows),
                "pred": rng.integers(0, 2, rows),
                "g": np.arange(rows) % 50,
            }
        ),
        tmp_path / "g.parquet",
    )
    result = sm.evaluate(str(tmp_path / "g.parquet"), ["acc"], preds="pred", by="g")
    text = result._repr_html_()
    assert "… 30 more rows" in text
