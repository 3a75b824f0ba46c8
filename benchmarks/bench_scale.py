"""What pytest-fairmind adds to a large recording suite, serial and under xdist (issue 11).

A generated suite of 10,000 tests, each recording 50 metrics for one of 20 models, is run

- with the plugin: ``python -m pytest -q -p no:randomly --fairmind-json=PATH`` (aggregation per
  model, collisions, gates, history, the report), serial (``-p no:xdist``) and with ``-n 2``;
- against the same test files with a no-op stand-in ``fairmind`` fixture (a conftest fixture whose
  ``record``/``assess`` do nothing) and ``-p no:fairmind``, serial and with ``-n 2``.

The four contenders run once per round, rounds interleaved (the order flips every round) so that
machine load hits them alike. Reported: plugin / stand-in as the ratio of the medians and as the
median of the per-round ratios (a plugin run and its stand-in run are neighbours in every round),
the goal (<= 1.5x) checked on the latter; absolute times depend on the machine. Each run's CPU
time (user + system, xdist workers included) is reported next to its wall time: other load on the
machine disturbs it least. Every plugin run
writes a report; the reports of all serial and ``-n 2`` runs must be identical except the session
id, times and notices (exit code 1 when they are not: that is a bug, not a slow machine).

The suite: test ``k`` (parametrized, 500 per file) records ``m0`` .. ``m49`` with deterministic
values for ``model{k % 20}`` under ``scope=f"case{k:05d}"``, so every test owns its keys as the tests
of a real suite do (a collision is a warning there, a mistake to fix). ``--collisions N`` (default
2) tests instead reuse the scope of the test 20 before them, same model, other values: N x 50 keys
collide, enough to exercise the node-id rule that makes xdist's scheduling irrelevant. Every
plugin run starts without a history folder, as a fresh CI checkout does.

Run: ``python benchmarks/bench_scale.py`` (``--quick``: 1000 tests; ``--tests/--metrics/--models/
--rounds`` to resize; ``--profile``: also one serial plugin run under cProfile, its top entries).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOAL = 1.5
PER_FILE = 500
_ENV_PREFIXES = ("FAIRMIND_", "PYTEST_", "MLFLOW_", "WANDB_")
# Report fields that legitimately differ between two runs of the same suite.
VOLATILE_SESSION = ("id", "started", "finished")
VOLATILE_TOP = ("notices",)

TEST_FILE = """\
import pytest

MODELS = {models}
METRICS = {metrics}
COLLIDING = frozenset({colliding!r})  # these reuse the scope of the test MODELS before them


@pytest.mark.parametrize("k", range({first}, {stop}))
def test_case(fairmind, k):
    owner = k - MODELS if k in COLLIDING else k
    values = {{f"m{{j}}": ((k * 7919 + j * 104729) % 100003) / 100003 for j in range(METRICS)}}
    fairmind.record(values, model=f"model{{k % MODELS}}", scope=f"case{{owner:05d}}")
    assert len(values) == METRICS
"""

STAND_IN_CONFTEST = '''\
import pytest


class NoOpFairmind:
    """Stand-in for the plugin's fixture: same calls, nothing done."""

    def record(self, metrics, **kwargs):
        return None

    def assess(self, y_true, y_pred, **kwargs):
        return None


@pytest.fixture
def fairmind():
    return NoOpFairmind()
'''


@dataclass(frozen=True)
class Contender:
    name: str
    suite: str  # "plugin" or "stand-in": the folder it runs in
    xdist: bool

    @property
    def with_plugin(self) -> bool:
        return self.suite == "plugin"


CONTENDERS = (
    Contender("plugin, serial", "plugin", xdist=False),
    Contender("stand-in, serial", "stand-in", xdist=False),
    Contender("plugin, -n 2", "plugin", xdist=True),
    Contender("stand-in, -n 2", "stand-in", xdist=True),
)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def colliding_tests(n_tests: int, n_models: int, n_collisions: int) -> list[int]:
    """Test indices spread over the suite, each with an earlier test of the same model to collide with."""
    picked = {n_models + (n_tests - n_models) * (i + 1) // (n_collisions + 1) for i in range(n_collisions)}
    return sorted(k for k in picked if n_models <= k < n_tests)


def write_suite(root: Path, n_tests: int, n_metrics: int, n_models: int, colliding: list[int]) -> None:
    """The same test files in ``root/plugin`` and ``root/stand-in`` (the latter with the no-op fixture)."""
    for suite in ("plugin", "stand-in"):
        folder = root / suite
        folder.mkdir()
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # keep the repo's config out
        if suite == "stand-in":
            (folder / "conftest.py").write_text(STAND_IN_CONFTEST, encoding="utf-8")
        for index, first in enumerate(range(0, n_tests, PER_FILE)):
            stop = min(first + PER_FILE, n_tests)
            text = TEST_FILE.format(
                models=n_models,
                metrics=n_metrics,
                colliding=sorted(k for k in colliding if first <= k < stop),
                first=first,
                stop=stop,
            )
            (folder / f"test_scale_{index:03d}.py").write_text(text, encoding="utf-8")


def command(contender: Contender, report: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]
    cmd += ["-n", "2"] if contender.xdist else ["-p", "no:xdist"]
    if contender.with_plugin:
        assert report is not None
        cmd.append(f"--fairmind-json={report}")
    else:
        cmd += ["-p", "no:fairmind"]
    return cmd


#: CPU seconds (user + system) of every run, by contender: what a loaded machine disturbs least.
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # xdist workers included: they are waited for
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, cpu_of: str | None = None) -> float:
    shutil.rmtree(cwd / ".fairmind", ignore_errors=True)  # every run starts from a fresh checkout
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    elapsed = time.perf_counter() - start
    if cpu_of is not None:
        CPU.setdefault(cpu_of, []).append(_children_cpu() - cpu_before)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return elapsed


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cpus)"


def measure(
    root: Path, rounds: int, env: dict[str, str], timeout: float
) -> tuple[dict[str, list[float]], dict[str, list[Path]]]:
    """Wall times of every contender, one run each per round, the order flipping every round."""
    times: dict[str, list[float]] = {c.name: [] for c in CONTENDERS}
    reports: dict[str, list[Path]] = {c.name: [] for c in CONTENDERS if c.with_plugin}
    for r in range(rounds):
        order = CONTENDERS if r % 2 == 0 else tuple(reversed(CONTENDERS))
        print(f"  round {r + 1}/{rounds}: {load()}", flush=True)
        for contender in order:
            report = root / "reports" / f"{contender.name.replace(' ', '').replace(',', '_')}-{r}.json"
            elapsed = run(command(contender, report), root / contender.suite, env, timeout, contender.name)
            times[contender.name].append(elapsed)
            if contender.with_plugin:
                reports[contender.name].append(report)
            cpu = CPU[contender.name][-1]
            print(f"    {contender.name:<20} {elapsed:8.1f} s  (cpu {cpu:.1f} s)", flush=True)
    print(f"  after the last round: {load()}", flush=True)
    return times, reports


def normalized(path: Path) -> dict[str, Any]:
    """The report without what differs between two runs of one suite: session id, times, notices."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE_SESSION:
        document.get("session", {}).pop(key, None)
    for key in VOLATILE_TOP:
        document.pop(key, None)
    return document


def differences(a: Any, b: Any, where: str = "") -> Iterator[str]:
    """Where ``a`` and ``b`` differ, as ``path: a != b`` lines, in document order."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in a or key not in b:
                yield f"{where}.{key}: only in the {'second' if key not in a else 'first'} report"
            else:
                yield from differences(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from differences(x, y, f"{where}[{i}]")
        if len(a) != len(b):
            yield f"{where}: {len(a)} items != {len(b)} items"
    elif a != b or type(a) is not type(b):
        yield f"{where or '(root)'}: {shorten(a)} != {shorten(b)}"


def shorten(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_reports(reports: dict[str, list[Path]]) -> tuple[bool, str | None, dict[str, int]]:
    """Every report against the first serial one: (identical, first difference, sizes)."""
    paths = [p for name in reports for p in reports[name]]
    reference = normalized(paths[0])
    models = reference.get("models", {})
    sizes = {
        "models": len(models),
        "metrics": sum(len(m.get("metrics", {})) for m in models.values()),
        "tests": sum(len(m.get("tests", [])) for m in models.values()),
        "collisions": sum(len(m.get("collisions", [])) for m in models.values()),
    }
    for path in paths[1:]:
        first = next(differences(reference, normalized(path)), None)
        if first is not None:
            return False, f"{paths[0].name} vs {path.name}: {first}", sizes
    return True, None, sizes


def profile(root: Path, env: dict[str, str], timeout: float, top: int) -> None:
    """One serial plugin run under cProfile: the package's own hot spots, then everything by own time."""
    out = root / "serial.prof"
    contender = CONTENDERS[0]
    cmd = command(contender, root / "reports" / "profiled.json")
    cmd[1:1] = ["-m", "cProfile", "-o", str(out)]
    elapsed = run(cmd, root / contender.suite, env, timeout)
    print(f"\nprofile of one serial plugin run ({elapsed:.1f} s under cProfile; {load()})")
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats("pytest_fairmind", top)
    stats.sort_stats("tottime").print_stats(top)


def summary(times: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Per mode: the ratio of the medians and the median of the per-round ratios (each round runs
    a plugin run right next to its stand-in run, so the latter resists load that drifts)."""
    med = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    print(f"\n  {'contender':<20} {'median':>10} {'best':>10}  runs")
    for name, t in times.items():
        print(f"  {name:<20} {med[name]:>8.1f} s {best[name]:>8.1f} s  {len(t)}")
    ratios: dict[str, tuple[float, float]] = {}
    for mode in ("serial", "-n 2"):
        plugin, stand_in = f"plugin, {mode}", f"stand-in, {mode}"
        paired = [p / s for p, s in zip(times[plugin], times[stand_in], strict=True)]
        ratios[mode] = (med[plugin] / med[stand_in], statistics.median(paired))
        added = med[plugin] - med[stand_in]
        print(
            f"  {mode:<7} plugin adds {added:6.1f} s; per-round ratios "
            + " ".join(f"{r:.3f}" for r in paired)
        )
        if CPU.get(plugin) and CPU.get(stand_in):
            cpu_ratios = [p / s for p, s in zip(CPU[plugin], CPU[stand_in], strict=True) if s > 0]
            print(
                f"  {mode:<7} cpu (user + system, workers included): plugin "
                f"{statistics.median(CPU[plugin]):.1f} s, stand-in {statistics.median(CPU[stand_in]):.1f} s; "
                "per-round ratios " + " ".join(f"{r:.3f}" for r in cpu_ratios)
            )
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1000 tests (unless --tests is given)")
    parser.add_argument("--tests", type=int, default=None, help="tests in the suite (default 10000)")
    parser.add_argument("--metrics", type=int, default=50, help="metrics recorded per test (default 50)")
    parser.add_argument("--models", type=int, default=20, help="models the tests record for (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, median taken (default 3)")
    parser.add_argument("--collisions", type=int, default=2, help="tests colliding with another (default 2)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run (default 1800)")
    parser.add_argument("--profile", action="store_true", help="also profile one serial plugin run")
    parser.add_argument("--top", type=int, default=25, help="profile entries shown per table (default 25)")
    parser.add_argument("--keep", type=Path, help="write the suite, reports and profile here and keep them")
    args = parser.parse_args()
    n_tests = args.tests if args.tests is not None else (1000 if args.quick else 10_000)
    if n_tests < 1 or args.metrics < 1 or args.models < 1 or args.rounds < 1:
        parser.error("--tests, --metrics, --models and --rounds must be at least 1")
    env = clean_env()
    colliding = colliding_tests(n_tests, args.models, args.collisions)

    with contextlib.ExitStack() as stack:
        if args.keep is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fairmind-scale-")))
        else:
            root = args.keep.resolve() / time.strftime("scale-%Y%m%d-%H%M%S")
            root.mkdir(parents=True)
        (root / "reports").mkdir()
        write_suite(root, n_tests, args.metrics, args.models, colliding)
        for suite in ("plugin", "stand-in"):  # compile the test files, warm the file cache
            extra = [] if suite == "plugin" else ["-p", "no:fairmind"]
            run([sys.executable, "-m", "pytest", "-q", "--co", *extra], root / suite, env, args.timeout)

        title = f"{n_tests} tests, {args.metrics} metrics each, {args.models} models"
        print(f"{title}; {len(colliding)} colliding tests; {args.rounds} interleaved rounds", flush=True)
        times, reports = measure(root, args.rounds, env, args.timeout)
        ratios = summary(times)
        identical, first, sizes = compare_reports(reports)
        print(
            f"  report: {sizes['models']} models, {sizes['metrics']} metrics, {sizes['tests']} tests, "
            f"{sizes['collisions']} collisions"
        )
        if args.profile:
            profile(root, env, args.timeout, args.top)
        if args.keep is not None:
            print(f"\nsuite, reports and profile kept in {root}")

    print("\nsummary (side by side in this run; the goal is checked on the median of the per-round ratios)")
    print(f"  {'measurement':<46} {'medians':>8} {'rounds':>8}  goal")
    for mode, (of_medians, of_rounds) in ratios.items():
        verdict = "met" if of_rounds <= GOAL else "NOT met"
        label = f"{mode}: plugin over no-op stand-in fixture"
        print(f"  {label:<46} {of_medians:>7.3f}x {of_rounds:>7.3f}x  <= {GOAL}x ({verdict})")
    print(f"  reports serial vs -n 2 identical (all {sum(len(r) for r in reports.values())} runs): ", end="")
    print("yes" if identical else f"NO, first difference: {first}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
