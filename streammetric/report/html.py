"""One self-contained HTML page for a `Result` or a `Comparison`.

Everything is generated here as text: the tables, the charts (inline SVG) and a few lines of
script that sort the tables. No request leaves the page (no CDN, no font, no image), all text
is escaped with `html.escape`, and the size is bounded whatever the data's: tables list at most
`MAX_GROUPS` groups and bar charts `MAX_BARS` (those with the most rows: `largest_groups`),
heatmaps `MAX_CLASSES` classes, and curves at most `MAX_POINTS` points. Colours are the Okabe–Ito palette (colour-blind safe).

The charts come from the values of the result and from its exact states (``Result.partial``):
the reliability diagram from each ECE's per-bin sums, ROC and PR curves from each AUC's
per-bucket counts of positives and negatives.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._html import value_text
from .._keys import key_text

if TYPE_CHECKING:
    from ..engine.compare import Comparison
    from ..engine.result import Result
    from ..metrics.base import EvalMetric

__all__ = [
    "MAX_BARS",
    "MAX_CLASSES",
    "MAX_GROUPS",
    "MAX_POINTS",
    "comparison_html",
    "result_html",
    "write_report",
]

MAX_GROUPS = 200
MAX_BARS = 40
MAX_CLASSES = 30
MAX_BINS_LISTED = 100
MAX_POINTS = 400

#: Okabe & Ito (2008): orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
BLUE, VERMILLION, GREEN, ORANGE = "#0072B2", "#D55E00", "#009E73", "#E69F00"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1100px;color:#111;padding:0 16px;line-height:1.4}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:28px;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:16px 0 4px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee;cursor:pointer;user-select:none}th.k,td.k{text-align:left}
tr:nth-child(even) td{background:#f7f7f7}
.meta{color:#444}.note{color:#444;font-size:.9em}
figure{margin:8px 0;display:inline-block;vertical-align:top}figcaption{font-size:.85em;color:#333}
svg text{font-family:inherit;fill:#111}
.better{color:#006e4f}.worse{color:#a33c00}
@media print{body{margin:0;max-width:none}th{cursor:auto}h2{break-after:avoid}
figure,table{break-inside:avoid}}
"""

_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function(t){
 t.querySelectorAll("th").forEach(function(th,i){th.title="click to sort";
  th.addEventListener("click",function(){var b=t.tBodies[0],r=Array.from(b.rows),
   d=th.dataset.dir==="a"?-1:1;th.dataset.dir=d>0?"a":"d";
   r.sort(function(x,y){var p=x.cells[i].dataset.v,q=y.cells[i].dataset.v;
    if(p!==undefined&&q!==undefined){p=parseFloat(p);q=parseFloat(q);
     if(isNaN(p))return 1;if(isNaN(q))return -1;return d*(p-q);}
    return d*x.cells[i].textContent.localeCompare(y.cells[i].textContent);});
   r.forEach(function(e){b.appendChild(e);});});});});
"""


# -- text and numbers ---------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 6) -> str:
    """A value as the page shows it: ints as they are, floats to ``digits`` significant
    digits, NaN and infinities by name (`streammetric._html.value_text`, the notebook tables').

    >>> fmt(3), fmt(0.123456789), fmt(float("nan")), fmt(float("-inf")), fmt(None)
    ('3', '0.123457', 'NaN', '-inf', '')
    """
    return value_text(value, digits)


def _num(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _cell(value: Any, *, key: bool = False) -> str:
    if key:
        return f'<td class="k">{_e(fmt(value))}</td>'
    number = _num(value)
    sort = "NaN" if number is None else repr(number)
    return f'<td data-v="{sort}">{_e(fmt(value))}</td>'


def _interval_text(bounds: dict[str, Any] | None) -> str:
    if not bounds:
        return ""
    return f"[{fmt(bounds.get('lower'))}, {fmt(bounds.get('upper'))}]"


def _is_matrix(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, list) for row in value)


def _scalars(metrics: dict[str, Any]) -> list[str]:
    return [name for name, value in metrics.items() if isinstance(value, (int, float))]


# -- SVG charts ---------------------------------------------------------------------------------


def _svg(width: int, height: int, body: Iterable[str], label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>' + "".join(body) + "</svg>"
    )


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{_e(text)}</text>"
    )


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)
    start = math.ceil(low / step) * step
    out = []
    value = start
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def bar_chart(
    labels: Sequence[str],
    values: Sequence[Any],
    intervals: Sequence[tuple[Any, Any] | None] | None,
    title: str,
) -> str:
    """Horizontal bars, one per label, with the interval as a whisker when given."""
    rows = list(zip(labels, values, intervals or [None] * len(labels), strict=True))[:MAX_BARS]
    finite = [_num(v) for _, v, _ in rows]
    ends = [x for x in finite if x is not None]
    for _, _, ci in rows:
        if ci is not None:
            ends += [x for x in (_num(ci[0]), _num(ci[1])) if x is not None]
    low, high = min([0.0, *ends]), max([0.0, *ends])
    if high == low:
        high = low + 1.0
    left, top, row_h = 170, 28, 20
    width, plot = 720, 720 - 170 - 90  # 90 on the right for the values
    height = top + row_h * len(rows) + 30

    def x_of(value: float) -> float:
        return left + (value - low) / (high - low) * plot

    body = [_text(left, 16, title, size=12, extra=' font-weight="bold"')]
    for tick in _ticks(low, high):
        x = x_of(tick)
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 24}" stroke="#ddd"/>'
        )
        body.append(_text(x, height - 10, fmt(tick, 3), anchor="middle", size=10))
    zero = x_of(0.0)
    for i, ((label, value, ci), number) in enumerate(zip(rows, finite, strict=True)):
        y = top + i * row_h
        short = label if len(label) <= 26 else label[:25] + "…"
        body.append(_text(left - 6, y + 14, short, anchor="end"))
        if number is None:
            body.append(_text(zero + 4, y + 14, fmt(value), size=10))
            continue
        x0, x1 = sorted((zero, x_of(number)))
        body.append(
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 0.5):.1f}" height="{row_h - 6}" '
            f'fill="{BLUE}"><title>{_e(label)}: {_e(fmt(value))}</title></rect>'
        )
        end = x1
        if ci is not None and _num(ci[0]) is not None and _num(ci[1]) is not None:
            a, b = x_of(float(ci[0])), x_of(float(ci[1]))
            mid = y + row_h / 2
            body.append(
                f'<path d="M{a:.1f} {mid:.1f}H{b:.1f}M{a:.1f} {mid - 5:.1f}V{mid + 5:.1f}'
                f'M{b:.1f} {mid - 5:.1f}V{mid + 5:.1f}" stroke="{VERMILLION}" stroke-width="1.5" fill="none"/>'
            )
            end = max(end, a, b)
        body.append(_text(end + 4, y + 14, fmt(value, 4), size=10))
    body.append(
        f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{height - 24}" stroke="#333"/>'
    )
    return _svg(width, height, body, title)


def heatmap(matrix: list[list[Any]], title: str, class_names: Sequence[str] | None = None) -> str:
    """A confusion matrix (rows: true class, columns: predicted) as a white-to-blue heatmap
    with each cell's count written in it."""
    n = max(len(matrix), max(len(row) for row in matrix))
    shown = min(n, MAX_CLASSES)
    cell = max(14, min(44, 520 // max(shown, 1)))
    left, top = 110, 60
    size = cell * shown
    width, height = left + size + 20, top + size + 50
    values = [_num(v) or 0.0 for row in matrix[:shown] for v in row[:shown]]
    peak = max(values, default=0.0) or 1.0

    def name(i: int) -> str:
        text = class_names[i] if class_names is not None and i < len(class_names) else str(i)
        return text if len(text) <= 14 else text[:13] + "…"

    body = [_text(left, 16, title, size=12, extra=' font-weight="bold"')]
    body.append(_text(left + size / 2, 40, "predicted class", anchor="middle"))
    body.append(
        _text(
            14,
            top + size / 2,
            "true class",
            anchor="middle",
            extra=f' transform="rotate(-90 14 {top + size / 2:.1f})"',
        )
    )
    small = cell < 26
    for i in range(shown):
        row = matrix[i] if i < len(matrix) else []
        body.append(_text(left - 4, top + i * cell + cell / 2 + 4, name(i), anchor="end", size=10))
        body.append(
            _text(
                left + i * cell + cell / 2,
                top - 4,
                name(i),
                anchor="middle" if not small else "start",
                size=10,
                extra=""
                if not small
                else f' transform="rotate(-60 {left + i * cell + cell / 2:.1f} {top - 4})"',
            )
        )
        for j in range(shown):
            value = row[j] if j < len(row) else 0
            share = (_num(value) or 0.0) / peak
            # white -> Okabe-Ito blue (#0072B2)
            r, g, b = (round(255 + (c - 255) * share) for c in (0x00, 0x72, 0xB2))
            x, y = left + j * cell, top + i * cell
            rect = f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({r},{g},{b})"'
            if small:  # no text in the cell, no tooltip: the page stays small
                body.append(rect + "/>")
            else:
                body.append(
                    f'{rect} stroke="#fff"><title>true {_e(name(i))}, predicted {_e(name(j))}: '
                    f"{_e(fmt(value))}</title></rect>"
                )
            if not small:
                colour = "#fff" if share > 0.55 else "#111"
                body.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" font-size="{9 if small else 10}" '
                    f'text-anchor="middle" style="fill:{colour}">{_e(_compact(value))}</text>'
                )
    if shown < n:
        body.append(_text(left, top + size + 20, f"first {shown} of {n} classes shown", size=10))
    return _svg(width, height, body, title)


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]], str]],
    title: str,
    x_label: str,
    y_label: str,
    *,
    diagonal: bool = False,
    bars: Sequence[tuple[float, float, float]] | None = None,
) -> str:
    """Curves on [0, 1] x [0, 1]: each series (name, points, colour); ``diagonal`` draws
    y = x dashed; ``bars`` (x0, x1, height) are drawn as light bars behind the curves."""
    left, top, plot = 56, 30, 300
    width, height = left + plot + 150, top + plot + 46

    def px(x: float) -> float:
        return left + x * plot

    def py(y: float) -> float:
        return top + (1 - y) * plot

    body = [_text(left, 16, title, size=12, extra=' font-weight="bold"')]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(
            f'<line x1="{px(tick):.1f}" y1="{top}" x2="{px(tick):.1f}" y2="{top + plot}" stroke="#e4e4e4"/>'
        )
        body.append(
            f'<line x1="{left}" y1="{py(tick):.1f}" x2="{left + plot}" y2="{py(tick):.1f}" stroke="#e4e4e4"/>'
        )
        body.append(_text(px(tick), top + plot + 14, fmt(tick), anchor="middle", size=10))
        body.append(_text(left - 4, py(tick) + 4, fmt(tick), anchor="end", size=10))
    body.append(
        f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="none" stroke="#333"/>'
    )
    body.append(_text(left + plot / 2, top + plot + 34, x_label, anchor="middle"))
    body.append(
        _text(
            14,
            top + plot / 2,
            y_label,
            anchor="middle",
            extra=f' transform="rotate(-90 14 {top + plot / 2:.1f})"',
        )
    )
    for x0, x1, share in bars or ():
        body.append(
            f'<rect x="{px(x0):.1f}" y="{py(share):.1f}" width="{max(px(x1) - px(x0), 0.5):.1f}" '
            f'height="{share * plot:.1f}" fill="#56B4E9" fill-opacity="0.35"/>'
        )
    if diagonal:
        body.append(
            f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" '
            'stroke="#777" stroke-dasharray="4 3"/>'
        )
    for k, (name, points, colour) in enumerate(series):
        points = _thin(points)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if len(points) <= 40:
            body.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in points
            )
        y = top + 14 + 18 * k
        body.append(
            f'<line x1="{left + plot + 12}" y1="{y - 4}" x2="{left + plot + 30}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        body.append(_text(left + plot + 34, y, name, size=10))
    return _svg(width, height, body, title)


def _compact(value: Any) -> str:
    """A count short enough for a heatmap cell: ``9489``, ``123k``, ``4.6M``; other values
    to 3 significant digits.

    >>> _compact(9489.0), _compact(123456), _compact(4_600_000), _compact(0.25)
    ('9489', '123k', '4.6M', '0.25')
    """
    number = _num(value)
    if number is None or number != int(number):
        return fmt(value, 3)
    count = int(number)
    if abs(count) >= 10**9:
        return f"{count / 10**9:.3g}G"
    if abs(count) >= 10**6:
        return f"{count / 10**6:.3g}M"
    if abs(count) >= 10**5:
        return f"{round(count / 1000)}k"
    return str(count)


def _thin(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    points = list(points)
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


# -- curves from states -------------------------------------------------------------------------


def _leaves(metric: EvalMetric) -> list[EvalMetric]:
    children = getattr(metric, "metrics", None)
    return list(children) if children is not None else [metric]


def reliability(leaf: Any) -> list[tuple[float, float, float, float, float]]:
    """ECE's bins from its exact sums: ``(lo, hi, weight share, mean confidence, accuracy)``
    for each bin with rows."""
    state = leaf._local
    weight, confidence, correct = (
        [s.units for s in state[f"sum_{q}"].sums()] + [0] * leaf.n_bins
        for q in ("weight", "confidence", "correct")
    )
    total = sum(weight[: leaf.n_bins])
    out = []
    for b in range(leaf.n_bins):
        if weight[b] > 0:
            out.append(
                (
                    b / leaf.n_bins,
                    (b + 1) / leaf.n_bins,
                    float(weight[b] / total),
                    float(confidence[b] / weight[b]),
                    float(correct[b] / weight[b]),
                )
            )
    return out


def curves(leaf: Any) -> tuple[list[tuple[float, float]], list[tuple[float, float]]] | None:
    """ROC (FPR, TPR) and PR (recall, precision) points from AUC's per-bucket counts, from
    the highest threshold down; None without both classes."""
    positives = [float(v) for v in leaf._local["num_positive"].tolist()]
    negatives = [float(v) for v in leaf._local["num_negative"].tolist()]
    total_p, total_n = sum(positives), sum(negatives)
    if total_p <= 0 or total_n <= 0:
        return None
    roc, pr = [(0.0, 0.0)], []
    tp = fp = 0.0
    for p, n in zip(reversed(positives), reversed(negatives), strict=True):
        if p == 0 and n == 0:
            continue
        tp, fp = tp + p, fp + n
        roc.append((fp / total_n, tp / total_p))
        pr.append((tp / total_p, tp / (tp + fp)))
    if pr:
        pr.insert(0, (0.0, pr[0][1]))
    return roc, pr


# -- the page -----------------------------------------------------------------------------------


def _page(title: str, sections: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # no request may leave the page, whatever its content
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(sections)
        + f"<script>{_SORT_JS}</script></body></html>\n"
    )


def _table(
    header: Sequence[tuple[str, bool]], rows: Iterable[str], *, sortable: bool = True
) -> str:
    head = "".join(
        f'<th class="k">{_e(h)}</th>' if key else f"<th>{_e(h)}</th>" for h, key in header
    )
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metrics_section(result: Result, class_names: Sequence[str] | None) -> str:
    metrics = result.named_metrics(class_names)
    intervals = result.to_dict(class_names).get("intervals") or {}
    with_ci = bool(intervals)
    header = [("metric", True), ("value", False)]
    if with_ci:
        header += [("lower", False), ("upper", False)]
    rows = []
    extra = []
    for name, value in metrics.items():
        if _is_matrix(value):
            continue
        if isinstance(value, dict):  # per class
            bounds = intervals.get(name) or {}
            sub = []
            for cls, item in value.items():
                cells = [_cell(cls, key=True), _cell(item)]
                if bounds:
                    cells += [_cell(bounds["lower"].get(cls)), _cell(bounds["upper"].get(cls))]
                sub.append(f"<tr>{''.join(cells)}</tr>")
            head = [("class", True), (name, False)] + (
                [("lower", False), ("upper", False)] if bounds else []
            )
            extra.append(f"<h3>{_e(name)} per class</h3>" + _table(head, sub[:MAX_GROUPS]))
            continue
        cells = [_cell(name, key=True), _cell(value)]
        if with_ci:
            bounds = intervals.get(name) or {}
            cells += [_cell(bounds.get("lower")), _cell(bounds.get("upper"))]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    ci = result.ci
    caption = ""
    if ci is not None:
        caption = (
            f'<p class="meta">Intervals: {_e(fmt(ci.get("level")))} level, {_e(ci.get("method", "bootstrap"))}, '
            f"{_e(ci.get('replicates'))} replicates, seed {_e(ci.get('seed'))}.</p>"
        )
    return "<h2>Metrics</h2>" + caption + _table(header, rows) + "".join(extra)


def _bounds(bounds: dict[str, Any] | None) -> tuple[Any, Any] | None:
    return None if not bounds else (bounds.get("lower"), bounds.get("upper"))


def _group_label(key: dict[str, Any]) -> str:
    return ", ".join(key_text(v) for v in key.values())


def largest_groups(groups: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The ``count`` groups with the most rows (ties: the first in key order), in the key
    order ``groups`` come in: the slices a reader of a long result looks at first."""
    if len(groups) <= count:
        return groups
    by_rows = sorted(range(len(groups)), key=lambda i: -int(groups[i].get("rows") or 0))
    return [groups[i] for i in sorted(by_rows[:count])]


def _shown_note(shown: int, total: int) -> str:
    """What a table or chart of `largest_groups` shows of ``total`` groups."""
    return (
        f"The {shown} groups with the most rows, of {total:,} (in key order; the JSON result "
        "has every group)."
    )


def _groups_section(result: Result, class_names: Sequence[str] | None) -> str:
    data = result.to_dict(class_names)
    every = data.get("groups")
    if not every:
        return ""
    groups = largest_groups(every, MAX_GROUPS)
    columns = list(groups[0]["key"])
    names = _scalars(groups[0]["metrics"])
    with_ci = any("intervals" in g for g in groups)
    header = [(c, True) for c in columns] + [("rows", False)]
    for name in names:
        header.append((name, False))
        if with_ci:
            header.append((f"{name} interval", True))
    rows = []
    for group in groups:
        cells = [_cell(key_text(group["key"].get(c)), key=True) for c in columns] + [
            _cell(group["rows"])
        ]
        for name in names:
            cells.append(_cell(group["metrics"].get(name)))
            if with_ci:
                cells.append(
                    f'<td class="k">{_e(_interval_text((group.get("intervals") or {}).get(name)))}</td>'
                )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    out = [f"<h2>Per group ({_e(', '.join(columns))})</h2>"]
    if len(every) > MAX_GROUPS:
        out.append(f'<p class="note">{_e(_shown_note(MAX_GROUPS, len(every)))}</p>')
    out.append(_table(header, rows))
    charted = largest_groups(groups, MAX_BARS)
    labels = [_group_label(g["key"]) for g in charted]
    for name in names[:6]:
        values = [g["metrics"].get(name) for g in charted]
        if all(_num(v) is None for v in values):
            out.append(f'<p class="note">{_e(name)}: no finite value to chart.</p>')
            continue
        cis = None
        if with_ci:
            cis = [_bounds((g.get("intervals") or {}).get(name)) for g in charted]
        caption = f"{name} per group" + (" (whiskers: interval)" if cis else "")
        if len(every) > MAX_BARS:
            caption += f"; the {MAX_BARS} groups with the most rows, of {len(every):,}"
        chart = bar_chart(labels, values, cis, f"{name} by {', '.join(columns)}")
        out.append(f"<figure>{chart}<figcaption>{_e(caption)}</figcaption></figure>")
    return "".join(out)


def _heatmaps(metrics: dict[str, Any], class_names: Sequence[str] | None) -> str:
    out = []
    for name, value in metrics.items():
        if _is_matrix(value):
            out.append(
                f"<figure>{heatmap(value, name, class_names)}<figcaption>{_e(name)}: rows are the true "
                "class, columns the predicted class.</figcaption></figure>"
            )
    return "<h2>Confusion matrix</h2>" + "".join(out) if out else ""


def _state_charts(result: Result) -> str:
    if result.partial is None:
        return ""
    from ..metrics.calibration import AUC, ECE

    leaves = _leaves(result.partial.overall())
    out = []
    drawn: list[Any] = []
    for leaf in leaves:
        if isinstance(leaf, ECE):
            bins = reliability(leaf)
            points = [(conf, acc) for _, _, _, conf, acc in bins]
            shares = [(lo, hi, share) for lo, hi, share, _, _ in bins]
            chart = line_chart(
                [("accuracy", points, BLUE), ("rows (share)", [], "#56B4E9")],
                f"Reliability: {leaf.name}",
                "mean confidence",
                "accuracy",
                diagonal=True,
                bars=shares,
            )
            rows = [
                f"<tr>{_cell(f'({fmt(lo, 3)}, {fmt(hi, 3)}]', key=True)}{_cell(share)}{_cell(conf)}{_cell(acc)}{_cell(acc - conf)}</tr>"
                for lo, hi, share, conf, acc in bins
            ]
            table = _table(
                [
                    ("bin", True),
                    ("share of rows", False),
                    ("confidence", False),
                    ("accuracy", False),
                    ("gap", False),
                ],
                rows[:MAX_BINS_LISTED],
            )
            if len(rows) > MAX_BINS_LISTED:
                table += (
                    f'<p class="note">First {MAX_BINS_LISTED} of {len(rows)} bins with rows.</p>'
                )
            out.append(
                f"<h2>Reliability diagram ({_e(leaf.name)})</h2><figure>{chart}<figcaption>Each point: a bin's "
                "mean confidence and accuracy (dashed: perfect calibration); bars: each bin's share of "
                f"the rows; {leaf.n_bins} bins. Binary predictions: confidence is the positive class's "
                "probability, accuracy the fraction of positives.</figcaption></figure>"
                f"<details><summary>bins</summary>{table}</details>"
            )
        elif isinstance(leaf, AUC):
            counts = (leaf.num_thresholds, leaf._local["num_positive"].tolist())
            if counts in drawn:  # auc and auc_pr of one run: the same counts, the same curves
                continue
            drawn.append(counts)
            got = curves(leaf)
            if got is None:
                out.append(
                    f'<h2>ROC and PR ({_e(leaf.name)})</h2><p class="note">Needs both classes.</p>'
                )
                continue
            roc, pr = got
            out.append(
                f"<h2>ROC and PR curves ({_e(leaf.name)})</h2>"
                f"<figure>{line_chart([('ROC', roc, BLUE)], 'ROC curve', 'false positive rate', 'true positive rate', diagonal=True)}"
                f"<figcaption>From the {leaf.num_thresholds} thresholds' counts.</figcaption></figure>"
                f"<figure>{line_chart([('PR', pr, VERMILLION)], 'Precision-recall curve', 'recall', 'precision')}"
                "</figure>"
            )
    return "".join(out)


_DIAGNOSTICS = {
    "num_true_prob_zero": "rows with p = 0 for the true class",
    "num_true_prob_one": "rows with p = 1 for the true class",
    "num_not_normalized": "rows whose probabilities do not sum to 1",
    "num_out_of_range": "values outside [0, 1]",
    "num_nonfinite": "values NaN or inf",
    "num_looks_like_logits": "rows that look like logits",
    "num_ignored": "rows ignored (ignore_index)",
    "num_invalid": "rows invalid under exact",
}


def _conventions(result: Result) -> str:
    """Each cross-entropy metric under every convention (``eval --conventions``, implied by
    ``--report``): explain's table over the whole run, with a bar per finite value, the data's
    diagnostic counts and why each convention differs from exact."""
    out = []
    for name, explained in result.conventions.items():
        exact = explained.value("exact")
        rows = []
        for entry in explained.results:
            value = entry.value
            difference = None
            if value is not None and exact is not None and math.isfinite(exact):
                difference = value - exact
            shown = _cell(value) if entry.error is None else _cell(f"rejects: {entry.error}")
            rows.append(
                f"<tr>{_cell(entry.name, key=True)}{_cell(entry.dtype)}{shown}{_cell(difference)}"
                f'{_cell(entry.diagnostics.get("num_guarded", 0))}<td class="k">{_e(entry.sentence)}</td></tr>'
            )
        table = _table(
            [
                ("convention", True),
                ("dtype", True),
                ("value", False),
                ("minus exact", False),
                ("guarded values", False),
                ("why", True),
            ],
            rows,
        )
        chart = bar_chart(
            [entry.name for entry in explained.results],
            [entry.value for entry in explained.results],
            None,
            f"{name} by convention",
        )
        counts = [
            f"<tr>{_cell(_DIAGNOSTICS.get(key, key), key=True)}{_cell(count)}</tr>"
            for key, count in explained.diagnostics.items()
            if count
        ]
        data = (
            _table([("in the data", True), ("count", False)], counts, sortable=False)
            if counts
            else '<p class="note">No row reached a guard or broke a rule: the conventions differ by rounding only.</p>'
        )
        kind = f"{explained.kind}, from logits" if explained.from_logits else explained.kind
        out.append(
            f"<h2>{_e(name)} under each convention</h2>"
            f'<p class="meta">{_e(fmt(explained.rows))} rows ({_e(kind)}), each convention on the '
            "rows this run counted, computed in the same pass.</p>"
            f"{table}<figure>{chart}<figcaption>A bar per finite value (inf and rejected "
            f"values are written out).</figcaption></figure>{data}"
        )
    return "".join(out)


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"


def result_html(
    result: Result,
    *,
    title: str = "streammetric report",
    command: str | None = None,
    class_names: Sequence[str] | None = None,
) -> str:
    """The page of one evaluation: its metrics (and intervals), the per-group table and bar
    charts, confusion-matrix heatmaps, reliability diagrams (ECE) and ROC/PR curves (AUC)."""
    header = [f"<h1>{_e(title)}</h1>"]
    if command:
        header.append(f'<p class="meta"><code>{_e(command)}</code></p>')
    header.append(
        f'<p class="meta">{_e(fmt(result.rows))} rows, {_e(fmt(result.invalid_rows))} invalid rows.</p>'
    )
    if class_names is None:  # a JSON result written with --class-names: its matrices too
        class_names = result.saved_class_names()
    metrics = result.named_metrics(class_names)
    sections = [
        "".join(header),
        _metrics_section(result, class_names),
        _groups_section(result, class_names),
        _heatmaps(metrics, class_names),
        _state_charts(result),
        _conventions(result),
        _notes(result.notes),
    ]
    return _page(title, sections)


def comparison_html(
    comparison: Comparison, *, title: str = "streammetric comparison", command: str | None = None
) -> str:
    """The page of a comparison: each metric's baseline and candidate values, the delta with
    its interval and p-value (a table and a chart of the deltas), and the same per group."""
    data = comparison.to_dict()
    ci = data.get("ci") or {}
    out = [f"<h1>{_e(title)}</h1>"]
    if command:
        out.append(f'<p class="meta"><code>{_e(command)}</code></p>')
    unpaired = ", ".join(f"{k}: {fmt(v)}" for k, v in (data.get("unpaired") or {}).items())
    out.append(
        f'<p class="meta">{_e(fmt(data["rows"]))} paired rows; unpaired: {_e(unpaired or "none")}. '
        f"Deltas are candidate − baseline, intervals at level {_e(fmt(ci.get('level')))} "
        f"({_e(ci.get('method', 'paired bootstrap'))}, {_e(ci.get('replicates'))} replicates, seed {_e(ci.get('seed'))}).</p>"
    )
    out.append("<h2>Deltas</h2>")
    out.append(_comparison_table(data["metrics"], comparison.higher_is_better))
    names = list(data["metrics"])
    out.append(
        "<figure>"
        + bar_chart(
            names,
            [data["metrics"][n].get("delta") for n in names],
            [(data["metrics"][n].get("lower"), data["metrics"][n].get("upper")) for n in names],
            "delta (candidate − baseline)",
        )
        + "<figcaption>Whiskers: the delta's interval.</figcaption></figure>"
    )
    every = data.get("groups") or []
    if every:
        groups = largest_groups(every, MAX_GROUPS)
        columns = list(groups[0].get("key", {}))
        out.append(f"<h2>Per group ({_e(', '.join(columns))})</h2>")
        if len(every) > MAX_GROUPS:
            out.append(f'<p class="note">{_e(_shown_note(MAX_GROUPS, len(every)))}</p>')
        header = [(c, True) for c in columns] + [("metric", True), *_DELTA_COLUMNS]
        rows = []
        for group in groups:
            for name, entry in (group.get("metrics") or {}).items():
                cells = [_cell(key_text(group["key"].get(c)), key=True) for c in columns] + [
                    _cell(name, key=True)
                ]
                cells += [_cell(entry.get(k)) for k in _DELTA_KEYS]
                rows.append(f"<tr>{''.join(cells)}</tr>")
        out.append(_table(header, rows))
        charted = largest_groups(groups, MAX_BARS)
        for name in names[:4]:
            picked = [g for g in charted if name in (g.get("metrics") or {})]
            out.append(
                "<figure>"
                + bar_chart(
                    [_group_label(g["key"]) for g in picked],
                    [g["metrics"][name].get("delta") for g in picked],
                    [
                        (g["metrics"][name].get("lower"), g["metrics"][name].get("upper"))
                        for g in picked
                    ],
                    f"{name}: delta per group",
                )
                + "</figure>"
            )
    out.append(_notes(comparison.notes))
    return _page(title, out)


#: a comparison entry's numbers (keys) and their columns in the report's tables
_DELTA_KEYS = ("baseline", "candidate", "delta", "lower", "upper", "p_value")
_DELTA_COLUMNS = [(key.replace("_", "-"), False) for key in _DELTA_KEYS]


def _comparison_table(metrics: dict[str, dict[str, Any]], better: dict[str, bool | None]) -> str:
    header = [("metric", True), *_DELTA_COLUMNS, ("test", True), ("verdict", True)]
    rows = []
    for name, entry in metrics.items():
        cells = [_cell(name, key=True)]
        cells += [_cell(entry.get(k)) for k in _DELTA_KEYS]
        cells.append(_cell(entry.get("test"), key=True))
        cells.append(f'<td class="k">{_verdict(entry, better.get(name))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(header, rows)


def _verdict(entry: dict[str, Any], higher: bool | None) -> str:
    lower, upper = _num(entry.get("lower")), _num(entry.get("upper"))
    if lower is None or upper is None or (lower <= 0 <= upper):
        return "no significant change"
    if higher is None:
        return "changed"
    improved = (lower > 0) == higher
    return '<span class="better">better</span>' if improved else '<span class="worse">worse</span>'


def write_report(path: str | os.PathLike[str], text: str) -> None:
    """Write a page atomically (a reader never sees half of it)."""
    from .._files import write_atomic

    write_atomic(path, text)
