"""Where an assistant's files live; one place for every path the tools use.

The tools work on the demo assistant of this checkout by default, and on any Rasa project
given with --project (or the current folder, when it holds a domain.yml and config.yml).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from emotion_sensing.config import PROJECT_DIR

DEMO_DIR = PROJECT_DIR


def is_rasa_project(folder: Path) -> bool:
    return (Path(folder) / "domain.yml").exists() and (Path(folder) / "config.yml").exists()


def assistant_dir(project: Optional[Path] = None) -> Path:
    """The assistant to work on: --project, else the current folder if it is one, else the demo."""
    if project is not None:
        return Path(project).resolve()
    if is_rasa_project(Path.cwd()):
        return Path.cwd().resolve()
    return DEMO_DIR


def latest_rasa_model(folder: Path = DEMO_DIR) -> Path:
    """The newest trained Rasa model archive of an assistant; FileNotFoundError with advice."""
    models = Path(folder) / "models"
    archives = sorted(
        [*models.glob("rasa/*.tar.gz"), *models.glob("*.tar.gz")], key=lambda p: p.stat().st_mtime
    )
    if not archives:
        raise FileNotFoundError(
            f"no trained Rasa model in {models}; train one with `rasa train` "
            "(for the demo: `make model`, which `make run` does for you)"
        )
    return archives[-1]
