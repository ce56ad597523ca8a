"""Every test gets its own findings cache, so no test sees another's (or the user's) results."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightify.cache import CACHE_ENV


@pytest.fixture(autouse=True)
def own_findings_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    folder = tmp_path_factory.mktemp("lightify-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder
