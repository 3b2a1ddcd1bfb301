"""Fixtures the whole suite shares (tests/<area>/conftest.py hold those of one area)."""

import os

import pytest


@pytest.fixture
def pip_offline(monkeypatch):
    """Make any `pip download` fail fast: no config files, no find-links, an index on a closed port."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "1")
