"""Session tests: pytester sessions of the plugin, with no real provider behind them.

Most run in-process (``pytester.runpytest``), which is fast but drops the modules an inner session
imported. So what inner sessions use is imported once here, before any of them: hypothesis (a
second per session otherwise) and the metrics (numpy: see the root conftest).
"""

from __future__ import annotations

import importlib

PRELOADED = ("hypothesis", "pytest_fairmind.metrics")

for _name in PRELOADED:
    importlib.import_module(_name)
