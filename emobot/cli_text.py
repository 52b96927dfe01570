"""`emobot sense|train|eval|bench text`. Heavy imports stay inside the commands."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

from emobot.paths import datasets_dir, models_dir

DATASET_CHOICES = {"dair": "dair_emotion", "goemotions": "goemotions", "dailydialog": "dailydialog"}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Text-only options for one subcommand (shared ones: --json --data --out --model --manifest)."""
    if command == "sense":
        parser.add_argument("--lines", action="store_true",
                            help="text: each line (of stdin or the text) is a message of its own: one reading per "
                                 "line (label, confidence, valence, message; --json: one JSON object per line)")
    elif command == "train":
        parser.add_argument("--hold-out", choices=sorted(DATASET_CHOICES),
                            help="text: train without this corpus and test on it (implies --no-export)")
        parser.add_argument("--cross-corpus", action="store_true",
                            help="text: the leave-one-corpus-out table: train the recipe (and the earlier TF-IDF "
                                 "model) three times, each without one corpus, and score each on the corpus left out")
        parser.add_argument("--seeds", type=_seeds, default=[0],
                            help="text: train the recipe once per seed (comma-separated, e.g. 0,1,2; each resumable in "
                                 "WORK-seedN, seed 0 in WORK) and ship their ensemble (logits averaged, one "
                                 "temperature); with --cross-corpus, the ensemble's table. Default 0: one model")
        parser.add_argument("--combine", nargs="+", metavar="ADAPTER",
                            help="text: no training: the ensemble of these trained adapters (text_emotion.npz files of "
                                 "one recipe), its temperature fitted and its figures measured, written to --out")
        parser.add_argument("--distil", type=_share, default=None, metavar="SHARE",
                            help="text, with --teacher: the teacher's share of each row's target, above 0 up to 1 "
                                 "(default 0.5)")
    elif command == "eval":
        parser.add_argument("--dataset", choices=[*DATASET_CHOICES, "all"], default="all",
                            help="text: which corpus's split to score (default all three)")
        parser.add_argument("--split", choices=["train", "val", "test"], default="test",
                            help="text: which split of the corpora (default test)")


def _seeds(value: str) -> list:
    try:
        seeds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers separated by commas, not {value!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"give distinct seeds of 0 or more, e.g. 0,1,2 (not {value!r})")
    return seeds


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        share = float("nan")
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"give a share above 0 and up to 1, e.g. 0.5 (not {value!r})")
    return share


def _log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def _model_path(args) -> Path:
    from emotion_sensing.text.recognizer import MODEL_FILE

    model = getattr(args, "model", None)
    return Path(model) if model else models_dir(args) / MODEL_FILE


def _missing_corpora(data: Path, corpora) -> Optional[str]:
    missing = [c for c in corpora if not (data / c).exists()]
    if missing:
        return (f"{', '.join(missing)} not found under {data}. Point --data (or EMOBOT_DATASETS) at the folder "
                "holding dair_emotion/, goemotions/ and dailydialog/; README.md, 'Datasets', says where to get them.")
    return None


def sense(args) -> int:
    from emotion_sensing.text.recognizer import TextRecognizer

    text = " ".join(args.text) if args.text else sys.stdin.read()
    if not text.strip():
        print("emobot sense text: give some text (as arguments or on stdin)", file=sys.stderr)
        return 2
    recognizer = TextRecognizer(_model_path(args))
    if getattr(args, "lines", False):
        return _sense_lines(recognizer, [line.strip() for line in text.splitlines() if line.strip()], args.json)
    reading = recognizer.read(text)
    if args.json:
        print(json.dumps(reading.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if not recognizer.has_classifier:
        print(f"(VADER only: {recognizer.unavailable})", file=sys.stderr)
    print(f"{reading.label} (confidence {reading.confidence:.2f}, valence {reading.valence:+.2f}, arousal {reading.arousal:.2f})")
    for label, p in sorted(zip(reading.to_dict()["probs"], reading.probs), key=lambda x: -x[1]):
        print(f"  {label:<9} {'█' * round(p * 30):<30} {p:.3f}")
    print("  VADER: " + ", ".join(f"{k} {v:+.3f}" for k, v in reading.extras["vader"].items()))
    return 0


def _sense_lines(recognizer, messages: List[str], as_json: bool) -> int:
    """One reading per message: a line each (label, confidence, valence, the message), or JSON lines."""
    if not recognizer.has_classifier:
        print(f"(VADER only: {recognizer.unavailable})", file=sys.stderr)
    for message in messages:
        reading = recognizer.read(message)
        if as_json:
            print(json.dumps({"text": message, **reading.to_dict()}, ensure_ascii=False))
        else:
            print(f"{reading.label:<9} {reading.confidence:.2f}  {reading.valence:+.2f}  {message}")
    return 0


def train(args) -> int:
    from emotion_sensing.text.card import update_results, write_card
    from emotion_sensing.text.encoder import EncoderMissing
    from emotion_sensing.text.train import (
        CORPORA,
        DISTIL_WEIGHT,
        MODEL_FILE,
        combine,
        cross_corpus,
        ship,
        tfidf_baseline,
        train_seeds,
    )

    data, out = datasets_dir(args), models_dir(args)
    if (problem := _missing_corpora(data, CORPORA)) is not None:
        print(f"emobot train text: {problem}", file=sys.stderr)
        return 2
    work = Path(args.work or ".emobot/train/text")
    seeds = getattr(args, "seeds", None) or [0]
    teacher = getattr(args, "teacher", None)
    distil = getattr(args, "distil", None)
    if distil is not None and not teacher:
        print("emobot train text: --distil is the teacher's share: give --teacher MODEL too", file=sys.stderr)
        return 2
    if teacher and (args.cross_corpus or getattr(args, "combine", None)):
        print("emobot train text: --teacher does not go with --cross-corpus or --combine (a teacher trained on every "
              "corpus has read the one held out: distil each held-out run with --hold-out CORPUS and a teacher "
              "trained without it)", file=sys.stderr)
        return 2
    if teacher:
        work = work.with_name(f"{work.name}-distilled")
    try:
        if getattr(args, "combine", None):
            if args.cross_corpus or args.hold_out or seeds != [0]:
                print("emobot train text: --combine takes adapters already trained; it does not go with "
                      "--cross-corpus, --hold-out or --seeds", file=sys.stderr)
                return 2
            missing = [path for path in args.combine if not Path(path).is_file()]
            if missing:
                print(f"emobot train text: no adapter at {', '.join(missing)}", file=sys.stderr)
                return 2
            ensemble = work.with_name(f"{work.name}-combined")
            result = combine([Path(path) for path in args.combine], data, ensemble, log=_log)
            ship(ensemble / MODEL_FILE, out, _log)
            update_results(out, shipped=result)
            _log(f"wrote {write_card(out)}")
            return 0
        if args.cross_corpus:
            table = cross_corpus(data, work, max_minutes=args.max_minutes, log=_log, seeds=seeds)
            if table is None:
                return 3
            update_results(out, cross_corpus=table)
            _log(f"wrote {write_card(out)}")
            return 0
        hold_out = DATASET_CHOICES.get(args.hold_out) if args.hold_out else None
        if hold_out:
            work = work.with_name(f"{work.name}-without-{hold_out}")
        _log(f"checkpoints in {work} (run the same command again to resume)")
        export = hold_out is None and not getattr(args, "no_export", False)
        result = train_seeds(data, out, work, seeds, hold_out=hold_out, export=export,
                             max_minutes=args.max_minutes, log=_log, teacher=Path(teacher) if teacher else None,
                             distil=DISTIL_WEIGHT if distil is None else distil)
    except (EncoderMissing, ValueError) as error:
        print(f"emobot train text: {error}", file=sys.stderr)
        return 2
    if result is None:
        return 3  # stopped by --max-minutes; the message said how to resume
    if export:
        # The model shipped before this one, retrained with its recipe, for the card's comparison.
        baseline_file = work / "tfidf.json"
        if not baseline_file.exists():
            baseline_file.write_text(json.dumps(tfidf_baseline(data, ["dair_emotion", "goemotions"], CORPORA, log=_log)))
        update_results(out, shipped=result, tfidf=json.loads(baseline_file.read_text()))
        _log(f"wrote {write_card(out)}")
    return 0


def eval(args) -> int:  # noqa: A001 - the subcommand's name
    from emotion_sensing.evaluation import format_report
    from emotion_sensing.labels import SkippedLabels
    from emotion_sensing.text.card import load_results
    from emotion_sensing.text.datasets import load_manifest
    from emotion_sensing.text.encoder import EncoderMissing
    from emotion_sensing.text.train import eval_text, load_split

    model = _model_path(args)
    if not model.exists():
        print(f"emobot eval text: no text model at {model}; run `emobot train text`", file=sys.stderr)
        return 2
    if args.manifest and (args.dataset != "all" or args.split != "test"):
        print("emobot eval text: --dataset and --split choose among the corpora under --data, not a --manifest's rows",
              file=sys.stderr)
        return 2
    try:
        if args.manifest:
            splits = [load_manifest(Path(args.manifest))]
        else:
            data = datasets_dir(args)
            corpora = list(DATASET_CHOICES.values()) if args.dataset == "all" else [DATASET_CHOICES[args.dataset]]
            splits = [load_split(data, corpus, args.split) for corpus in corpora]
        result = eval_text(splits, model)
    except (FileNotFoundError, EncoderMissing, ValueError) as error:
        print(f"emobot eval text: {error}", file=sys.stderr)
        return 2
    recorded = load_results(model.parent)
    if not args.manifest and recorded:
        for key in ("cross_corpus", "validation", "tfidf"):
            if recorded.get(key):
                result[key] = recorded[key]
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for entry in result["datasets"]:
        print(f"== {entry['dataset']}")
        if entry.get("skipped") and entry.get("skipped_labels") is not None:  # a manifest's rows left out
            why = SkippedLabels.from_dict(entry["skipped_labels"]).describe()
            print(f"skipped {entry['skipped']:,} row(s)" + (f": {why}" if why else " (too few columns)"))
        print(format_report(entry))
        extra = [f"ECE {entry['ece']:.4f} (uncalibrated {entry['ece_uncalibrated']:.4f})"]
        if entry.get("micro_f1_emotions") is not None:
            extra.append(f"micro-F1 over the emotions {entry['micro_f1_emotions']:.4f}")
        va = entry["valence_agreement"]
        if va["n"]:
            extra.append(f"valence sign agreement on {va['n']} texts: VADER only {va['vader_only']}, "
                         f"recognizer {va['recognizer']}")
        print("; ".join(extra))
    if result.get("cross_corpus"):
        from emotion_sensing.text.card import cross_corpus_table

        print("\nleave-one-corpus-out (trained on the other two corpora, recorded by `emobot train text --cross-corpus`)")
        print(cross_corpus_table(result["cross_corpus"]))
    return 0


def bench(args) -> int:
    from emotion_sensing.text.bench import bench_text
    from emotion_sensing.text.encoder import EncoderMissing

    model = _model_path(args)
    try:
        result = bench_text(model, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (FileNotFoundError, EncoderMissing) as error:
        print(f"emobot bench text: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key in ("read_ms", "encoder_ms"):
        figures = result[key]
        print(f"{key:<12} p50 {figures['p50']:.2f} ms  p95 {figures['p95']:.2f} ms  (n={figures['n']})")
    print(f"on {result['machine']['cpu']}, one core, one thread")
    return 0
