"""End-to-end tests: real MLflow stores and servers, real wandb offline, real subprocess sessions.

Every test collected below this folder carries the ``e2e`` marker, so ``-m "not e2e"`` is the quick loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)
