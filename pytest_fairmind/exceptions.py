"""The plugin's own warning category."""

from __future__ import annotations

import pytest


class FairmindWarning(pytest.PytestWarning):
    """Something about recorded fairness results deserves attention (a collision, a lost worker...)."""
