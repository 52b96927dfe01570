"""Shared fixtures: where the shipped models and the (optional) datasets are."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from emotion_sensing.config import DEFAULT_DATASETS_DIR, DEFAULT_MODELS_DIR

DATASETS = Path(os.environ.get("EMOBOT_DATASETS", DEFAULT_DATASETS_DIR))


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return DEFAULT_MODELS_DIR


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not (DATASETS / "dair_emotion").exists() or not (DATASETS / "goemotions").exists():
        pytest.skip(f"datasets not found at {DATASETS} (set EMOBOT_DATASETS); see README 'Datasets'")
    return DATASETS
