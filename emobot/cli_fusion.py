"""`emobot eval fusion` (the paired fusion benchmark, emotion_sensing/fusion_bench.py) and
`emobot train fusion` (fit the fusion model on validation splits, emotion_sensing/fusion_train.py)."""
from __future__ import annotations

import argparse
import json
import sys

from emobot.paths import datasets_dir, models_dir


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Fusion-only options (shared ones: --json --data)."""
    if command in ("eval", "train"):
        parser.add_argument("--rows-per-label", type=int, default=500, metavar="N",
                            help="fusion: benchmark rows per true label (default 500: 3,500 rows)")
        parser.add_argument("--carry-p", type=float, default=0.3, metavar="P",
                            help="fusion: chance that a row's message carries its emotion (default 0.3)")
        parser.add_argument("--seed", type=int, default=0, help="fusion: seed of the row draw (default 0)")
    if command == "eval":
        parser.add_argument("--face-shows", type=float, default=1.0, metavar="Q",
                            help="fusion: chance that an emotional person's face shows the emotion; otherwise the row "
                                 "has a neutral face (default 1: every face shows it)")
        parser.add_argument("--samples-per-label", type=int, default=None, metavar="N",
                            help="fusion: read at most N test messages and faces per label (default: 200 messages "
                                 "and every FER2013 test face; fewer is quicker, and the rows draw on fewer samples)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _checked(command: str, args) -> bool:
    if args.rows_per_label < 1 or not 0.0 <= args.carry_p <= 1.0 or not 0.0 <= getattr(args, "face_shows", 1.0) <= 1.0:
        print(f"emobot {command} fusion: --rows-per-label must be at least 1, and --carry-p and --face-shows "
              "between 0 and 1", file=sys.stderr)
        return False
    return True


def train(args) -> int:
    from emotion_sensing.fusion_train import train_fusion

    if not _checked("train", args):
        return 2
    try:
        train_fusion(datasets_dir(args), models_dir(args), n_per_label=args.rows_per_label, p=args.carry_p, seed=args.seed, log=_log)
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot train fusion: {error}", file=sys.stderr)
        return 2
    return 0


def eval(args) -> int:  # noqa: A001 - the subcommand's name
    from emotion_sensing.config import Settings
    from emotion_sensing.fusion_bench import format_report, run, run_outside

    if not _checked("eval", args):
        return 2
    if getattr(args, "manifest", None):
        print("emobot eval fusion: --manifest is for text, speech and face; the fusion benchmark pairs the "
              "corpora under --data itself", file=sys.stderr)
        return 2
    cross, samples = getattr(args, "cross", False), getattr(args, "samples_per_label", None)
    if samples is not None and (samples < 1 or cross):
        print("emobot eval fusion: --samples-per-label must be at least 1, and does not apply to --cross",
              file=sys.stderr)
        return 2
    extra = {"face_shows": args.face_shows} if cross else {"samples_per_label": samples, "face_shows": args.face_shows}
    bench = run_outside if cross else run
    try:
        result = bench(datasets_dir(args), Settings.from_env().models_dir, n_per_label=args.rows_per_label, p=args.carry_p,
                       seed=args.seed, log=_log, **extra)
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot eval fusion: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
