"""models/speech_emotion.md: the shipped voice model's card, written by ``emobot train speech``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from emotion_sensing.speech.features import N_FEATURES
from emotion_sensing.speech.model import CARD_FILE, CLASSIFIERS, MODEL_FILE, VoiceModel
from emotion_sensing.speech.train import format_table


def _confusion(result: Dict[str, Any]) -> str:
    labels = result["labels"]
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, result["confusion"]):
        if sum(row):
            lines.append(f"| **{label}** | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def _pruning(comparison: Dict[str, Any]) -> str:
    rows = [r for r in comparison["rows"] if r["classifier"].startswith("mlp-pruned") or r["classifier"] == "mlp"]
    if not any(r["classifier"].startswith("mlp-pruned") for r in rows):
        return "Not run for this model (`emobot train speech --prune 15,30,45,60` runs it).\n"
    lines = ["| network | hidden units kept (mean over folds) | CV accuracy | test accuracy |", "|---|---|---|---|"]
    untouched = []
    for r in rows:
        kept = r.get("hidden_units_kept") or 256
        lines.append(f"| {r['classifier']} | {kept:.0f} of 256 | {r['cv_accuracy']:.3f} | {r['test_accuracy']:.3f} |")
        if r["classifier"] != "mlp" and kept >= 256:
            untouched.append(r["classifier"].rsplit("-", 1)[-1])
    note = ""
    if untouched:
        note = (f"\nAt {', '.join(untouched)} nothing was pruned: after one epoch the hidden units' output "
                "vectors are still nearly orthogonal, so no pair is that close to the same or the opposite "
                "direction. (A pruned row with all units differs from `mlp` only by its restart after the "
                "first epoch.)\n")
    return "\n".join(lines) + "\n" + note


def write_card(models_dir: Path, comparison: Dict[str, Any], evaluation: Dict[str, Any]) -> Path:
    """Write the card from the comparison and the held-out evaluation; returns its path."""
    models_dir = Path(models_dir)
    model = VoiceModel.load(models_dir / MODEL_FILE)
    meta = model.meta
    size = (models_dir / MODEL_FILE).stat().st_size
    shipped = meta.get("label", meta.get("classifier"))
    pruned = meta.get("pruned")
    pruned_text = (
        f"yes: distinctiveness pruning at {pruned['similar_deg']:g}° / {pruned['opposite_deg']:g}° kept "
        f"{pruned['hidden_after']} of {pruned['hidden_before']} hidden units"
        if pruned else "no"
    )
    by_mode = evaluation["accuracy_by_normalisation"]
    per_class = "\n".join(
        f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        for label, row in evaluation["per_class"].items() if row["support"]
    )
    description = CLASSIFIERS.get(meta.get("classifier", ""), meta.get("classifier"))
    card = f"""# Model card: voice emotion classifier (`{MODEL_FILE}`)

A scikit-learn pipeline (standard scaler + {description}) over a {N_FEATURES}-value utterance
vector of librosa features (emotion_sensing/speech/features.py: MFCCs 0-39 with deltas,
chroma, log-mel spectrum, RMS energy, 2nd-order polynomial spectral fit, spectral centroid,
bandwidth and roll-off, zero-crossing rate; mean and standard deviation over the voiced
frames), each vector first **standardised per speaker** (speech/speaker.py). The bundle
also holds the population prior for that standardisation (the training actors' mean vector
and average within-speaker variance). Output: probabilities over the 7 canonical labels.

- **Shipped classifier:** `{shipped}`, the best of the comparison below by cross-validated accuracy.
- **Pruned:** {pruned_text}.
- **Size:** {size / 1e6:.2f} MB on disk (joblib, compressed).
- **Speed:** see `emobot bench speech` (featurise + classify a 3 s utterance on one core).

## Data and split

**RAVDESS** speech (Livingstone & Russo 2018; 24 professional actors, 12 female and 12 male,
two lexically matched sentences in a neutral North American accent; 1,440 clips, 16 kHz
FLAC as converted in `../shared/datasets/ravdess`). Labels mapped to the canonical seven:
neutral and **calm → neutral**, fearful → fear, surprised → surprise, the rest by name.
Licence **CC BY-NC-SA 4.0: non-commercial research use only**; a model trained on it
inherits that restriction.

Speaker-independent throughout, never a random file split:

- **Test speakers: actors 19-24** (360 clips). Used for no choice; only to measure.
- **Development: actors 1-18** (1,080 clips). The comparison is a {comparison['protocol'].split(' over')[0]}
  over them (3 actors per fold, each fold both male and female); the shipped classifier is the
  best by that figure, then trained on all 18 actors.

Hyper-parameters were set before the comparison, with a few checks on the development folds
only: SVC C in 1-30 (10 best), the MLP's weight decay, and the feature blocks (leaving out the
mel, chroma or delta blocks lowered the SVC's cross-validated accuracy; leaving out the
polynomial fit changed nothing, and it stays as part of the published feature set). Gradient
boosting runs 100 iterations: it is the slowest to train by far.

### Per-speaker standardisation

A speaker's voice differs more from another speaker's than from their own voice in another
emotion. Every feature is standardised with the speaker's own statistics (mean and variance
over their unlabelled clips), shrunk towards the population prior as if it were
{model.prior.weight:g} clips. In the service the speaker is the session: running statistics
are kept per session (`Session.extras`, numbers only) and updated with every utterance.
Three figures say what that buys:

| standardisation | meaning | accuracy on actors 19-24 |
|---|---|---|
| `speaker` | statistics from all of the speaker's clips (a session after a while) | **{by_mode['speaker']:.3f}** |
| `running` | clips in a random order, each with the statistics of the clips heard so far (a live session from its first utterance) | {by_mode['running']:.3f} |
| `none` | population prior only (one utterance of an unknown speaker, e.g. `emobot sense speech`) | {by_mode['none']:.3f} |

## Accuracy on the held-out actors

Measured by `emobot eval speech --json` (n = {evaluation['n']}, standardisation `speaker`):
accuracy **{evaluation['accuracy']:.4f}**, macro-F1 **{evaluation['macro_f1']:.4f}**.

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

{_confusion(evaluation)}

## Classifier comparison

F1 per class and accuracy from the cross-validation by actor over actors 1-18 (standardisation
`speaker`; `running` and `no stats` as above); `test acc` is each classifier trained on actors
1-18 and measured on actors 19-24. `lstm` is a sequence model (TensorFlow LSTM over 40 MFCCs
per voiced frame, per-speaker cepstral normalisation); it is not shipped, as it would make
TensorFlow a run-time dependency of the service. Also in `speech_emotion.comparison.json`.

{format_table(comparison['rows'], markdown=True)}

## Pruning by distinctiveness

An MLP (256 tanh hidden units) is trained for one epoch; pairs of hidden units whose output
vectors over the training clips are less than θ apart are merged (one removed, its outgoing
weights added to the other's), pairs more than 180° − θ apart (they cancel) are merged with
the weights subtracted; the smaller network is then retrained.

{_pruning(comparison)}
## Limits

- Acted emotion: 24 actors reading two sentences in a studio. Spontaneous speech over a
  laptop microphone is harder; expect less.
- The per-speaker statistics assume the speaker's utterances span their emotional range, as
  each RAVDESS actor's do (every emotion equally often). A session that is all one emotion
  pulls its own mean towards that emotion, which the standardisation then partly removes.
- English only; "calm" and "neutral" are one label.

## Retrain

```bash
.venv/bin/emobot train speech --data ../shared/datasets --prune 15,30,45,60   # writes models/speech_emotion.* and this card
.venv/bin/emobot eval speech --data ../shared/datasets --json
.venv/bin/emobot bench speech --json
```
"""
    path = models_dir / CARD_FILE
    path.write_text(card)
    return path
