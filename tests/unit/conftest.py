"""Unit tests: pure modules, no subprocess, no pytester session."""
