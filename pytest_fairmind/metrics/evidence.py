"""Evidence payloads: what interval gates need to redraw an assess() call's bootstrap, as plain JSON.

One payload per ``assess`` scope when ``n_boot`` is given (``FairnessResult.evidence``; recorded,
carried through xdist, saved in the report and the history; docs/metrics.md, "Evidence payloads"):

- ``kind: "cells"`` (unweighted label metrics): the groups' confusion cells are sufficient for
  every label metric, so :func:`distribution` redraws replicates exactly (multinomial), at any
  number of replicates, deterministically from a seed::

      {"version": 1, "kind": "cells", "method": METHOD, "n_boot": N, "scope": scope,
       "keys": ["<scope>/<metric>", ...], "cells": [[TN, FP, FN, TP], ...],   # one row per group
       "min_group_size": m or null, "required": {column: [group index, ...]}}

  ``required`` lists, per compared column, the groups whose rate the point estimate compared (the
  fixed group set: a resample leaving one undefined leaves the aggregate undefined).
- ``kind: "grid"`` (scores, regression, weighted rows, multiclass): replicate quantiles at the fixed
  probabilities :data:`GRID_PROBS`; an extremum with several contenders also keeps their
  quantiles and the multiplicity adjustment (see :mod:`~pytest_fairmind.metrics.intervals`)::

      {"version": 1, "kind": "grid", "method": METHOD, "n_boot": N, "probs": GRID_PROBS,
       "quantiles": {key: [q, ...]},
       "components": {key: {"extreme": "max" | "min", "quantiles": [[q, ...], ...],
                            "adjust": [h, ...], "range": [low or null, high or null]}}}

  ``components`` (only for an extremum with several contenders): each contender's quantiles at
  ``probs``, and the multiplicity adjustment ``h(p)`` at ``probs`` (the share of replicates in
  which some contender lies in its own ``p``-tail).

- ``kind: "mixed"``: ``{"version": 1, "kind": "mixed", "n_boot": N, "cells": {...}, "grid": {...}}``.

:func:`distribution` gives a :class:`~pytest_fairmind.metrics.intervals.Distribution` whose
``p_value`` and ``one_sided`` use the interval method of the recorded ``ci_low``/``ci_high``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.bootstrap import CellCounts, label_samples
from pytest_fairmind.metrics.intervals import METHOD, Adjust, Distribution, Grid, Sample
from pytest_fairmind.metrics.table import BINARY, Table

__all__ = [
    "GRID_PROBS",
    "METHOD",
    "Distribution",
    "cells_payload",
    "distribution",
    "distributions",
    "grid_payload",
]

VERSION = 1
_TAILS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025)
_BODY = (0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4)
#: The probabilities of a grid payload's quantiles: 39 values, dense in the tails, so p-values
#: resolve down to 0.0005 (a Holm level of 0.05 over 100 gates) when ``n_boot`` >= 2000.
GRID_PROBS: tuple[float, ...] = (
    *_TAILS,
    *_BODY,
    0.5,
    *(round(1.0 - p, 6) for p in reversed((*_TAILS, *_BODY))),
)
#: Most replicates a cells redraw makes, whatever resolution is asked for.
MAX_REDRAW = 200_000


def _plain(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else float(value)


def cells_payload(
    scope: str,
    names: Sequence[str],
    n_boot: int,
    row_cells: NDArray[np.int64],
    min_group_size: int | None,
    required: Mapping[str, NDArray[np.bool_]],
) -> dict[str, Any]:
    """The cells payload of an unweighted binary label family (``names``: aggregates with an interval)."""
    return {
        "version": VERSION,
        "kind": "cells",
        "method": METHOD,
        "n_boot": int(n_boot),
        "scope": scope,
        "keys": [f"{scope}/{name}" for name in names],
        "cells": [[int(c) for c in group] for group in row_cells.tolist()],
        "min_group_size": min_group_size,
        "required": {name: np.flatnonzero(mask).tolist() for name, mask in required.items()},
    }


def _quantiles(values: NDArray[np.float64]) -> list[float] | None:
    ok = values[~np.isnan(values)]
    if ok.size == 0:
        return None
    return [float(f"{q:.6g}") for q in np.quantile(ok, GRID_PROBS).tolist()]


def grid_payload(prefix: str, found: Mapping[str, Sample], n_boot: int) -> dict[str, Any]:
    """The grid payload of ``found`` (aggregate name -> replicates) under ``<prefix>/``."""
    quantiles: dict[str, list[float]] = {}
    components: dict[str, dict[str, Any]] = {}
    for name, sample in found.items():
        key = f"{prefix}/{name}"
        q = _quantiles(sample.value)
        if q is None:
            continue
        quantiles[key] = q
        if sample.extreme != "plain" and len(sample.shares) > 1:  # one contender: the key's own
            parts = [_quantiles(v) for v in sample.values]
            if any(p is None for p in parts):
                continue
            adjust = Distribution.of(sample).adjust
            components[key] = {
                "extreme": sample.extreme,
                "quantiles": parts,
                "adjust": [float(f"{adjust.cdf(p):.6g}") for p in GRID_PROBS],
                "range": [_plain(sample.low), _plain(sample.high)],
            }
    return {
        "version": VERSION,
        "kind": "grid",
        "method": METHOD,
        "n_boot": int(n_boot),
        "probs": list(GRID_PROBS),
        "quantiles": quantiles,
        "components": components,
    }


def combine(cells: dict[str, Any] | None, grid: dict[str, Any] | None) -> dict[str, Any] | None:
    """One payload for a scope: cells, grid, or both ("mixed"); None when neither has a key."""
    has_cells = cells is not None and bool(cells["keys"])
    has_grid = grid is not None and bool(grid["quantiles"])
    if has_cells and has_grid:
        assert cells is not None and grid is not None
        return {"version": VERSION, "kind": "mixed", "n_boot": cells["n_boot"], "cells": cells, "grid": grid}
    if has_cells:
        return cells
    return grid if has_grid else None


@cache
def _subtable(name: str) -> Table:
    """The binary table reduced to one aggregate and the columns it needs (a cheaper redraw)."""
    aggregate = next(a for a in BINARY.aggregates if a.name == name)
    needed = set(aggregate.columns)
    for column in aggregate.columns:
        needed.update(BINARY.column(column).of)
    return Table(tuple(c for c in BINARY.columns if c.name in needed), (aggregate,))


@lru_cache(maxsize=4)
def _draws(cells: tuple[int, ...], n_boot: int, seed: int) -> NDArray[np.int64]:
    """The rows per cell of ``n_boot`` resamples of ``cells``: shared by every key of a scope that
    is redrawn with the same seed."""
    counts = np.asarray(cells, dtype=np.float64)
    n = int(counts.sum())
    drawn: NDArray[np.int64] = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot)
    drawn.flags.writeable = False
    return drawn


#: Full-table redraws already made, by (cells, required, min_group_size, n_boot, seed): the keys of
#: a scope redrawn with one seed share them (a scope's gates then cost one redraw, not one each).
_SHARED: OrderedDict[tuple[Any, ...], dict[str, Distribution] | None] = OrderedDict()
_SHARED_SIZE = 8


def _from_cells(payload: Mapping[str, Any], key: str, resolution: float, seed: int) -> Distribution:
    name = key[len(str(payload["scope"])) + 1 :]
    row_cells = np.asarray(payload["cells"], dtype=np.int64).reshape(-1, 4)
    groups = row_cells.shape[0]
    required = {}
    for column, indices in sorted(dict(payload.get("required") or {}).items()):
        mask = np.zeros(groups, dtype=bool)
        mask[np.asarray(indices, dtype=np.intp)] = True
        required[str(column)] = mask
    n_boot = int(payload["n_boot"])
    if resolution > 0:
        n_boot = max(n_boot, math.ceil(1.0 / resolution - 1e-9))
    n_boot = min(n_boot, MAX_REDRAW)
    mgs = None if payload.get("min_group_size") is None else int(payload["min_group_size"])
    cells = tuple(row_cells.reshape(-1).tolist())
    shared_key = (cells, tuple((k, v.tobytes()) for k, v in required.items()), mgs, n_boot, seed)
    shared = _SHARED.get(shared_key, ())
    if shared:  # the second key of this redraw or later: every aggregate was computed
        assert isinstance(shared, dict)
        return shared[name]
    drawn = _draws(cells, n_boot, seed)
    rng = np.random.default_rng(seed)  # unused: the resamples are drawn
    if shared is None:  # a second key asks for this redraw: compute every aggregate once
        found = label_samples(BINARY, row_cells, CellCounts(), mgs, required, n_boot, rng, drawn)
        _SHARED[shared_key] = {k: Distribution.of(v) for k, v in found.items()}
        return _SHARED[shared_key][name]  # type: ignore[index]
    _SHARED[shared_key] = None
    while len(_SHARED) > _SHARED_SIZE:
        _SHARED.popitem(last=False)
    found = label_samples(_subtable(name), row_cells, CellCounts(), mgs, required, n_boot, rng, drawn)
    return Distribution.of(found[name])


def _from_grid(payload: Mapping[str, Any], key: str) -> Distribution:
    probs = [float(p) for p in payload["probs"]]
    n_boot = int(payload["n_boot"])
    resolution = max(probs[0], 1.0 / (n_boot + 1))
    comp = dict(payload.get("components") or {}).get(key)
    if comp is None:
        grid = Grid(probs, payload["quantiles"][key])
        return Distribution(n_boot, resolution, "plain", (grid,), Adjust.identity())
    low, high = comp.get("range", [None, None])
    adjust = np.maximum.accumulate(np.asarray(comp["adjust"], dtype=np.float64))
    return Distribution(
        n_boot,
        resolution,
        str(comp["extreme"]),
        tuple(Grid(probs, q) for q in comp["quantiles"]),
        Adjust(tuple(probs), tuple(adjust.tolist())),
        -math.inf if low is None else float(low),
        math.inf if high is None else float(high),
    )


def distribution(payload: Mapping[str, Any], key: str, *, resolution: float, seed: int) -> Distribution:
    """The bootstrap distribution of ``key`` (a full recorded key, ``<scope>/<metric>``).

    Cells payloads redraw at least ``ceil(1 / resolution)`` replicates (at most :data:`MAX_REDRAW`)
    from ``seed``; grid payloads cannot resolve p-values below their smallest probability (the
    returned ``resolution`` says so). Raises ``KeyError`` when the payload has no interval for key."""
    kind = payload.get("kind")
    if kind == "mixed":
        for part in ("cells", "grid"):
            inner = payload.get(part)
            if isinstance(inner, Mapping) and _holds(inner, key):
                return distribution(inner, key, resolution=resolution, seed=seed)
        raise KeyError(key)
    if not _holds(payload, key):
        raise KeyError(key)
    if kind == "cells":
        return _from_cells(payload, key, resolution, seed)
    if kind == "grid":
        return _from_grid(payload, key)
    raise ValueError(f"unknown evidence payload kind {kind!r}")


def distributions(
    payload: Mapping[str, Any], keys: Sequence[str], *, resolution: float, seed: int
) -> dict[str, Distribution]:
    """The distributions of several keys of one payload from one replicate set (a cells payload is
    redrawn once for all of them): the same as :func:`distribution` key by key with this seed.
    Keys the payload has no interval for are left out."""
    out: dict[str, Distribution] = {}
    for key in keys:
        try:
            out[key] = distribution(payload, key, resolution=resolution, seed=seed)
        except KeyError:
            continue
    return out


def _holds(payload: Mapping[str, Any], key: str) -> bool:
    if payload.get("kind") == "cells":
        return key in payload.get("keys", ())
    return key in dict(payload.get("quantiles") or {})
