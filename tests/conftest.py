"""Every test gets its own findings cache, so no test sees another's (or the user's) results.

Training subprocesses get one thread each: pytest-xdist already runs a test per core, and
each test trains two scripts side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightify.cache import CACHE_ENV

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def own_findings_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    folder = tmp_path_factory.mktemp("lightify-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder
