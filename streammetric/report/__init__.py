"""Self-contained HTML reports of a `Result` or a `Comparison`: inline SVG charts, no network.

The output layer: it reads a result's values and grouped states (``Result.partial``), never the
data. ``streammetric eval --report FILE.html`` and ``streammetric compare --report FILE.html``
write one with `write_report`.
"""

from __future__ import annotations

from .html import comparison_html, result_html, write_report

__all__ = ["comparison_html", "result_html", "write_report"]
