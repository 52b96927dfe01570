"""Compare, ship and measure voice emotion classifiers (``emobot train|eval speech``).

Protocol, speaker-independent throughout (no speaker is ever in both training and test):

- RAVDESS actors 19-24 are the **test speakers**: used for no choice, only to measure.
- Every candidate (feature blocks x classifier) is compared by a k-fold cross-validation
  **by actor** over actors 1-18 (6 folds of 3 actors), then trained on actors 1-18 and measured
  on actors 19-24 and, **cross-corpus**, on SAVEE (4 British male speakers it never heard).
- The shipped candidate is the best by the mean of its cross-validated and its cross-corpus
  accuracy (cross-validated alone when SAVEE is absent): a candidate that wins on RAVDESS and
  loses on other speakers is not better. ComParE (vector.EXTRA_BLOCKS) competes like the other
  blocks; its augmented copies are extracted only if a candidate reading it is shipped.
- The shipped model is then trained on actors 1-18 and SAVEE (with augmented copies, see
  conditions.py), its temperature fitted on out-of-fold predictions of the training speakers
  (6 RAVDESS folds + each SAVEE speaker: the SAVEE folds are its leave-one-speaker-out figure).

Utterance vectors are standardised per speaker (speaker.py); the figures name how
(:data:`MODES`): ``speaker`` (statistics from all the speaker's clips, as after a few minutes of a
session), ``running`` (clips in a random order, each with the clips heard so far), ``none``
(population prior only), ``after0``/``after3``/``after10`` (a live session after N earlier
utterances of the speaker: the clip itself plus N others) and ``pooled`` (one normaliser over
all clips: no speaker identities at all).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.evaluation import evaluate
from emotion_sensing.labels import LABELS
from emotion_sensing.speech.datasets import SetFeatures, SpeechSet, extract, load_ravdess, load_savee, usable_rows
from emotion_sensing.speech.model import (
    CLASSIFIERS,
    MODEL_FILE,
    SEQUENCE_MODEL,
    Expert,
    VoiceModel,
    build_classifier,
    build_expert,
)
from emotion_sensing.speech.speaker import SpeakerPrior, SpeakerStats, standardise_by_speaker, standardise_running
from emotion_sensing.speech.vector import BLOCKS, EXTRA_BLOCKS, columns, layout

Printer = Callable[[str], None]
TEST_SPEAKERS = tuple(f"Actor_{n:02d}" for n in range(19, 25))
FOLDS = 6
MODES = ("speaker", "running", "none")
CURVE = (0, 3, 10)
CROSS_MODES = ("speaker", "pooled", *(f"after{n}" for n in CURVE))
EXPERTS = "experts"
# Augmented copies of every training clip (conditions.py), measured to help (card).
AUGMENT = ("noise10", "telephone")
# How many utterances the population prior counts as in a session's statistics: chosen on the
# validation speakers by the accuracy of a session's early utterances (train.py, _ship).
PRIOR_WEIGHTS = (0.5, 1.0, 2.0, 3.0)
COMPARISON_FILE = "speech_emotion.comparison.json"


def actor_folds(speakers: Sequence[str], k: int = FOLDS) -> np.ndarray:
    """Fold index per clip: sorted speakers in k consecutive groups (RAVDESS alternates
    male and female actors, so each group holds both)."""
    names = sorted(set(speakers))
    if len(names) < k:
        raise ValueError(f"{len(names)} speakers cannot make {k} speaker-independent folds")
    group = {name: i * k // len(names) for i, name in enumerate(names)}
    return np.array([group[s] for s in speakers])


def standardise_after(vectors: np.ndarray, speakers: Sequence[str], prior: SpeakerPrior, n: int,
                      seed: int = 0) -> np.ndarray:
    """Each clip standardised as a live session would after ``n`` earlier utterances of its
    speaker: statistics of ``n`` other clips of that speaker (drawn at random) and the clip itself."""
    speakers = np.asarray(speakers)
    rng = np.random.default_rng(seed)
    out = np.empty_like(vectors, dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = np.flatnonzero(speakers == speaker)
        for row in rows:
            others = rows[rows != row]
            earlier = rng.choice(others, size=min(n, others.size), replace=False) if n and others.size else []
            stats = SpeakerStats(prior).extend(vectors[earlier])
            stats.update(vectors[row])
            out[row] = stats.standardise(vectors[row])
    return out


def standardise(vectors: np.ndarray, speakers: Sequence[str], prior: SpeakerPrior, mode: str) -> np.ndarray:
    """Utterance vectors standardised per speaker in one of :data:`MODES` or :data:`CROSS_MODES`."""
    if mode == "speaker":
        return standardise_by_speaker(vectors, speakers, prior)
    if mode == "running":
        return standardise_running(vectors, speakers, prior)
    if mode == "none":
        return SpeakerStats(prior).standardise(vectors)
    if mode == "pooled":
        return standardise_by_speaker(vectors, ["all"] * len(vectors), prior)
    if mode.startswith("after"):
        return standardise_after(vectors, speakers, prior, int(mode[len("after"):]))
    raise ValueError(mode)


def fit(name: str, vectors: np.ndarray, labels: Sequence[str], speakers: Sequence[str],
        prune_deg: Optional[float] = None, seed: int = 0, blocks: Optional[Sequence[str]] = None,
        augmented: Sequence[Tuple[np.ndarray, Sequence[str], Sequence[str]]] = ()) -> VoiceModel:
    """A VoiceModel trained on these speakers (each standardised with their own statistics).

    ``name`` is one of :data:`CLASSIFIERS` over the whole vector, or :data:`EXPERTS`: one
    expert per feature block of ``blocks``. ``augmented`` adds (vectors, labels, speakers) of
    degraded copies, each standardised with its own speaker-and-condition statistics, as a
    session on that microphone would be; the prior comes from the clean clips only.
    """
    prior = SpeakerPrior.fit(vectors, speakers)
    x = standardise_by_speaker(vectors, speakers, prior)
    y = np.asarray(labels)
    if augmented:
        x = np.vstack([x, *(standardise_by_speaker(v, s, prior) for v, _, s in augmented)])
        y = np.concatenate([y, *(np.asarray(lab) for _, lab, _ in augmented)])
    blocks = tuple(blocks or ("librosa",))
    if name == EXPERTS:
        where = layout(blocks)
        experts = [Expert((block,), build_expert(seed).fit(x[:, where[block]], y)) for block in blocks]
        return VoiceModel(experts, prior, {"classifier": EXPERTS, "pruned": None}, blocks=blocks)
    pipeline = build_classifier(name, seed=seed)
    meta: Dict[str, Any] = {"classifier": name, "pruned": None}
    if prune_deg is not None:
        from emotion_sensing.speech.prune import train_pruned_mlp

        report = train_pruned_mlp(pipeline, x, y, similar_deg=prune_deg, opposite_deg=180.0 - prune_deg)
        meta["pruned"] = {"similar_deg": prune_deg, "opposite_deg": 180.0 - prune_deg, **report.to_dict()}
    else:
        pipeline.fit(x, y)
    return VoiceModel(pipeline, prior, meta, blocks=blocks)


def predict(model: VoiceModel, vectors: np.ndarray, speakers: Sequence[str], mode: str) -> List[str]:
    probs = model.probabilities(standardise(vectors, speakers, model.prior, mode))
    return [LABELS[i] for i in probs.argmax(axis=1)]


def cross_validate(
    name: str, vectors: np.ndarray, labels: Sequence[str], speakers: Sequence[str], folds: np.ndarray,
    prune_deg: Optional[float] = None, blocks: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    """Pooled out-of-fold predictions of one classifier in every mode, and what pruning kept."""
    labels = np.asarray(labels)
    speakers = np.asarray(speakers)
    predicted = {mode: np.empty(len(labels), dtype=object) for mode in MODES}
    kept = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        model = fit(name, vectors[train], labels[train], speakers[train], prune_deg=prune_deg, blocks=blocks)
        if model.meta["pruned"]:
            kept.append(model.meta["pruned"]["hidden_after"])
        for mode in MODES:
            predicted[mode][test] = predict(model, vectors[test], speakers[test], mode)
    result = {mode: evaluate(list(labels), list(predicted[mode])) for mode in MODES}
    if kept:
        result["hidden_units_kept"] = float(np.mean(kept))
    return result


def candidates(classifiers: Sequence[str], prune_degrees: Sequence[float] = (),
               extra_blocks: Sequence[str] = ()) -> List[Tuple[str, str, Tuple[str, ...], Optional[float]]]:
    """(label, classifier, feature blocks, pruning angle) of every candidate compared: each block
    alone with logistic regression and the SVC, every classifier on all blocks, the product of
    per-block experts; then each of ``extra_blocks`` (vector.EXTRA_BLOCKS) alone and beside all blocks,
    with logistic regression and the SVC."""
    rows = []
    for block in BLOCKS:
        rows += [(f"{name} [{block}]", name, (block,), None) for name in ("logreg", "svc") if name in classifiers]
    rows += [(f"{name} [all]", name, BLOCKS, None) for name in classifiers]
    rows += [(f"mlp-pruned-{deg:g}° [all]", "mlp", BLOCKS, deg) for deg in prune_degrees]
    rows.append((f"{EXPERTS} [{'|'.join(BLOCKS)}]", EXPERTS, BLOCKS, None))
    for block in extra_blocks:
        linear = [name for name in ("logreg", "svc") if name in classifiers]
        rows += [(f"{name} [{block}]", name, (block,), None) for name in linear]
        rows += [(f"{name} [all+{block}]", name, (*BLOCKS, block), None) for name in linear]
    return rows


def _row(label: str, name: str, blocks: Sequence[str], cv: Dict[str, Any], test: Optional[Dict[str, Any]],
         cross: Optional[Dict[str, float]], seconds: float) -> Dict[str, Any]:
    speaker = cv["speaker"]
    row = {
        "classifier": label,
        "model": name,
        "features": list(blocks),
        "description": CLASSIFIERS.get(name, "one logistic regression per feature block, log-probabilities summed"),
        "f1": {label_: speaker["per_class"][label_]["f1"] for label_ in LABELS},
        "cv_accuracy": speaker["accuracy"],
        "cv_macro_f1": speaker["macro_f1"],
        "cv_accuracy_running": cv.get("running", {}).get("accuracy"),
        "cv_accuracy_none": cv.get("none", {}).get("accuracy"),
        "test_accuracy": test["accuracy"] if test else None,
        "savee": cross,
        "hidden_units_kept": cv.get("hidden_units_kept"),
        "seconds": round(seconds, 1),
    }
    row["score"] = row["cv_accuracy"] if not cross else round((row["cv_accuracy"] + cross["speaker"]) / 2, 4)
    return row


def format_table(rows: Sequence[Dict[str, Any]], markdown: bool = False) -> str:
    """The comparison table: per-class F1 (cross-validated, speaker mode) and accuracies."""
    heads = ["candidate", *LABELS, "CV acc", "CV acc running", "CV acc no stats", "test acc",
             "SAVEE acc", "SAVEE no speakers"]

    def cell(value: Any) -> str:
        return "—" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = []
    for row in rows:
        cross = row.get("savee") or {}
        lines.append([row["classifier"], *(row["f1"][label] for label in LABELS), row["cv_accuracy"],
                      row["cv_accuracy_running"], row["cv_accuracy_none"], row["test_accuracy"],
                      cross.get("speaker"), cross.get("pooled")])
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
        out += ["| " + " | ".join(cell(v) for v in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(heads[i]), *(len(cell(line[i])) for line in lines)) for i in range(len(heads))]
    out = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(heads, widths)))]
    for line in lines:
        out.append("  ".join(cell(v).rjust(w) if i else cell(v).ljust(w) for i, (v, w) in enumerate(zip(line, widths))))
    return "\n".join(out)


def split_test(dataset: SpeechSet, test_speakers: Sequence[str] = TEST_SPEAKERS) -> np.ndarray:
    """Mask of the clips spoken by the test speakers."""
    return np.isin(np.asarray(dataset.speakers), list(test_speakers))


@dataclass
class ProtocolRows:
    """RAVDESS's clips then SAVEE's, stacked in that order, with the cross-corpus protocol's masks
    (each only over usable rows): ``train`` RAVDESS actors outside TEST_SPEAKERS, ``test`` the
    test actors, ``savee`` every SAVEE clip."""

    labels: np.ndarray
    speakers: np.ndarray
    train: np.ndarray
    test: np.ndarray
    savee: np.ndarray


def protocol_rows(ravdess: SpeechSet, savee: SpeechSet, usable: Optional[np.ndarray] = None) -> ProtocolRows:
    """The rows of a RAVDESS-then-SAVEE feature matrix; ``usable`` (default all) drops clips
    with no vector (no speech found)."""
    labels = np.array(list(ravdess.labels) + list(savee.labels))
    speakers = np.array(list(ravdess.speakers) + list(savee.speakers))
    usable = np.ones(len(labels), bool) if usable is None else np.asarray(usable, bool)
    in_savee = np.arange(len(labels)) >= len(ravdess.labels)
    tested = np.isin(speakers, TEST_SPEAKERS)
    return ProtocolRows(labels, speakers, usable & ~in_savee & ~tested, usable & ~in_savee & tested, usable & in_savee)


def accuracy_by_mode(model: VoiceModel, vectors: np.ndarray, labels: Sequence[str], speakers: Sequence[str],
                     modes: Sequence[str] = CROSS_MODES) -> Dict[str, float]:
    labels = np.asarray(labels)
    return {mode: round(float(np.mean(np.asarray(predict(model, vectors, speakers, mode)) == labels)), 4)
            for mode in modes}


def train_speech(
    datasets_dir: Path,
    models_dir: Path,
    classifiers: Sequence[str] = tuple(CLASSIFIERS),
    sequence_model: bool = True,
    lstm_epochs: int = 30,
    prune_degrees: Sequence[float] = (),
    folds: int = FOLDS,
    augment: Sequence[str] = AUGMENT,
    log: Printer = print,
    extra_blocks: Sequence[str] = EXTRA_BLOCKS,
) -> Dict[str, Any]:
    """Run the comparison, ship the best candidate with its card; returns the comparison.
    ``extra_blocks`` (ComParE by default): blocks compared alone and beside all of BLOCKS."""
    from threadpoolctl import threadpool_limits

    # One thread per native pool: scikit-learn's OpenMP pools (gradient boosting) slow down
    # some twentyfold when another job shares the cores, and the classifiers here are small.
    with threadpool_limits(1):
        return _train_speech(Path(datasets_dir), Path(models_dir), classifiers, sequence_model, lstm_epochs,
                             prune_degrees, folds, tuple(augment), log, tuple(extra_blocks))


@dataclass
class _Corpus:
    dataset: SpeechSet
    features: SetFeatures
    augmented: Dict[str, SetFeatures]
    extra_blocks: Tuple[str, ...] = ()
    log: Printer = print
    # Vectors of the extra blocks per condition, extracted when first asked for.
    _extra: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def within(self) -> Tuple[str, ...]:
        return (*BLOCKS, *self.extra_blocks)

    def vectors(self, condition: str = "clean", extra: bool = True) -> np.ndarray:
        """Vectors of BLOCKS, then (``extra``) of the extra blocks, of every clip under ``condition``
        (NaN rows where a clip holds no speech)."""
        base = (self.features if condition == "clean" else self.augmented[condition]).vectors
        if not (extra and self.extra_blocks):
            return base
        if condition not in self._extra:
            self.log(f"{self.dataset.name}: features {'+'.join(self.extra_blocks)}"
                     + ("" if condition == "clean" else f", {condition}") + " (cached after the first run)")
            self._extra[condition] = extract(self.dataset, log=self.log, blocks=self.extra_blocks,
                                             condition=condition).vectors
        return np.hstack([base, self._extra[condition]])

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.dataset.labels)

    @property
    def speakers(self) -> np.ndarray:
        return np.asarray(self.dataset.speakers)


def _load(dataset: SpeechSet, augment: Sequence[str], log: Printer, extra_blocks: Sequence[str] = ()) -> _Corpus:
    log(f"{dataset.name}: {len(dataset)} clips of {len(set(dataset.speakers))} speakers; "
        f"features {'+'.join(BLOCKS)} (cached after the first run)")
    features = extract(dataset, log=log, blocks=BLOCKS)
    augmented = {c: extract(dataset, log=log, blocks=BLOCKS, condition=c) for c in augment}
    return _Corpus(dataset, features, augmented, tuple(extra_blocks), log)


def _augmented(corpus: _Corpus, rows: np.ndarray, extra: bool = False) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for condition in corpus.augmented:
        vectors = corpus.vectors(condition, extra)
        keep = rows & usable_rows(vectors)
        out.append((vectors[keep], corpus.labels[keep], corpus.speakers[keep]))
    return out


def _train_speech(datasets_dir, models_dir, classifiers, sequence_model, lstm_epochs, prune_degrees, folds,
                  augment, log, extra_blocks=()):
    ravdess = _load(load_ravdess(datasets_dir), augment, log, extra_blocks)
    try:
        savee: Optional[_Corpus] = _load(load_savee(datasets_dir), augment, log, extra_blocks)
    except FileNotFoundError as error:
        log(f"no cross-corpus figures and SAVEE not in training: {error}")
        savee = None
    x, labels, speakers = ravdess.vectors(), ravdess.labels, ravdess.speakers
    usable = usable_rows(x)
    if (~usable).any():
        log(f"  {int((~usable).sum())} silent RAVDESS clips left out")
    test = split_test(ravdess.dataset) & usable
    dev = ~split_test(ravdess.dataset) & usable
    fold_of = actor_folds(list(speakers[dev]), folds)
    log(f"cross-validation by actor over {dev.sum()} clips of {len(set(speakers[dev]))} actors "
        f"({folds} folds); test: {test.sum()} clips of actors {TEST_SPEAKERS[0]}..{TEST_SPEAKERS[-1]}"
        + (f"; cross-corpus: SAVEE, {int(savee.features.usable.sum())} clips" if savee else ""))

    savee_x = savee.vectors() if savee is not None else None
    savee_ok = usable_rows(savee_x) if savee_x is not None else None
    rows: List[Dict[str, Any]] = []
    for label, name, blocks, deg in candidates(classifiers, prune_degrees, extra_blocks):
        started = time.time()
        cols = columns(blocks, ravdess.within)
        cv = cross_validate(name, x[dev][:, cols], labels[dev], speakers[dev], fold_of, prune_deg=deg, blocks=blocks)
        model = fit(name, x[dev][:, cols], labels[dev], speakers[dev], prune_deg=deg, blocks=blocks)
        held_out = evaluate(list(labels[test]), predict(model, x[test][:, cols], speakers[test], "speaker"))
        cross = None
        if savee is not None:
            cross = accuracy_by_mode(model, savee_x[savee_ok][:, cols], savee.labels[savee_ok],
                                     savee.speakers[savee_ok])
        row = _row(label, name, blocks, cv, held_out, cross, time.time() - started)
        if deg is not None:
            row["hidden_units_shipped_fit"] = model.meta["pruned"]["hidden_after"]
            row["prune_deg"] = deg
        rows.append(row)
        log(f"  {label:<34} CV {row['cv_accuracy']:.3f} (running {row['cv_accuracy_running']:.3f}, "
            f"no stats {row['cv_accuracy_none']:.3f}), test {held_out['accuracy']:.3f}"
            + (f", SAVEE {cross['speaker']:.3f} (no speakers {cross['pooled']:.3f})" if cross else "")
            + f"  ({row['seconds']:.0f} s)")
    if sequence_model:
        rows.append(_lstm_row(ravdess.features.mfcc, labels, speakers, dev, test, fold_of, lstm_epochs, log))

    best = max((r for r in rows if r["model"] != SEQUENCE_MODEL), key=lambda r: r["score"])
    rule = "mean of cross-validated and cross-corpus (SAVEE) accuracy" if savee else "cross-validated accuracy"
    log(f"best by {rule}: {best['classifier']} ({best['score']:.3f}); training it on every training speaker")
    model, shipped = _ship(best, ravdess, savee, dev, fold_of, augment, log)
    path = Path(models_dir) / MODEL_FILE
    model.save(path)
    comparison = {
        "dataset": "ravdess" + (" + savee" if savee else ""),
        "protocol": f"{folds}-fold cross-validation by actor over actors 01-18; test on actors 19-24"
                    + ("; cross-corpus: trained on actors 01-18, tested on SAVEE" if savee else ""),
        "selection": rule,
        "rows": rows,
        "shipped": best["classifier"],
        "shipped_model": shipped,
    }
    (Path(models_dir) / COMPARISON_FILE).write_text(json.dumps(comparison, indent=2) + "\n")
    log("\n" + format_table(rows))
    log(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB) and {Path(models_dir) / COMPARISON_FILE}")
    return comparison


def _ship(best: Dict[str, Any], ravdess: _Corpus, savee: Optional[_Corpus], dev: np.ndarray, fold_of: np.ndarray,
          augment: Sequence[str], log: Printer) -> Tuple[VoiceModel, Dict[str, Any]]:
    """The shipped model: ``best`` trained on RAVDESS's development actors and SAVEE (with
    augmented copies), its temperature fitted on out-of-fold scores of those speakers."""
    from emotion_sensing.calibration import calibration_report, fit_temperature

    name, blocks, deg = best["model"], tuple(best["features"]), best.get("prune_deg")
    extra = bool(set(blocks) - set(BLOCKS))
    cols = columns(blocks, ravdess.within if extra else BLOCKS)
    parts = [(ravdess, dev)] + ([(savee, usable_rows(savee.vectors(extra=extra)))] if savee else [])
    x = np.vstack([c.vectors(extra=extra)[rows][:, cols] for c, rows in parts])
    labels = np.concatenate([c.labels[rows] for c, rows in parts])
    speakers = np.concatenate([c.speakers[rows] for c, rows in parts])
    corpus = np.concatenate([[c.dataset.name] * int(rows.sum()) for c, rows in parts])
    aug = [(v[:, cols], lab, spk) for c, rows in parts for v, lab, spk in _augmented(c, rows, extra)]
    # Folds: RAVDESS's by actor, then one per SAVEE speaker (leave-one-speaker-out).
    folds = np.concatenate([fold_of] + ([FOLDS + np.unique(speakers[corpus == "savee"], return_inverse=True)[1]]
                                        if savee else []))
    scores = np.zeros((len(labels), len(LABELS)))
    fold_models: Dict[int, VoiceModel] = {}
    # Accuracy of a session's early utterances (after 3 and 10), clean and degraded, per prior weight.
    early: Dict[float, List[float]] = {w: [] for w in PRIOR_WEIGHTS}
    for fold in np.unique(folds):
        train, held = folds != fold, folds == fold
        out = [~np.isin(spk, speakers[held]) for _, _, spk in aug]
        keep = [(v[o], lab[o], spk[o]) for (v, lab, spk), o in zip(aug, out)]
        model = fit(name, x[train], labels[train], speakers[train], prune_deg=deg, blocks=blocks, augmented=keep)
        fold_models[int(fold)] = model
        scores[held] = model.log_scores(standardise(x[held], speakers[held], model.prior, "speaker"))
        held_sets = [(x[held], labels[held], speakers[held])]
        held_sets += [(v[~o], lab[~o], spk[~o]) for (v, lab, spk), o in zip(aug, out) if (~o).any()]
        for weight in PRIOR_WEIGHTS:
            model.prior = dataclasses.replace(model.prior, weight=weight)
            for v, lab, spk in held_sets:
                for mode in ("after3", "after10"):
                    early[weight].append(float(np.mean(np.asarray(predict(model, v, spk, mode)) == lab)))
        log(f"  validation fold {fold}: {', '.join(sorted(set(speakers[held])))[:60]} accuracy "
            f"{np.mean(np.asarray(predict(model, x[held], speakers[held], 'speaker')) == labels[held]):.3f}")
    # Ties (within rounding) go to the larger weight: the steadier first utterance.
    prior_weight = max(PRIOR_WEIGHTS, key=lambda w: (round(float(np.mean(early[w])), 3), w))
    log("prior weight (early-session accuracy on validation speakers, clean and augmented): "
        + ", ".join(f"{w:g}: {np.mean(early[w]):.3f}" for w in PRIOR_WEIGHTS) + f"; using {prior_weight:g}")
    by_mode: Dict[str, np.ndarray] = {mode: np.empty(len(labels), dtype=object) for mode in CROSS_MODES}
    for fold, model in fold_models.items():
        held = folds == fold
        model.prior = dataclasses.replace(model.prior, weight=prior_weight)
        for mode in CROSS_MODES:
            by_mode[mode][held] = predict(model, x[held], speakers[held], mode)
    truth = np.array([LABELS.index(label) for label in labels])
    temperature = fit_temperature(scores, truth)
    calibration = calibration_report(scores, truth, temperature)
    log(f"temperature {temperature:.3f}: ECE on validation speakers {calibration['ece_before']:.4f} -> "
        f"{calibration['ece_after']:.4f}")
    shipped: Dict[str, Any] = {
        "candidate": best["classifier"],
        "prior_weight": prior_weight,
        "prior_weight_choice": {f"{w:g}": round(float(np.mean(early[w])), 4) for w in PRIOR_WEIGHTS},
        "augment": list(augment),
        "calibration": calibration,
        "validation_accuracy": {
            corpus_name: round(float(np.mean(np.asarray(by_mode["speaker"][corpus == corpus_name])
                                             == labels[corpus == corpus_name])), 4)
            for corpus_name in np.unique(corpus)
        },
    }
    if savee is not None:
        on = corpus == "savee"
        # One speaker per fold: "pooled" would equal "speaker", so it is left out here.
        shipped["savee_leave_one_speaker_out"] = {
            mode: round(float(np.mean(np.asarray(by_mode[mode][on]) == labels[on])), 4)
            for mode in CROSS_MODES if mode != "pooled"
        }
        shipped["savee_leave_one_speaker_out_result"] = evaluate(list(labels[on]), list(by_mode["speaker"][on]))
    model = fit(name, x, labels, speakers, prune_deg=deg, blocks=blocks, augmented=aug)
    model.temperature = temperature
    model.prior = dataclasses.replace(model.prior, weight=prior_weight)
    model.meta.update(
        label=best["classifier"],
        feature_version=_feature_version(),
        train_speakers=sorted(set(speakers)),
        test_speakers=list(TEST_SPEAKERS),
        train_clips=int(len(labels)),
        train_corpora=sorted(set(corpus)),
        augment=list(augment),
        cv_accuracy=best["cv_accuracy"],
        calibration=calibration,
    )
    return model, shipped


def _feature_version() -> int:
    from emotion_sensing.speech.features import FEATURE_VERSION
    from emotion_sensing.speech.vector import VECTOR_VERSION

    return FEATURE_VERSION * 1000 + VECTOR_VERSION


def _lstm_row(frames, labels, speakers, dev, test, fold_of, epochs, log) -> Dict[str, Any]:
    from emotion_sensing.speech.sequence import cross_validate_lstm

    started = time.time()
    dev_idx = np.flatnonzero(dev)
    predicted = cross_validate_lstm([frames[i] for i in dev_idx], labels[dev], speakers[dev], fold_of, epochs, log)
    cv = {"speaker": evaluate(list(labels[dev]), list(predicted))}
    # Trained on all development actors, measured on the test actors.
    both = np.flatnonzero(dev | test)
    groups = np.where(test[both], 1, 0)
    held = cross_validate_lstm([frames[i] for i in both], labels[both], speakers[both], groups, epochs, test_folds=[1])
    held_out = evaluate(list(labels[both][groups == 1]), list(held[groups == 1]))
    row = _row(SEQUENCE_MODEL, SEQUENCE_MODEL, ("mfcc frames",), cv, held_out, None, time.time() - started)
    row["description"] = f"LSTM({64}) over 40 MFCCs per frame (TensorFlow, {epochs} epochs)"
    log(f"  {SEQUENCE_MODEL:<34} CV {row['cv_accuracy']:.3f}, test {held_out['accuracy']:.3f}  "
        f"({row['seconds']:.0f} s)")
    return row


def out_of_fold_probabilities(datasets_dir: Path, model: VoiceModel, folds: int = FOLDS,
                              log: Optional[Printer] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities of RAVDESS's training actors by models that never heard them, for
    fitting what sits on top of the voice model (fusion) on speakers it did not train on.

    The shipped model's recipe (classifier, feature blocks, augmentation, prior weight and
    temperature) is refitted ``folds`` times by actor over the RAVDESS actors it trained on, each
    fold's actors read by the model trained on the others and standardised with their own clips.
    The fold models train on RAVDESS alone (not SAVEE) and without pruning, so they are a little
    weaker than the shipped model. Returns (probabilities over LABELS, true labels) of the usable clips.
    """
    from threadpoolctl import threadpool_limits

    dataset = load_ravdess(Path(datasets_dir))
    speakers = np.asarray(dataset.speakers)
    labels = np.asarray(dataset.labels)
    trained = set(model.meta.get("train_speakers") or []) - set(model.meta.get("test_speakers") or TEST_SPEAKERS)
    features = extract(dataset, log=log, blocks=model.blocks)
    rows = np.isin(speakers, sorted(trained)) & features.usable
    if not rows.any():
        raise ValueError("the voice model names no RAVDESS training actors: retrain it (emobot train speech)")
    augmented = [extract(dataset, log=log, blocks=model.blocks, condition=c) for c in model.meta.get("augment") or ()]
    fold_of = actor_folds(list(speakers[rows]), folds)
    x, y, spk = features.vectors[rows], labels[rows], speakers[rows]
    probs = np.zeros((int(rows.sum()), len(LABELS)))
    with threadpool_limits(1):
        for fold in np.unique(fold_of):
            train, held = fold_of != fold, fold_of == fold
            held_speakers = set(spk[held])
            aug = []
            for f in augmented:
                keep = rows & f.usable & ~np.isin(speakers, sorted(held_speakers))
                aug.append((f.vectors[keep], labels[keep], speakers[keep]))
            fold_model = _refit(model, x[train], y[train], spk[train], aug)
            probs[held] = fold_model.probabilities(standardise(x[held], spk[held], fold_model.prior, "speaker"))
            if log:
                log(f"  voice fold {fold + 1}/{len(np.unique(fold_of))}: {', '.join(sorted(held_speakers))} "
                    f"accuracy {np.mean(probs[held].argmax(axis=1) == [LABELS.index(v) for v in y[held]]):.3f}")
    return probs, y


def _refit(model: VoiceModel, x: np.ndarray, y: np.ndarray, speakers: np.ndarray,
           augmented: Sequence[Tuple[np.ndarray, Sequence[str], Sequence[str]]]) -> VoiceModel:
    """``model``'s recipe (classifier, blocks, prior weight, temperature) fitted on these clips, unpruned."""
    refitted = fit(model.meta.get("classifier", "mlp"), x, y, speakers, blocks=model.blocks, augmented=augmented)
    refitted.prior = dataclasses.replace(refitted.prior, weight=model.prior.weight)
    refitted.temperature = model.temperature
    return refitted


def ravdess_only(datasets_dir: Path, model: VoiceModel, log: Optional[Printer] = None) -> VoiceModel:
    """The shipped model's recipe refitted on its RAVDESS training actors alone (with its
    augmentation, without SAVEE, unpruned): a voice model that never heard SAVEE, for measuring
    what sits on top of the voice model (fusion) on another corpus."""
    from threadpoolctl import threadpool_limits

    dataset = load_ravdess(Path(datasets_dir))
    speakers, labels = np.asarray(dataset.speakers), np.asarray(dataset.labels)
    trained = set(model.meta.get("train_speakers") or []) - set(model.meta.get("test_speakers") or TEST_SPEAKERS)
    features = extract(dataset, log=log, blocks=model.blocks)
    rows = np.isin(speakers, sorted(trained)) & features.usable
    if not rows.any():
        raise ValueError("the voice model names no RAVDESS training actors: retrain it (emobot train speech)")
    aug = []
    for condition in model.meta.get("augment") or ():
        f = extract(dataset, log=log, blocks=model.blocks, condition=condition)
        keep = rows & f.usable
        aug.append((f.vectors[keep], labels[keep], speakers[keep]))
    with threadpool_limits(1):
        return _refit(model, features.vectors[rows], labels[rows], speakers[rows], aug)
