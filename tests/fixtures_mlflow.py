"""MLflow fixtures: a real `mlflow server` on a free loopback port (session scope)."""

from __future__ import annotations
