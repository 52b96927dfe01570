"""The command line every measurement script in scripts/ shares. Not a script itself.

``--data`` is the datasets folder as ``emobot train`` and ``emobot eval`` find it (``--data``, else
``EMOBOT_DATASETS``, else ../shared/datasets beside the checkout); ``--json`` is where a script
writes its figures; ``--help`` shows the script's whole doc (what it measures, its command line and
how long it takes). A dataset the script needs and cannot find ends it with a message naming the
folders it looked for and where to read how to get them, not a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emobot.paths import datasets_dir  # noqa: E402
from emotion_sensing.config import DEFAULT_MODELS_DIR  # noqa: E402


def arguments(doc: str, needs: Sequence[str] = (), argv: Optional[Sequence[str]] = None, *,
              model: Optional[str] = None, json: Optional[str] = "write the figures here",
              more: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    """The script's arguments. ``needs``: the folders of ``--data`` it cannot run without (a script
    that reads a dataset only if present leaves it out); ``model``: the file in models/ a ``--model``
    option defaults to, if the script reads one; ``json``: the help of ``--json`` (None: the script has none);
    ``more``: adds the script's own options to the parser."""
    summary, _, details = doc.strip().partition("\n\n")
    parser = argparse.ArgumentParser(description=summary, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    folders = f" ({', '.join(name + '/' for name in needs)})" if needs else ""
    parser.add_argument("--data", type=Path, default=None,
                        help=f"the datasets folder{folders}; default: EMOBOT_DATASETS, else ../shared/datasets")
    if model is not None:
        parser.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / model, help=f"default: models/{model}")
    if json is not None:
        parser.add_argument("--json", type=Path, metavar="FILE", help=json)
    if more is not None:
        more(parser)
    args = parser.parse_args(argv)
    args.data = datasets_dir(args)
    missing = [name for name in needs if not (args.data / name).is_dir()]
    if missing:
        raise SystemExit(f"{parser.prog}: {', '.join(missing)} not found in {args.data}. See README.md, 'Datasets', "
                         "for where to get them and point --data (or EMOBOT_DATASETS) at their folder.")
    return args
