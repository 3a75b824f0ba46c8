"""Unit tests: pure modules, no subprocess, no pytester session (the environment is cleared per
test by the root conftest)."""
