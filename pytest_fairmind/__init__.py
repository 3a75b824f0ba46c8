"""pytest-fairmind: fairness testing of ML models as a first-class part of a pytest suite.

Importing this package stays cheap: numpy is imported only when metrics are computed, and the
tracking libraries only by the provider processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_fairmind.exceptions import FairmindWarning
from pytest_fairmind.fixture import Fairmind

if TYPE_CHECKING:
    from pytest_fairmind.metrics import FairnessResult, assess

__all__ = ["Fairmind", "FairmindWarning", "FairnessResult", "assess"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy so that `import pytest_fairmind` does not import numpy.
    if name in ("assess", "FairnessResult"):
        from pytest_fairmind import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module 'pytest_fairmind' has no attribute {name!r}")
