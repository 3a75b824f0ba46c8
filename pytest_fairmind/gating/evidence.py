"""Evidence-aware gates (``--fairmind-evidence=interval``): pass, fail or inconclusive, with the
chance of any false ``fail`` across the session at most ``1 - level`` (docs/evidence.md).

Every bound of every (gate, key) pair whose model carries an evidence payload for the key is a
member of one family (a range ``a <= m <= b`` is two members). For ``METRIC <= b`` (mirror for
``>=``) the member's p-value is the share of bootstrap replicates on the fair side of ``b``; the
family is adjusted by Holm (step-down), Bonferroni or nothing at error rate ``1 - level``. A member
*fails* when the adjustment rejects it, *passes* when the one-sided interval at the family level
``level`` lies inside the bound (an endpoint on a non-strict bound is inside), else it is
*inconclusive*. The guarantee is about false failures: passes are not adjusted.
A regression rule is a bound too: the baseline value is fixed, the current value is tested against
``baseline +/- tolerance`` in the worse direction.

The replicates come from :func:`pytest_fairmind.metrics.evidence.distribution` (redrawn from per-group
cells, or read from a quantile grid), seeded from ``zlib.crc32`` of (model, scope) so that serial and
xdist sessions agree and a scope's keys share one resample set. Pure (no pytest import, no numpy
unless the metrics module draws).
"""

from __future__ import annotations

import bisect
import importlib
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_fairmind.gating.baseline import NO_BASELINE
from pytest_fairmind.gating.directions import LOWER
from pytest_fairmind.gating.grammar import Gate
from pytest_fairmind.numtext import short
from pytest_fairmind.result import FAIL, INCONCLUSIVE, PASS, REGRESSION, GateResult, ModelResult

POINT, INTERVAL = "point", "interval"
EVIDENCE_MODES = (POINT, INTERVAL)
INCONCLUSIVE_ACTIONS = ("pass", "warn", "fail")
HOLM, BONFERRONI, NONE = "holm", "bonferroni", "none"
MULTIPLE_TESTING = (HOLM, BONFERRONI, NONE)
LE, GE = "le", "ge"
_SHOWN = 5


class Distribution(Protocol):
    """The bootstrap distribution of one metric (what :mod:`pytest_fairmind.metrics.evidence` gives)."""

    @property
    def n_boot(self) -> int: ...  # replicates behind it

    @property
    def resolution(self) -> float: ...  # the smallest p-value it can resolve

    @property
    def method(self) -> str: ...  # the interval method

    def p_value(self, bound: float, side: str) -> float:
        """Share of replicates on the fair side of ``bound`` (``side`` "le": <= bound); NaN when none
        is defined."""
        ...

    def one_sided(self, alpha: float, side: str) -> float:
        """ "le": the upper end of the one-sided (1 - alpha) interval; "ge": the lower end."""
        ...


class DistributionFn(Protocol):
    def __call__(
        self, payload: Mapping[str, Any], key: str, *, resolution: float, seed: int
    ) -> Distribution: ...


class ScopeDistributionsFn(Protocol):
    """Optional: the distributions of several keys of one payload from one replicate set (what
    ``pytest_fairmind.metrics.evidence.distributions`` gives when it exists): keys without an
    interval are left out of the mapping."""

    def __call__(
        self, payload: Mapping[str, Any], keys: Sequence[str], *, resolution: float, seed: int
    ) -> Mapping[str, Distribution]: ...


@dataclass(frozen=True)
class Replicates:
    """A :class:`Distribution` of plain replicate values (percentile method, pure Python): the
    reference semantics of the protocol. ``p_value`` is ``(k + 1) / (B + 1)`` with ``k`` replicates
    on the fair side, so it resolves down to ``1 / (B + 1)``."""

    values: tuple[float, ...]  # sorted, NaN removed
    method: str = "percentile"

    @classmethod
    def of(cls, values: Sequence[float]) -> Replicates:
        return cls(tuple(sorted(float(v) for v in values if not math.isnan(float(v)))))

    @property
    def n_boot(self) -> int:
        return len(self.values)

    @property
    def resolution(self) -> float:
        return 1.0 / (len(self.values) + 1)

    def p_value(self, bound: float, side: str) -> float:
        if not self.values:
            return math.nan
        if side == LE:
            fair = bisect.bisect_right(self.values, bound)
        else:
            fair = len(self.values) - bisect.bisect_left(self.values, bound)
        return (fair + 1) / (len(self.values) + 1)

    def one_sided(self, alpha: float, side: str) -> float:
        size = len(self.values)
        if not size:
            return math.nan
        rank = min(size, max(1, math.ceil((1.0 - alpha) * (size + 1))))  # 1-based order statistic
        return self.values[rank - 1] if side == LE else self.values[size - rank]


def seed_for(model: str, scope: str) -> int:
    """The redraw seed of the evidence of ``scope`` of ``model``: the same in every process (no
    ``hash()``), one per scope so that its keys share one resample set."""
    return zlib.crc32(f"{model}\x00{scope}".encode())


def interval_keys(payload: Mapping[str, Any]) -> set[str]:
    """The keys a payload holds an interval for (its ``keys``, its grid's ``quantiles``, its parts')."""
    found: set[str] = set()
    keys = payload.get("keys")
    if isinstance(keys, (list, tuple)):
        found.update(str(k) for k in keys)
    quantiles = payload.get("quantiles")
    if isinstance(quantiles, Mapping):
        found.update(str(k) for k in quantiles)
    for part in ("cells", "grid"):
        inner = payload.get(part)
        if isinstance(inner, Mapping):
            found |= interval_keys(inner)
    return found


def locate(model: ModelResult, key: str) -> tuple[str, Mapping[str, Any]] | None:
    """(scope, payload) of the evidence of ``model`` with an interval for ``key`` (its own scope's first)."""
    scope = key.rpartition("/")[0]
    ordered = sorted(model.evidence.items(), key=lambda item: item[0] != scope)
    for name, payload in ordered:
        if isinstance(payload, Mapping) and key in interval_keys(payload):
            return name, payload
    return None


def payload_for(model: ModelResult, key: str) -> Mapping[str, Any] | None:
    """The evidence payload of ``model`` with an interval for ``key`` (its own scope's first)."""
    found = locate(model, key)
    return None if found is None else found[1]


@dataclass(frozen=True)
class Adjusted:
    """One p-value of a family after adjustment."""

    p_value: float
    p_adjusted: float
    alpha: float  # the level the p-value was compared with
    rejected: bool


def adjust(p_values: Sequence[float], error_rate: float, method: str) -> list[Adjusted]:
    """Holm (step-down: rank ``k`` of ``m`` is compared with ``error_rate / (m - k + 1)`` and rejected
    only when every smaller p-value was), Bonferroni (``error_rate / m``) or none, in input order.
    Ties are ranked in input order."""
    if method not in MULTIPLE_TESTING:
        raise ValueError(f"multiple_testing must be one of {', '.join(MULTIPLE_TESTING)}, not {method!r}")
    m = len(p_values)
    if method == NONE:
        return [Adjusted(p, p, error_rate, p <= error_rate) for p in p_values]
    if method == BONFERRONI:
        return [Adjusted(p, min(1.0, m * p), error_rate / m, p <= error_rate / m) for p in p_values]
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    out: dict[int, Adjusted] = {}
    running, rejecting = 0.0, True
    for rank, index in enumerate(order, start=1):
        p = p_values[index]
        alpha = error_rate / (m - rank + 1)
        running = max(running, min(1.0, (m - rank + 1) * p))
        rejecting = rejecting and p <= alpha
        out[index] = Adjusted(p, running, alpha, rejecting)
    return [out[i] for i in range(m)]


@dataclass
class Member:
    """One bound of one (gate, key) pair of a model: a member of the session's family."""

    model: str
    result: GateResult
    bound: float
    side: str  # LE (METRIC <= bound) or GE
    strict: bool  # < or >: an endpoint on the bound is outside
    dist: Distribution | None = None
    p: float = math.nan
    adjusted: Adjusted | None = None
    end: float = math.nan  # the finite end of the one-sided interval at the family level
    outcome: str = INCONCLUSIVE

    def inside(self, end: float) -> bool:
        if math.isnan(end):
            return False
        if self.side == LE:
            return end < self.bound if self.strict else end <= self.bound
        return end > self.bound if self.strict else end >= self.bound


@dataclass
class Family:
    """What the evidence pass made of a session's gates."""

    level: float
    multiple_testing: str
    members: list[Member] = field(default_factory=list)
    point_gated: list[tuple[str, str]] = field(default_factory=list)  # (model, key): no interval
    notices: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """The members adjusted together (NaN ones fail outside the adjustment)."""
        return sum(1 for m in self.members if m.adjusted is not None)


#: (model, gate, its result) as :func:`pytest_fairmind.gating.evaluate.evaluate` attached them.
Attached = tuple[str, Gate, GateResult]


def _bounds(gate: Gate, result: GateResult) -> list[tuple[float, str, bool]]:
    """(bound, side, strict) of each member a result makes; none for a result without a limit."""
    if result.rule == REGRESSION:
        if result.baseline is None or gate.tolerance is None or result.bound == NO_BASELINE:
            return []
        allowed = gate.tolerance.allowed(result.baseline)
        if result.direction == LOWER:
            return [(result.baseline + allowed, LE, False)]
        return [(result.baseline - allowed, GE, False)]
    members = []
    for b in gate.bounds:
        side = LE if b.op in ("<=", "<") else GE
        if (side == LE and b.number == math.inf) or (side == GE and b.number == -math.inf):
            continue  # holds for every value: nothing to test
        members.append((b.number, side, b.op in ("<", ">")))
    return members


def default_distribution() -> DistributionFn | None:
    """:func:`pytest_fairmind.metrics.evidence.distribution`, or None when it cannot be imported."""
    try:  # imported by name: the metrics side may be absent from an install that only checks reports
        evidence = importlib.import_module("pytest_fairmind.metrics.evidence")
    except ImportError:
        return None
    found: DistributionFn | None = getattr(evidence, "distribution", None)
    return found


def default_distributions() -> ScopeDistributionsFn | None:
    """``pytest_fairmind.metrics.evidence.distributions`` (one replicate set per scope), or None."""
    try:
        evidence = importlib.import_module("pytest_fairmind.metrics.evidence")
    except ImportError:
        return None
    found: ScopeDistributionsFn | None = getattr(evidence, "distributions", None)
    return found


def decide(
    attached: Sequence[Attached],
    models: Mapping[str, ModelResult],
    *,
    level: float,
    multiple_testing: str,
    distribution: DistributionFn | None,
    distributions: ScopeDistributionsFn | None = None,
) -> Family:
    """Decide the results in ``attached`` on evidence where their key has an interval (in place:
    ``outcome``, ``evidence``, ``ci_low``/``ci_high``, ``p_value``, ``p_adjusted``, ``alpha``).

    Replicates come from ``distributions`` (all keys of a scope at once) when given, else from
    ``distribution`` (key by key); either way seeded from (model, scope), so one resample set per
    scope serves all its keys."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, not {level!r}")
    family = Family(level, multiple_testing)
    error_rate = 1.0 - level
    payloads: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
    drawing = distribution is not None or distributions is not None
    for name, gate, result in attached:
        if result.rule == REGRESSION and result.bound == NO_BASELINE:
            continue  # nothing to compare with: stays as the baseline module decided
        found = locate(models[name], result.key) if drawing else None
        if found is None:
            family.point_gated.append((name, result.key))
            continue
        payloads[(name, result.key)] = found
        for bound, side, strict in _bounds(gate, result):
            family.members.append(Member(name, result, bound, side, strict))
    if drawing:
        _draw(family, payloads, (distribution, distributions), error_rate)
    live = [m for m in family.members if not math.isnan(m.p)]
    for member, adjusted in zip(live, adjust([m.p for m in live], error_rate, multiple_testing), strict=True):
        member.adjusted = adjusted
        _settle(member, error_rate)
    for member in family.members:
        if member.adjusted is None:
            member.outcome = FAIL  # NaN: a metric that cannot be computed is no evidence of fairness
    _combine(family)
    family.notices.extend(_notices(family))
    return family


Sources = tuple[DistributionFn | None, ScopeDistributionsFn | None]


def _draw(
    family: Family,
    payloads: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]],
    sources: Sources,
    error_rate: float,
) -> None:
    """Each member's distribution and p-value; a point value of NaN leaves both NaN (it fails)."""
    resolution = error_rate / max(1, len(family.members)) if family.multiple_testing != NONE else error_rate
    needed = [
        (m.model, m.result.key)
        for m in family.members
        if m.result.value is not None and not math.isnan(m.result.value)
    ]
    drawn = _fetch(list(dict.fromkeys(needed)), payloads, sources, resolution, family.notices)
    for member in family.members:
        member.dist = drawn.get((member.model, member.result.key))
        if member.dist is not None:
            member.p = member.dist.p_value(member.bound, member.side)
            if not math.isnan(member.p):  # nothing resolves below the distribution's resolution
                member.p = max(member.p, member.dist.resolution)
    lacking = {ident for ident in needed if drawn.get(ident) is None}
    family.point_gated.extend(sorted(lacking))  # the payload named the key but holds no interval
    family.members = [m for m in family.members if (m.model, m.result.key) not in lacking]


def _fetch(
    idents: Sequence[tuple[str, str]],
    payloads: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]],
    sources: Sources,
    resolution: float,
    notices: list[str],
) -> dict[tuple[str, str], Distribution | None]:
    """The distribution of each (model, key): one draw per scope when the metrics side offers it."""
    single, per_scope = sources
    drawn: dict[tuple[str, str], Distribution | None] = {}
    if per_scope is not None:
        scopes: dict[tuple[str, str], list[str]] = {}
        for model, key in idents:
            scopes.setdefault((model, payloads[(model, key)][0]), []).append(key)
        for (model, scope), keys in scopes.items():
            payload = payloads[(model, keys[0])][1]
            try:
                found = per_scope(payload, keys, resolution=resolution, seed=seed_for(model, scope))
            except (ValueError, TypeError) as exc:
                notices.append(f"evidence of {model}: {scope} unreadable ({exc}): gated on points")
                found = {}
            drawn.update({(model, k): found.get(k) for k in keys})
        return drawn
    assert single is not None
    # Grouped by scope, one seed per scope: the metrics side draws a scope's resamples once and
    # shares them among its keys (the keys are statistics of the same resampled data).
    for model, key in sorted(idents, key=lambda ident: (ident[0], payloads[ident][0])):
        scope, payload = payloads[(model, key)]
        try:
            drawn[(model, key)] = single(payload, key, resolution=resolution, seed=seed_for(model, scope))
        except KeyError:
            drawn[(model, key)] = None
        except (ValueError, TypeError) as exc:
            notices.append(f"evidence of {model}: {key} unreadable ({exc}): gated on points")
            drawn[(model, key)] = None
    return drawn


def _settle(member: Member, error_rate: float) -> None:
    """``fail`` when the adjustment rejects; ``pass`` when the one-sided interval at the family level
    (``1 - error_rate``: no adjustment, the guarantee is about false failures) lies inside and the
    replicates resolve that level; else ``inconclusive``."""
    adjusted, dist = member.adjusted, member.dist
    assert adjusted is not None and dist is not None
    member.end = dist.one_sided(error_rate, member.side)
    if adjusted.rejected:
        member.outcome = FAIL
    elif member.inside(member.end) and dist.resolution <= error_rate:
        member.outcome = PASS
    else:
        member.outcome = INCONCLUSIVE


def _combine(family: Family) -> None:
    """Each result from its members: fail over inconclusive over pass; the figures of its member
    closest to failing (smallest adjusted p-value); ``ci_low``/``ci_high`` the one-sided bounds at
    the family level on both sides (the side a member tested, and the other for context)."""
    by_result: dict[int, list[Member]] = {}
    for member in family.members:
        by_result.setdefault(id(member.result), []).append(member)
    error_rate = 1.0 - family.level
    for members in by_result.values():
        result = members[0].result
        outcomes = {m.outcome for m in members}
        result.outcome = FAIL if FAIL in outcomes else INCONCLUSIVE if INCONCLUSIVE in outcomes else PASS
        result.evidence = INTERVAL
        live = [m for m in members if m.adjusted is not None and m.dist is not None]
        if not live:
            continue
        ends = {m.side: m.end for m in live}
        dist = live[0].dist
        assert dist is not None
        low, high = (ends.get(side, dist.one_sided(error_rate, side)) for side in (GE, LE))
        result.ci_low = None if math.isnan(low) or math.isinf(low) else low
        result.ci_high = None if math.isnan(high) or math.isinf(high) else high
        worst = min(live, key=lambda m: (m.adjusted.p_adjusted if m.adjusted else 1.0, m.p))
        assert worst.adjusted is not None
        result.p_value = worst.p
        result.p_adjusted = worst.adjusted.p_adjusted
        result.alpha = worst.adjusted.alpha


def needed_n_boot(alpha: float) -> int:
    """The fewest replicates whose p-values resolve ``alpha``: ``1 / (n + 1) < alpha``."""
    return math.ceil(round(1.0 / alpha, 6)) if alpha > 0 else 0  # round: 1 / 0.0025 is 399.99...


def _listing(items: Sequence[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _notices(family: Family) -> list[str]:
    lines: list[str] = []
    if family.point_gated:
        items = sorted({f"{m}: {k}" for m, k in family.point_gated})
        lines.append(
            f"{len(items)} gated key(s) have no interval and were gated on their point values, with no "
            f"error control: {_listing(items)} (record them with n_boot > 0; docs/evidence.md)"
        )
    # A p-value at its distribution's floor could have been smaller with more replicates: say where
    # that left a gate inconclusive, and how many replicates resolve the family's smallest level.
    smallest = min((m.adjusted.alpha for m in family.members if m.adjusted is not None), default=1.0)
    short_of: dict[tuple[int, float, str], set[str]] = {}
    for m in family.members:
        if m.adjusted is None or m.dist is None or m.outcome != INCONCLUSIVE:
            continue
        if m.dist.resolution > m.adjusted.alpha or (
            m.dist.resolution > smallest and m.p <= m.dist.resolution
        ):
            kind = (m.dist.n_boot, m.dist.resolution, m.dist.method)
            short_of.setdefault(kind, set()).add(f"{m.model}: {m.result.key}")
    for (n_boot, resolution, method), found in sorted(short_of.items()):
        lines.append(
            f"{len(found)} gate(s) inconclusive because their bootstrap resolves p-values only down to "
            f"{short(resolution, 3)} (n_boot={n_boot}, {method}) and the family needs {short(smallest, 3)}: "
            f"{_listing(sorted(found))}; n_boot={needed_n_boot(smallest)} would resolve it"
        )
    return lines


def apply_policy(models: Mapping[str, ModelResult], inconclusive: str) -> list[tuple[str, GateResult]]:
    """Verdicts after the evidence pass (``inconclusive="pass"``: an inconclusive model passes); the
    (model, result) of every inconclusive gate."""
    if inconclusive not in INCONCLUSIVE_ACTIONS:
        raise ValueError(
            f"inconclusive must be one of {', '.join(INCONCLUSIVE_ACTIONS)}, not {inconclusive!r}"
        )
    found: list[tuple[str, GateResult]] = []
    for name, model in models.items():
        model.recompute_verdict()
        if inconclusive == "pass" and model.verdict == INCONCLUSIVE:
            model.verdict = PASS
        found.extend((name, g) for g in model.gates if g.outcome == INCONCLUSIVE)
    return found
