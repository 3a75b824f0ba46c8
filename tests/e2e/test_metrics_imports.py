"""Importing and using the metrics package in a fresh interpreter: no pandas for numpy input, no pytest."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest_fairmind.metrics as engine

IMPORTS_PYTEST = re.compile(r"^\s*(?:import|from)\s+pytest(?!\w)", re.MULTILINE)


def test_import_and_numpy_use_do_not_import_pandas() -> None:
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import pytest_fairmind.metrics as m
        assert "pandas" not in sys.modules, "import"
        r = m.assess([1, 0, 1, 0], np.array([1, 1, 0, 0]), sensitive_features=np.array(["a", "b", "a", "b"]))
        sf = {"x": ["a", "b", "a", "b"], "y": [1, 1, 2, 2]}
        r = m.assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=sf, sample_weight=[1, 2, 3, 4], n_boot=20)
        r.metrics(); repr(r)
        assert "pandas" not in sys.modules, "assess"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_metrics_package_does_not_import_pytest() -> None:
    code = "import sys, pytest_fairmind.metrics; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for module in Path(engine.__file__).parent.glob("*.py"):
        assert not IMPORTS_PYTEST.search(module.read_text(encoding="utf-8")), module.name
