"""`emobot sense|train|eval|bench speech`. Heavy imports stay inside the commands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from emobot.paths import datasets_dir, models_dir


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Speech-only options for one subcommand (shared ones: --json --data --out --model --manifest)."""
    if command == "sense":
        parser.add_argument("--audio", metavar="FILE", help="speech: a WAV/FLAC/OGG file to read")
        parser.add_argument("--no-transcript", action="store_true", help="speech: skip the transcript")
        parser.add_argument("--transcriber", choices=["auto", "whisper", "sphinx"], default="auto",
                            help="speech: transcript engine (default: Whisper tiny.en, pocketsphinx if it fails)")
    elif command == "train":
        parser.add_argument("--classifiers", help="speech: comma-separated subset of knn,logreg,hgb,svc,forest,mlp")
        parser.add_argument("--prune", nargs="?", const="15", metavar="DEGREES",
                            help="speech: also train MLPs pruned by distinctiveness at these angles (default 15)")
        parser.add_argument("--folds", type=int, default=6, help="speech: cross-validation folds by actor (default 6)")
        parser.add_argument("--no-lstm", action="store_true", help="speech: skip the LSTM sequence model")
        parser.add_argument("--lstm-epochs", type=int, default=30, help="speech: LSTM training epochs (default 30)")
        parser.add_argument("--no-augment", action="store_true",
                            help="speech: train the shipped model on clean clips only (default: also on noisy "
                                 "and telephone-band copies)")
        parser.add_argument("--no-compare", action="store_true",
                            help="speech: leave openSMILE's ComParE_2016 set (6373 values; alone and beside the other "
                                 "blocks) out of the comparison")
    elif command == "eval":
        parser.add_argument("--robustness", action="store_true",
                            help="speech: also measure under telephone band, noise at 20/10 dB SNR and ±12 dB gain "
                                 "(features cached per condition; the first run takes ~15 min)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _say(message: str) -> None:
    """Progress of a long run on stdout, flushed so that a log file follows it."""
    print(message, flush=True)


def _model_path(args) -> Path:
    from emotion_sensing.speech.model import MODEL_FILE

    model = getattr(args, "model", None)
    return Path(model) if model else models_dir(args) / MODEL_FILE


def sense(args) -> int:
    path = args.audio or (args.text[0] if getattr(args, "text", None) else None)
    if not path:
        print("emobot sense speech: give a sound file with --audio FILE", file=sys.stderr)
        return 2
    from emotion_sensing.speech.audio import AudioError, decode, prepare

    try:
        samples, rate = decode(Path(path).read_bytes())
        samples = prepare(samples, rate)
    except FileNotFoundError:
        print(f"emobot sense speech: no file {path}", file=sys.stderr)
        return 2
    except AudioError as error:
        print(f"emobot sense speech: {path}: {error.message}", file=sys.stderr)
        return 2
    model = _model_path(args)
    if not model.exists():
        print(f"emobot sense speech: no voice model at {model}; run `emobot train speech`", file=sys.stderr)
        return 2
    from emotion_sensing.speech.recognizer import VoiceRecognizer

    if not args.json:
        _log("loading the voice model (the first run compiles librosa's code: ~20 s)...")
    reading = VoiceRecognizer(model).read(samples)
    transcript = None
    if not args.no_transcript and reading.extras.get("speech"):
        from emotion_sensing.speech.transcribe import Transcriber, TranscriptionUnavailable

        try:
            transcript = Transcriber(args.transcriber).transcribe(samples).to_dict()
        except TranscriptionUnavailable as error:
            transcript = {"text": None, "engine": None, "error": str(error)}
    if args.json:
        print(json.dumps({"reading": reading.to_dict(), "transcript": transcript}, indent=2, ensure_ascii=False))
        return 0
    extras = reading.extras
    if not extras.get("speech"):
        print(f"no speech heard in {path} (peak level {extras.get('level_db')} dB)")
        return 0
    print(f"{reading.label} (confidence {reading.confidence:.2f}, valence {reading.valence:+.2f}, "
          f"arousal {reading.arousal:.2f}); {extras['voiced_s']:.1f} s of voice in {extras['duration_s']:.1f} s")
    for label, p in sorted(zip(reading.to_dict()["probs"], reading.probs), key=lambda x: -x[1]):
        print(f"  {label:<9} {'█' * round(p * 30):<30} {p:.3f}")
    print("  (one utterance of an unknown speaker: standardised with population statistics only)")
    if transcript is not None:
        text = transcript["text"] if transcript["text"] is not None else f"unavailable ({transcript['error']})"
        print(f"transcript ({transcript['engine'] or 'none'}): {text}")
    return 0


def train(args) -> int:
    from emotion_sensing.speech.model import CLASSIFIERS, MODEL_FILE

    classifiers = [c.strip() for c in (args.classifiers or ",".join(CLASSIFIERS)).split(",") if c.strip()]
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown:
        print(f"emobot train speech: unknown classifier(s) {', '.join(unknown)}; choose from {', '.join(CLASSIFIERS)}",
              file=sys.stderr)
        return 2
    prune = []
    if args.prune:
        from emotion_sensing.speech.prune import prune_thresholds

        try:
            prune = prune_thresholds(args.prune)
        except ValueError as error:
            print(f"emobot train speech: {error}", file=sys.stderr)
            return 2
    from emotion_sensing.speech.card import write_card
    from emotion_sensing.speech.train import train_speech

    data = datasets_dir(args)
    out = models_dir(args)
    try:
        from emotion_sensing.speech.train import AUGMENT
        from emotion_sensing.speech.vector import EXTRA_BLOCKS

        comparison = train_speech(data, out, classifiers=classifiers, sequence_model=not args.no_lstm,
                                  lstm_epochs=args.lstm_epochs, prune_degrees=prune, folds=args.folds,
                                  augment=() if args.no_augment else AUGMENT, log=_say,
                                  extra_blocks=tuple(b for b in EXTRA_BLOCKS if not (args.no_compare and b == "compare")))
        from emotion_sensing.speech.evaluate import evaluate_ravdess

        evaluation = evaluate_ravdess(data, out / MODEL_FILE, log=_say, robustness=True)
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot train speech: {error}", file=sys.stderr)
        return 2
    print(f"wrote {write_card(out, comparison, evaluation)}")
    return 0


def eval(args) -> int:  # noqa: A001 - the subcommand's name
    from emotion_sensing.evaluation import format_report
    from emotion_sensing.speech.evaluate import evaluate_folders, evaluate_manifest, evaluate_ravdess, load_comparison

    model = _model_path(args)
    if args.manifest and getattr(args, "folders", None):
        print("emobot eval speech: --manifest and --folders each say what to measure: give one", file=sys.stderr)
        return 2
    try:
        robustness = bool(getattr(args, "robustness", False))
        if args.manifest:
            result = evaluate_manifest(Path(args.manifest), model, log=_log, robustness=robustness)
        elif getattr(args, "folders", None):
            result = evaluate_folders(Path(args.folders), model, log=_log, robustness=robustness)
        else:
            result = evaluate_ravdess(datasets_dir(args), model, log=_log, robustness=robustness)
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot eval speech: {error}", file=sys.stderr)
        return 2
    comparison = load_comparison(model.parent)
    own_data = args.manifest or getattr(args, "folders", None)
    if comparison is not None and not own_data:
        result["comparison"] = comparison
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"== {result['dataset']} ({result['speakers']})")
    if result.get("skipped"):
        why = "; ".join(result.get("skipped_notes") or [])
        print(f"skipped {result['skipped']:,} row(s)" + (f": {why}" if why else ""))
    print(format_report(result))
    modes = result["accuracy_by_normalisation"]
    print("accuracy by per-speaker standardisation: " + ", ".join(f"{k} {v:.3f}" for k, v in modes.items()))
    print(f"calibration: ECE {result['ece']:.4f} (15 bins, temperature {result['temperature']:.3f})")
    for condition, entry in (result.get("robustness") or {}).items():
        print(f"  {condition:<10} accuracy {entry['speaker']:.3f} ({0.0 - entry['drop'] + 0.0:+.3f} against clean), "
              f"after 3 utterances {entry['after3']:.3f}")
    if comparison is not None and not own_data:
        from emotion_sensing.speech.train import format_table

        print(f"\ncomparison ({comparison['protocol']}; F1 columns: cross-validated)")
        print(format_table(comparison["rows"]))
        shipped = comparison.get("shipped_model") or {}
        loso = shipped.get("savee_leave_one_speaker_out")
        if loso:
            print("shipped model on SAVEE, leave one speaker out: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in loso.items()))
    return 0


def bench(args) -> int:
    from emotion_sensing.speech.bench import bench_speech

    model = _model_path(args)
    if not model.exists():
        print(f"emobot bench speech: no voice model at {model}; run `emobot train speech`", file=sys.stderr)
        return 2
    result: Dict[str, Any] = bench_speech(model, log=_log)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    fc = result["featurise_classify_ms"]
    print(f"featurise + classify a {result['utterance_s']:g} s utterance on one core: "
          f"p50 {fc['p50']:.1f} ms, p95 {fc['p95']:.1f} ms (n={fc['n']}; target < {result['target_ms']} ms)")
    for block, ms in (result.get("block_ms") or {}).items():
        print(f"  {block:<8} alone: p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms")
    for block, ms in (result.get("extra_block_ms") or {}).items():
        print(f"  {block:<8} alone: p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms (extra block: the comparison's, not the shipped model's)")
    memory = result.get("memory_mb") or {}
    if memory.get("added") is not None:
        print(f"memory: the model and its feature extractors add {memory['added']:.0f} MB to the process "
              f"({memory['before']:.0f} -> {memory['warm']:.0f} MB)")
    t: Optional[Dict[str, Any]] = result.get("transcript_ms")
    if t:
        print(f"transcript ({result['transcript_engine']}, {result['transcript_audio_s']:.1f} s of speech): "
              f"p50 {t['p50']:.0f} ms (n={t['n']})")
    return 0
