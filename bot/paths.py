"""Where the demo assistant's files live; one place for every path the tools use."""
from __future__ import annotations

from pathlib import Path

from emotion_sensing.config import PROJECT_DIR

ASSISTANT_DIR = PROJECT_DIR
RASA_MODELS_DIR = PROJECT_DIR / "models" / "rasa"
CREDENTIALS = PROJECT_DIR / "credentials.yml"
ENDPOINTS = PROJECT_DIR / "endpoints.yml"
RUN_DIR = PROJECT_DIR / ".emobot"


def latest_rasa_model(models_dir: Path = RASA_MODELS_DIR) -> Path:
    """The newest trained Rasa model archive; FileNotFoundError with advice if none."""
    archives = sorted(Path(models_dir).glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise FileNotFoundError(
            f"no trained Rasa model in {models_dir}; run `make model` (or `make run`, which trains it)"
        )
    return archives[-1]
