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

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

#: The default ``run`` label of every exported series (and the Pushgateway grouping key). Here,
#: not in `prometheus`, so the CLI names it without loading prometheus_client.
DEFAULT_RUN = "default"

if TYPE_CHECKING:
    from ._auth import basic_auth_line, make_password_hash, verify_password
    from ._server import MetricsServer
    from ._tracker import GroupSnapshot, MetricReading, Snapshot, Tracker
    from .prometheus import (
        DEFAULT_PORT,
        TrackerCollector,
        make_registry,
        metric_name,
        push,
        serve,
        write_textfile,
    )

_LAZY = {
    **dict.fromkeys(("basic_auth_line", "make_password_hash", "verify_password"), "_auth"),
    "MetricsServer": "_server",
    **dict.fromkeys(("GroupSnapshot", "MetricReading", "Snapshot", "Tracker"), "_tracker"),
    **dict.fromkeys(
        (
            "DEFAULT_PORT",
            "TrackerCollector",
            "make_registry",
            "metric_name",
            "push",
            "serve",
            "write_textfile",
        ),
        "prometheus",
    ),
}
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

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
