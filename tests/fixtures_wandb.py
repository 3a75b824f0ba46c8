"""W&B fixtures and the reader for offline `.wandb` run files."""

from __future__ import annotations
