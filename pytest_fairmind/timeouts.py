"""Timeouts every wait of the plugin and the ``fairmind`` command accepts (no other import, so
provider children and the gating package can use it)."""

from __future__ import annotations

import math
import threading

#: The longest wait every part accepts, about 24 days ("no practical limit"): ``threading``
#: refuses timeouts past ``threading.TIMEOUT_MAX``, ``signal.alarm`` takes a C int of seconds, and
#: waits on a child's output poll with a C int of milliseconds; a provider child's alarm adds a
#: margin to its budget, hence the hour kept free.
MAX_TIMEOUT = float(min(threading.TIMEOUT_MAX, (2**31 - 1) // 1000 - 3600))
MIN_TIMEOUT = 0.001


def clamp_timeout(seconds: float) -> float:
    """``seconds`` as a timeout every wait of the plugin and the CLI accepts: at most
    :data:`MAX_TIMEOUT` (``inf`` and ``1e10`` mean "no practical limit").

    NaN, negative and zero are no timeout: ``ValueError`` (callers turn it into a usage error).
    """
    if math.isnan(seconds) or seconds < MIN_TIMEOUT:
        raise ValueError(f"expected a number of seconds >= {MIN_TIMEOUT:g}, got {seconds!r}")
    return min(float(seconds), MAX_TIMEOUT)
