"""What pytest-fairmind costs a test suite that does not use it (issue 7).

Two measurements, each side by side in one run, interleaved so that machine load hits both
contenders alike, and reported as ratios (absolute times depend on the machine):

1. A generated suite of 1500 plain tests (no fixture, marker or option of ours) run with
   ``pytest -q -p no:cacheprovider`` (plugin loaded, as installed) and with ``-p no:fairmind``
   (plugin off). Goal: <= 1.05x.
2. ``python -c "import pytest_fairmind.plugin"`` vs ``python -c "import pytest"``: what loading
   the plugin adds to pytest's own import, and which heavy modules it pulls in (it must pull in
   none of mlflow, wandb, pandas, matplotlib, sklearn, numpy).

Run: ``python benchmarks/bench_overhead.py`` (``--quick``: fewer rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.05
HEAVY = ("mlflow", "wandb", "pandas", "matplotlib", "sklearn", "numpy")
_ENV_PREFIXES = ("FAIRMIND_", "PYTEST_", "MLFLOW_", "WANDB_")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def write_suite(root: Path, n_tests: int, per_file: int = 50) -> None:
    """``n_tests`` ordinary tests in files of ``per_file``: plain, parametrized and fixture-using."""
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # keep the repo's config out
    (root / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef numbers():\n    return list(range(10))\n",
        encoding="utf-8",
    )
    written = 0
    index = 0
    while written < n_tests:
        count = min(per_file, n_tests - written)
        plain = count // 2
        param = count - plain
        lines = ["import pytest", ""]
        for i in range(plain):
            lines += [f"def test_plain_{i}(numbers):", f"    assert sum(numbers) + {i} == 45 + {i}", ""]
        lines += [
            f"@pytest.mark.parametrize('x', range({param}))",
            "def test_param(x):",
            "    assert x * 2 == x + x",
            "",
        ]
        (root / f"test_gen_{index:03d}.py").write_text("\n".join(lines), encoding="utf-8")
        written += count
        index += 1


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return elapsed


def interleaved(
    contenders: dict[str, list[str]], rounds: int, cwd: Path, env: dict[str, str]
) -> dict[str, list[float]]:
    """Run every contender once per round, alternating which goes first."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(timed(contenders[name], cwd, env))
    return times


def heavy_modules(env: dict[str, str]) -> list[str]:
    code = f"import sys, pytest_fairmind.plugin; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def report(
    title: str, times: dict[str, list[float]], base: str, other: str, unit: float, unit_name: str
) -> float:
    med = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    print(f"\n{title}")
    print(f"  {'contender':<44} {'median':>10} {'best':>10}  runs")
    for name, t in times.items():
        print(
            f"  {name:<44} {med[name] * unit:>8.1f}{unit_name} {best[name] * unit:>8.1f}{unit_name}  {len(t)}"
        )
    ratio = med[other] / med[base]
    print(f"  {other} / {base}: median {ratio:.3f}, best {best[other] / best[base]:.3f}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--tests", type=int, default=1500, help="size of the generated suite (default 1500)")
    args = parser.parse_args()
    suite_rounds = 3 if args.quick else 7
    import_rounds = 7 if args.quick else 21
    env = clean_env()
    py = sys.executable

    with tempfile.TemporaryDirectory(prefix="fairmind-overhead-") as tmp:
        root = Path(tmp)
        write_suite(root, args.tests)
        base = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        contenders = {"pytest (plugin loaded)": base, "pytest -p no:fairmind": [*base, "-p", "no:fairmind"]}
        for cmd in contenders.values():  # warm the file cache and bytecode
            timed(cmd, root, env)
        suite = interleaved(contenders, suite_rounds, root, env)

        imports = {
            "python -c 'import pytest'": [py, "-c", "import pytest"],
            "python -c 'import pytest_fairmind.plugin'": [py, "-c", "import pytest_fairmind.plugin"],
        }
        for cmd in imports.values():
            timed(cmd, root, env)
        imported = interleaved(imports, import_rounds, root, env)
        idle = interleaved({"python -c pass": [py, "-c", "pass"]}, import_rounds, root, env)

    suite_ratio = report(
        f"{args.tests} plain tests, interleaved, {suite_rounds} rounds",
        suite,
        "pytest -p no:fairmind",
        "pytest (plugin loaded)",
        1.0,
        " s",
    )
    import_ratio = report(
        f"import cost, interleaved, {import_rounds} rounds",
        imported,
        "python -c 'import pytest'",
        "python -c 'import pytest_fairmind.plugin'",
        1e3,
        "ms",
    )
    startup = statistics.median(idle["python -c pass"])
    pytest_only = statistics.median(imported["python -c 'import pytest'"]) - startup
    plugin_more = statistics.median(imported["python -c 'import pytest_fairmind.plugin'"]) - startup
    print(
        f"  without interpreter start-up ({startup * 1e3:.1f} ms): import pytest {pytest_only * 1e3:.1f} ms,"
    )
    print(f"  import pytest_fairmind.plugin {plugin_more * 1e3:.1f} ms (pytest included)")
    heavy = heavy_modules(env)
    print(f"  heavy modules imported by the plugin: {', '.join(heavy) if heavy else 'none'}")

    print("\nsummary (ratios of medians; side by side in this run)")
    print(f"  {'measurement':<52} {'ratio':>8}  goal")
    verdict = "met" if suite_ratio <= GOAL else "NOT met"
    label = f"{args.tests}-test suite: plugin loaded / -p no:fairmind"
    print(f"  {label:<52} {suite_ratio:>7.3f}x  <= {GOAL}x ({verdict})")
    print(f"  {'import pytest_fairmind.plugin / import pytest':<52} {import_ratio:>7.3f}x  -")
    return 0


if __name__ == "__main__":
    sys.exit(main())
