"""Where an assistant's files live; one place for every path the tools use.

The tools work on the demo assistant of this checkout by default, and on any Rasa project
given with --project (or the current folder, when it holds a config.yml and a domain.yml or domain/).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from emotion_sensing.config import DEFAULT_DATASETS_DIR, PROJECT_DIR

DEMO_DIR = PROJECT_DIR


def is_rasa_project(folder: Path) -> bool:
    """A config.yml beside a domain.yml, or beside a domain/ folder whose files Rasa merges."""
    folder = Path(folder)
    return (folder / "config.yml").exists() and ((folder / "domain.yml").exists() or (folder / "domain").is_dir())


def split_domain(folder: Path) -> bool:
    """Whether the assistant keeps its domain in a domain/ folder (whose files Rasa merges), not domain.yml."""
    return (Path(folder) / "domain").is_dir() and not (Path(folder) / "domain.yml").exists()


def train_command(folder: Path) -> str:
    """How to train the assistant in ``folder``: Rasa reads domain.yml unless told of a domain/ folder."""
    return "rasa train --domain domain" if split_domain(folder) else "rasa train"


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
            f"no trained Rasa model in {models}; train one with `{train_command(folder)}` "
            "in its folder (for the demo: `make model`, which `make run` does for you)"
        )
    return archives[-1]


def datasets_dir(args: Any) -> Path:
    """The datasets folder a train/eval command reads: --data, else EMOBOT_DATASETS, else
    ../shared/datasets beside the checkout."""
    return Path(getattr(args, "data", None) or os.environ.get("EMOBOT_DATASETS") or DEFAULT_DATASETS_DIR)


def models_dir(args: Any) -> Path:
    """The models folder a command reads or writes: --out, else the settings' (EMOBOT_MODELS_DIR)."""
    from emotion_sensing.config import Settings

    return Path(getattr(args, "out", None) or Settings.from_env().models_dir)
