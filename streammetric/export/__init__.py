"""Publishing running metric values: Prometheus scrape endpoint, Pushgateway, textfile.

>>> import streammetric as sm
>>> from streammetric import export
>>> tracker = export.Tracker("mae", group_by=["model"])
>>> tracker.update([1.0, 2.0], [1.5, 2.0], group="resnet").snapshot().rows_total
2
>>> with export.serve(tracker, port=0, run="demo") as server:   # http://127.0.0.1:<port>/metrics
...     server.url.startswith("http://127.0.0.1:")
True

See :mod:`streammetric.export.prometheus` for the series and labels, and
:mod:`streammetric.export._tracker` for how an evaluation engine drives a :class:`Tracker`.
"""

from ._auth import basic_auth_line, make_password_hash, verify_password
from ._server import MetricsServer
from ._tracker import GroupSnapshot, MetricReading, Snapshot, Tracker
from .prometheus import (
    DEFAULT_PORT,
    DEFAULT_RUN,
    TrackerCollector,
    make_registry,
    metric_name,
    push,
    serve,
    write_textfile,
)

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_RUN",
    "GroupSnapshot",
    "MetricReading",
    "MetricsServer",
    "Snapshot",
    "Tracker",
    "TrackerCollector",
    "basic_auth_line",
    "make_password_hash",
    "make_registry",
    "metric_name",
    "push",
    "serve",
    "verify_password",
    "write_textfile",
]
