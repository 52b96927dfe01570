"""What the face measurement scripts share: their command line and the check that the datasets
they read are there. Not a script itself."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotion_sensing.config import DEFAULT_DATASETS_DIR, DEFAULT_MODELS_DIR  # noqa: E402


def arguments(doc: str, script: str, needs: Sequence[str], argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """``--data`` (the datasets folder, which must hold every folder of ``needs``), ``--model`` (the
    shipped face model) and ``--json`` (where to write every row); ``--help`` shows the script's
    whole doc. A missing dataset ends ``script`` with where to get it, not a traceback."""
    summary, _, details = doc.partition("\n\n")
    parser = argparse.ArgumentParser(description=summary, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOBOT_DATASETS") or DEFAULT_DATASETS_DIR),
                        help=f"the datasets folder ({', '.join(name + '/' for name in needs)})")
    parser.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / "face_emotion.tflite")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args(argv)
    missing = [name for name in needs if not (args.data / name).is_dir()]
    if missing:
        raise SystemExit(f"{script}: {', '.join(missing)} not found in {args.data}: see README "
                         "'Datasets' for where to get them, and point --data (or EMOBOT_DATASETS) at their folder")
    return args
