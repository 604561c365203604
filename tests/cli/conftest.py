"""The real Prometheus, Pushgateway and TLS files of ``tests/export``, shared with the CLI tests.

Importing the fixtures registers them here too (``pytest_plugins`` is only allowed in the
top-level conftest); they fail under ``CI`` when the binaries are missing, as there.
"""

from __future__ import annotations

from tests.export.conftest import (  # noqa: F401 - fixtures, used by name
    prometheus,
    pushgateway,
    system_binaries,
    tls_files,
)
