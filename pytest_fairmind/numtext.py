"""Numbers as text: the one place that decides how a value, a bound or a limit is written.

Pure (no pytest import). Used by the gate grammar (bounds), the baseline (limits) and the summary
(values), so a value never reads differently in two places of one summary.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def exact(value: float) -> str:
    """``value`` as written (shortest round-trip form, ``1`` not ``1.0``): a bound or a gated value
    must not be rounded, or a failure would read ``ratio = 0.8, bound >= 0.8``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def short(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; ``nan`` (also for None), ``inf``, ``-inf``."""
    if value is None or math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def signed(value: float) -> str:
    """A change: ``+0.02``, ``-0.1`` (four significant digits)."""
    return f"{value:+.4g}"


def beside(value: float | None, bound: str) -> str:
    """``value`` as short as :func:`short`, but never rounded onto a number written in ``bound``
    (``ratio = 0.8, bound >= 0.8`` for 0.79995 would read as a passing value)."""
    if value is None or not math.isfinite(value):
        return short(value)
    limits = {float(n) for n in _NUMBER.findall(bound)}
    for digits in range(4, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value or float(text) not in limits:
            return text
    return exact(value)
