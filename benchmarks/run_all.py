"""Run every benchmark in this folder and print one table of the ratios they measured.

    python benchmarks/run_all.py            # each bench_*.py with --quick (a few minutes)
    python benchmarks/run_all.py --full     # without --quick (much longer)
    python benchmarks/run_all.py -k mlflow  # only benchmarks whose name contains "mlflow"

Each benchmark runs in its own process, one after the other (they time things: running them in
parallel would measure the contention), and prints its own tables, shown here as they come. Every
benchmark measures its contenders side by side in its run and reports ratios (``1.23x``); the
final table collects every line that holds one, per benchmark. Absolute times depend on the
machine and its load; the ratios are what to compare. Exit code 1 when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A ratio as the benchmarks print it: "12.3x", "0.949x" (not part of a word such as "0x1f").
RATIO = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)x(?!\w)")
# ... or as "fairmind / bare = 1.20".
RATIO_EQ = re.compile(r"/[^=/]*=\s*(\d+(?:\.\d+)?)(?![\w.])(?!\s*m?s\b)")
# A bound the benchmark compares with: "<= 1.05x", "target >= 10", "goal <= 1.3x", "> 1.3x".
GOAL = re.compile(r"(?:(?:target|goal)\s*)?([<>]=?)\s*(\d+(?:\.\d+)?)x?(?![\w.])")
MAX_LINE = 90


@dataclass
class Outcome:
    name: str
    returncode: int
    seconds: float
    lines: list[str] = field(default_factory=list)

    def ratio_lines(self) -> list[tuple[str, str, str]]:
        """``(ratios, goals, line)`` for every output line that reports a measured ratio."""
        found: list[tuple[str, str, str]] = []
        for line in self.lines:
            goals = [f"{op} {number}" for op, number in GOAL.findall(line)]
            rest = GOAL.sub(" ", line)
            ratios = [f"{r}x" for r in RATIO.findall(rest)] or [f"{r}x" for r in RATIO_EQ.findall(rest)]
            if not ratios:
                continue
            text = " ".join(line.split())
            text = text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."
            found.append((", ".join(ratios), ", ".join(goals) or "-", text))
        return found


def discover(selector: str | None) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if selector:
        scripts = [s for s in scripts if selector in s.stem]
    return scripts


def run(script: Path, *, quick: bool, timeout: float) -> Outcome:
    cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"\n{'=' * 100}\n$ {' '.join(['python', os.path.relpath(script), *cmd[2:]])}\n", flush=True)
    start = time.perf_counter()
    outcome = Outcome(script.stem, 0, 0.0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=HERE.parent,
        env=env,
        errors="replace",
    )
    assert proc.stdout is not None
    deadline = start + timeout
    for line in proc.stdout:  # shown as it comes, and kept for the final table
        print(line, end="", flush=True)
        outcome.lines.append(line.rstrip("\n"))
        if time.perf_counter() > deadline:
            proc.kill()
            outcome.lines.append(f"(killed after {timeout:g} s)")
            break
    outcome.returncode = proc.wait()
    outcome.seconds = time.perf_counter() - start
    return outcome


def table(outcomes: list[Outcome]) -> list[str]:
    rows = [("benchmark", "ratio", "goal", "line it comes from")]
    for outcome in outcomes:
        found = outcome.ratio_lines()
        if outcome.returncode != 0:
            rows.append(
                (outcome.name, "-", "-", f"CRASHED (exit code {outcome.returncode}); see its output above")
            )
        elif not found:
            rows.append((outcome.name, "-", "-", "(printed no ratio)"))
        rows.extend((outcome.name, *row) for row in found)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run without --quick")
    parser.add_argument("-k", dest="selector", help="only benchmarks whose file name contains this")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark (default 1800)")
    args = parser.parse_args()
    scripts = discover(args.selector)
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 2
    outcomes = [run(script, quick=not args.full, timeout=args.timeout) for script in scripts]
    print(f"\n{'=' * 100}\nratios measured in this run ({'full' if args.full else '--quick'})\n")
    for line in table(outcomes):
        print(line)
    print()
    for outcome in outcomes:
        print(f"{outcome.name}: {outcome.seconds:.0f} s, exit code {outcome.returncode}")
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
