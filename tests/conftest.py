from __future__ import annotations

# Fixture modules live beside this file (tests/ is on sys.path through rootdir conftest import).
pytest_plugins = ["pytester", "fixtures_mlflow", "fixtures_wandb"]
