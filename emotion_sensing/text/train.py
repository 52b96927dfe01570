"""Reproduce and measure the shipped text emotion model (``emobot train|eval text``).

The model: the all-MiniLM-L6-v2 sentence encoder with low-rank adapters and a head
(encoder.py, finetune.py), trained on three corpora together — dair-ai emotion (tweets),
GoEmotions-Ekman (Reddit comments) and DailyDialog (everyday two-person dialogue) — with its
temperature fitted on their validation splits. ``cross_corpus`` trains the same recipe on two
corpora and tests on the third, beside the TF-IDF model the project shipped before, to show how
the model holds up on text it never saw.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.calibration import (
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from emotion_sensing.evaluation import evaluate, micro_f1_emotions
from emotion_sensing.labels import LABELS, VALENCE
from emotion_sensing.text.datasets import (
    CURIOSITY,
    TextSplit,
    load_dailydialog,
    load_dair,
    load_goemotions_ekman,
)

Printer = Callable[[str], None]

MODEL_FILE = "text_emotion.npz"
RESULT_FILE = "text_emotion.results.json"
TEXT_LABELS = (*LABELS, CURIOSITY)
CORPORA = ("dair_emotion", "goemotions", "dailydialog")
# Split names per corpus: (train, validation, test).
SPLITS = {"dair_emotion": ("train", "val", "test"), "goemotions": ("train", "dev", "test"),
          "dailydialog": ("train", "validation", "test")}
# What a "curiosity" answer counts as when scored against a corpus's labels: GoEmotions'
# Ekman grouping (and dair, which has no neutral) file curiosity under surprise; in dialogue,
# and at run time, a question is no emotion.
CURIOSITY_AS = {"dair_emotion": "surprise", "goemotions": "surprise", "dailydialog": "neutral", "manifest": "neutral"}
# DailyDialog is 83% "no emotion", and every one of those rows is kept: with 30,000 of its
# 72,143 neutral rows drawn per epoch, the model read emotion into DailyDialog's neutral lines
# (DailyDialog test: 756 of 6,321 neutral utterances read happy, micro-F1 0.4985, macro-F1 0.421).
DAILYDIALOG_NEUTRAL_PER_EPOCH = None
# With a teacher (train_text's ``teacher``): the teacher's share of each row's target.
DISTIL_WEIGHT = 0.5
TEACHER_CHUNK = 4000  # texts per progress line while the teacher reads the training splits


def corpus_of(split_name: str) -> str:
    for corpus in CORPORA:
        if split_name.startswith(corpus) or split_name.startswith(corpus.split("_")[0]):
            return corpus
    return "manifest"


def load_split(datasets_dir: Path, corpus: str, which: str, curiosity: bool = False) -> TextSplit:
    """``which`` is train, val or test, whatever the corpus calls them."""
    name = SPLITS[corpus][("train", "val", "test").index(which)]
    root = Path(datasets_dir) / corpus
    if corpus == "dair_emotion":
        return load_dair(root, name)
    if corpus == "goemotions":
        return load_goemotions_ekman(root, name, curiosity=curiosity)
    return load_dailydialog(root, name)


def default_recipe(corpora: Sequence[str] = CORPORA):
    from emotion_sensing.text.finetune import Recipe

    caps = {"dailydialog": DAILYDIALOG_NEUTRAL_PER_EPOCH} if DAILYDIALOG_NEUTRAL_PER_EPOCH else {}
    return Recipe(neutral_per_epoch=caps if "dailydialog" in corpora else {}, class_weight_power=0.4)


def to_canonical(probs: np.ndarray, labels: Sequence[str], curiosity_as: str) -> np.ndarray:
    """Probabilities over the model's labels folded onto LABELS (curiosity added to
    ``curiosity_as``)."""
    out = np.zeros((len(probs), len(LABELS)), np.float64)
    for j, label in enumerate(labels):
        out[:, LABELS.index(curiosity_as if label == CURIOSITY else label)] += probs[:, j]
    return out


def score(split: TextSplit, logits: np.ndarray, labels: Sequence[str], temperature: float) -> Dict[str, Any]:
    """Accuracy, macro-F1, micro-F1 over the emotions, ECE (15 bins, before and after the
    temperature) of one split's logits."""
    curiosity_as = CURIOSITY_AS[corpus_of(split.name)]
    truth = [LABELS.index(label if label != CURIOSITY else curiosity_as) for label in split.labels]
    calibrated = to_canonical(softmax(logits, temperature), labels, curiosity_as)
    raw = to_canonical(softmax(logits), labels, curiosity_as)
    predicted = [LABELS[i] for i in calibrated.argmax(1)]
    gold = [LABELS[i] for i in truth]
    result = evaluate(gold, predicted)
    result["micro_f1_emotions"] = micro_f1_emotions(gold, predicted)
    result["ece"] = round(expected_calibration_error(calibrated, truth), 4)
    result["ece_uncalibrated"] = round(expected_calibration_error(raw, truth), 4)
    result["mean_confidence"] = round(float(calibrated.max(1).mean()), 4)
    return result


TEMPERATURE_GRID = np.round(np.arange(0.70, 1.501, 0.005), 3)


def fit_temperature_across(splits: Sequence[TextSplit], logits: Sequence[np.ndarray],
                           labels: Sequence[str]) -> Tuple[float, Dict[str, Any]]:
    """One temperature for several validation corpora: the one whose worst per-corpus ECE (15
    bins) is lowest, on a grid of 0.005. The corpora differ in their base rates (DailyDialog is 83%
    neutral, dair-ai has no neutral), so one temperature cannot calibrate all of them at once;
    the NLL fit (each corpus weighted equally, else DailyDialog's rows outvote the others) lands
    where the largest corpus is best served and left GoEmotions' ECE at 0.053. Both are recorded."""
    def per_corpus(t: float) -> Dict[str, float]:
        return {split.name: score(split, lg, labels, t)["ece"] for split, lg in zip(splits, logits)}

    truth = np.concatenate([[list(labels).index(label) for label in split.labels] for split in splits])
    weights = np.concatenate([np.full(len(split), 1.0 / len(split)) for split in splits])
    nll_t = fit_temperature(np.concatenate(logits), truth, weights=weights)
    ece = {float(t): per_corpus(float(t)) for t in TEMPERATURE_GRID}
    best = min(ece, key=lambda t: (max(ece[t].values()), abs(np.log(t / nll_t))))
    return best, {"rule": "minimax ECE over the validation corpora", "worst_ece": round(max(ece[best].values()), 4),
                  "nll_temperature": round(nll_t, 4), "nll_worst_ece": round(max(per_corpus(nll_t).values()), 4),
                  "per_corpus_ece": ece[best]}


def load_teacher(path: Path, hold_out: Optional[str]):
    """The teacher's runtime (an EncoderClassifier), refused with a ValueError when it cannot teach
    this run: other labels, or trained on the corpus this run holds out (it would pass that corpus's
    labels on), or without a corpus this run trains on."""
    from emotion_sensing.text.encoder import EncoderClassifier, Ensemble

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no teacher model at {path}")
    meta = Ensemble.load(path).meta
    if list(meta.get("labels", [])) != list(TEXT_LABELS):
        raise ValueError(f"the teacher {path} reads other labels ({', '.join(meta.get('labels', []))})")
    if meta.get("hold_out") != hold_out:
        taught = f"without {meta['hold_out']}" if meta.get("hold_out") else "on every corpus"
        wanted = f"without {hold_out}" if hold_out else "on every corpus"
        raise ValueError(f"the teacher {path} was trained {taught}; this run trains {wanted}: "
                         "distil from a teacher trained on the same corpora")
    return EncoderClassifier(path)


def teacher_probabilities(runtime, teacher_sha256: str, texts: Sequence[str], cache: Path,
                          log: Printer = print) -> np.ndarray:
    """The teacher's calibrated probabilities for ``texts`` (one text at a time, as served), kept in
    ``cache`` for the teacher file whose sha256 is given, and computed in chunks that are kept as
    they finish, so that an interrupted run resumes where it stopped."""
    cache = Path(cache)
    out = np.zeros((len(texts), len(runtime.labels)), np.float32)
    done = 0
    if cache.exists():
        with np.load(cache) as stored:
            if str(stored["sha256"]) == teacher_sha256 and stored["probs"].shape[1] == out.shape[1]:
                done = min(int(stored["done"]), len(texts))
                out[:done] = stored["probs"][:done]
    started = time.time()
    for start in range(done, len(texts), TEACHER_CHUNK):
        chunk = texts[start:start + TEACHER_CHUNK]
        out[start:start + len(chunk)] = softmax(runtime.logits(chunk) / runtime.temperature)
        partial = cache.with_name(cache.name + ".partial.npz")
        np.savez(partial, probs=out, done=start + len(chunk), sha256=teacher_sha256)
        partial.replace(cache)  # whole or not at all, should the run be stopped mid-write
        rate = (time.time() - started) / (start + len(chunk) - done)
        log(f"teacher: {start + len(chunk):,} of {len(texts):,} texts ({cache.name}), "
            f"about {(len(texts) - start - len(chunk)) * rate / 60:.0f} min left")
    return out


def _tokenised(tok, split: TextSplit, max_tokens: int) -> List[List[int]]:
    from emotion_sensing.text.finetune import tokenise

    return tokenise(tok, split.texts, max_tokens)


def train_text(
    datasets_dir: Path,
    models_dir: Path,
    work_dir: Path,
    hold_out: Optional[str] = None,
    export: bool = True,
    max_minutes: Optional[float] = None,
    recipe=None,
    log: Printer = print,
    teacher: Optional[Path] = None,
    distil: float = DISTIL_WEIGHT,
) -> Optional[Dict[str, Any]]:
    """Fine-tune on the training splits of every corpus but ``hold_out``, fit the temperature on
    their validation splits, score the int8 ONNX model that ships on every corpus's test split,
    and (with ``export``) write ``models_dir/text_emotion.npz``. Resumable: returns None when
    ``max_minutes`` ran out (run again to go on).

    With ``teacher`` (a text model file, e.g. an ensemble of seeds trained on the same corpora),
    knowledge distillation: each training row's target is ``1 - distil`` of its label plus
    ``distil`` of the teacher's calibrated probabilities for the text (for its flipped ending
    too), read once and kept in ``work_dir``."""
    import dataclasses
    import hashlib

    from emotion_sensing.text import encoder, finetune

    datasets_dir, work_dir = Path(datasets_dir), Path(work_dir)
    corpora = [c for c in CORPORA if c != hold_out]
    recipe = recipe or default_recipe(corpora)
    labels = list(TEXT_LABELS)
    started = time.time()
    teaching, taught = None, None
    if teacher is not None:
        if not 0 < distil <= 1:
            raise ValueError(f"the teacher's share of the target is from 0 (excluded) to 1, not {distil:g}")
        teaching = load_teacher(teacher, hold_out)
        teacher_sha256 = hashlib.sha256(Path(teacher).read_bytes()).hexdigest()
        recipe = dataclasses.replace(recipe, distil=distil)
        taught = {"file": str(teacher), "sha256": teacher_sha256, "members": teaching.size,
                  "seeds": teaching.ensemble.meta.get("seeds"), "weight": distil}
        log(f"distilling from {teacher} ({teaching.size} network{'s' if teaching.size > 1 else ''}; "
            f"target {1 - distil:g} x label + {distil:g} x teacher)")
    log(f"loading the base encoder from {encoder.package_zip()} (sha256 checked)")
    base = encoder.base_weights()
    tok = encoder.tokenizer()
    train_corpora, val_splits = [], []
    for corpus in corpora:
        train = load_split(datasets_dir, corpus, "train", curiosity=True)
        val_splits.append(load_split(datasets_dir, corpus, "val", curiosity=True))
        flipped_texts = [encoder.flip_ending(t) for t in train.texts]
        soft = soft_flipped = None
        if teaching is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
            soft = teacher_probabilities(teaching, teacher_sha256, train.texts, work_dir / f"teacher-{corpus}.npz", log)
            soft_flipped = teacher_probabilities(teaching, teacher_sha256, flipped_texts,
                                                 work_dir / f"teacher-{corpus}-flipped.npz", log)
        train_corpora.append(finetune.Corpus(
            corpus, _tokenised(tok, train, recipe.max_tokens), np.array([labels.index(label) for label in train.labels]),
            weight=recipe.corpus_weight.get(corpus, 1.0), flipped=finetune.tokenise(tok, flipped_texts, recipe.max_tokens),
            soft=soft, soft_flipped=soft_flipped))
        log(f"{train.name}: {len(train):,} rows ({train.skipped} skipped); {val_splits[-1].name}: {len(val_splits[-1]):,}")
    del teaching  # its networks are not needed while the student trains
    val_ids = [_tokenised(tok, split, encoder.MAX_TOKENS) for split in val_splits]

    def validate(model, epoch: int) -> Dict[str, Any]:
        scores = {}
        for split, ids in zip(val_splits, val_ids):
            result = score(split, finetune.predict_logits(model, ids), labels, 1.0)
            key = "micro_f1_emotions" if split.name.startswith("dailydialog") else (
                "macro_f1" if split.name.startswith("goemotions") else "accuracy")
            scores[split.name] = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], key: result[key]}
        return scores

    log(f"fine-tuning (LoRA rank {recipe.rank}, {recipe.epochs} epochs, batch {recipe.batch_size}, "
        f"lr {recipe.learning_rate:g}) on {', '.join(corpora)}; checkpoints in {work_dir}")
    model, finished = finetune.train(train_corpora, labels, work_dir, recipe, base, validate=validate, log=log,
                                     max_minutes=max_minutes)
    if not finished:
        return None

    # Temperature: one for the model, fitted on the int8 runtime's logits (one text at a time, as
    # served) of the validation splits. See fit_temperature_across.
    from emotion_sensing.text.encoder import EncoderClassifier

    uncalibrated = finetune.to_adapter(model, labels, recipe, {"temperature": 1.0})
    runtime = EncoderClassifier(uncalibrated.save(work_dir / "uncalibrated.npz"))
    val_logits = [runtime.logits(split.texts) for split in val_splits]
    temperature, fit = fit_temperature_across(val_splits, val_logits, labels)
    log(f"temperature {temperature:.3f} (worst validation ECE {fit['worst_ece']:.4f}; the NLL fit, "
        f"{fit['nll_temperature']:.3f}, would give {fit['nll_worst_ece']:.4f})")
    adapter = finetune.to_adapter(model, labels, recipe, {
        "temperature": temperature, "trained_on": corpora, "base": encoder.PACKAGE_PIN,
        "base_sha256": encoder.BASE_SHA256, "hold_out": hold_out, "temperature_fit": fit,
        **({"teacher": taught} if taught else {})})
    path = adapter.save(work_dir / MODEL_FILE)
    log(f"adapter saved: {path} ({path.stat().st_size / 1e6:.1f} MB)")

    result = measure(path, datasets_dir, log=log)
    result.update(recipe=recipe.to_dict(), trained_on=corpora, hold_out=hold_out, temperature_fit=fit,
                  training_minutes=round((time.time() - started) / 60, 1), adapter_bytes=path.stat().st_size,
                  **({"teacher": taught} if taught else {}))
    (work_dir / "result.json").write_text(json.dumps(result, indent=2))
    if export:
        ship(path, models_dir, log)
    return result


def ship(model_file: Path, models_dir: Path, log: Printer = print) -> Path:
    """Copy a trained model file (one adapter or an ensemble) into ``models_dir`` as the text model."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    shipped = models_dir / MODEL_FILE
    shipped.write_bytes(Path(model_file).read_bytes())
    log(f"wrote {shipped}")
    return shipped


def seed_folder(work_dir: Path, seed: int) -> Path:
    """Where seed ``seed`` of the recipe trains: ``work_dir`` itself for seed 0 (the single-model
    default), ``WORK-seedN`` beside it for the others."""
    work_dir = Path(work_dir)
    return work_dir if seed == 0 else work_dir.with_name(f"{work_dir.name}-seed{seed}")


def ensemble_folder(work_dir: Path, seeds: Sequence[int]) -> Path:
    work_dir = Path(work_dir)
    return work_dir.with_name(f"{work_dir.name}-seeds-{'-'.join(str(s) for s in seeds)}")


def run_folder(work_dir: Path, seeds: Sequence[int]) -> Path:
    """Where a run of :func:`train_seeds` leaves its model file and ``result.json``: the work folder
    itself for the single model (seed 0), the ensemble's folder otherwise."""
    return Path(work_dir) if list(seeds) == [0] else ensemble_folder(work_dir, seeds)


def train_seeds(
    datasets_dir: Path,
    models_dir: Path,
    work_dir: Path,
    seeds: Sequence[int],
    hold_out: Optional[str] = None,
    export: bool = True,
    max_minutes: Optional[float] = None,
    log: Printer = print,
    teacher: Optional[Path] = None,
    distil: float = DISTIL_WEIGHT,
) -> Optional[Dict[str, Any]]:
    """The recipe trained once per seed (each in its own resumable folder, see seed_folder; a
    seed whose folder holds a finished run is not trained again), then their ensemble
    (:func:`combine`). Seeds ``[0]`` alone is the single model, trained by :func:`train_text`.
    With ``export`` the model is written to ``models_dir``; either way it lands in
    ``run_folder(work_dir, seeds)``. None when ``max_minutes`` ran out (run again to go on).
    ``teacher``: each seed distilled from it (see train_text)."""
    import dataclasses

    if list(seeds) == [0]:
        return train_text(datasets_dir, models_dir, work_dir, hold_out=hold_out, export=export,
                          max_minutes=max_minutes, log=log, teacher=teacher, distil=distil)
    deadline = time.time() + max_minutes * 60 if max_minutes else None
    corpora = [c for c in CORPORA if c != hold_out]
    members = []
    for number, seed in enumerate(seeds, 1):
        folder = seed_folder(work_dir, seed)
        if (folder / "result.json").exists() and (folder / MODEL_FILE).exists():
            log(f"seed {seed} ({number} of {len(seeds)}): trained already ({folder})")
        else:
            log(f"seed {seed} ({number} of {len(seeds)}): checkpoints in {folder}")
            left = None if deadline is None else max(1.0, (deadline - time.time()) / 60)
            recipe = dataclasses.replace(default_recipe(corpora), seed=seed)
            if train_text(datasets_dir, models_dir, folder, hold_out=hold_out, export=False, max_minutes=left,
                          recipe=recipe, log=log, teacher=teacher, distil=distil) is None:
                return None
        members.append(folder / MODEL_FILE)
    folder = run_folder(work_dir, seeds)
    result = combine(members, datasets_dir, folder, hold_out=hold_out, log=log)
    if export:
        ship(folder / MODEL_FILE, models_dir, log)
    return result


def _recorded_test(path: Path, ensemble) -> Optional[Dict[str, Any]]:
    """A member's own test figures as recorded when it was trained (``result.json`` beside it) or
    shipped (the models folder's results, if they are this adapter's: same temperature); None
    for an ensemble or where nothing is recorded."""
    if len(ensemble.members) != 1:
        return None
    beside, shipped = path.parent / "result.json", path.parent / RESULT_FILE
    if beside.exists():
        return json.loads(beside.read_text()).get("test")
    if shipped.exists():
        recorded = json.loads(shipped.read_text()).get("shipped") or {}
        if recorded.get("temperature") == ensemble.temperature:
            return recorded.get("test")
    return None


def combine(member_paths: Sequence[Path], datasets_dir: Path, work_dir: Path, hold_out: Optional[str] = None,
            log: Printer = print) -> Dict[str, Any]:
    """An ensemble of trained adapters (seeds of one recipe): their logits averaged, one
    temperature fitted on the average over the validation splits (as for one model), written to
    ``work_dir/text_emotion.npz`` and measured like one model, each member's own test figures
    beside it."""
    from emotion_sensing.text.encoder import EncoderClassifier, Ensemble

    loaded = [Ensemble.load(path) for path in member_paths]
    members = [member for ensemble in loaded for member in ensemble.members]
    seeds = [member.meta.get("recipe", {}).get("seed") for member in members]
    alone = [_recorded_test(Path(path), ensemble) for path, ensemble in zip(member_paths, loaded)]
    work_dir = Path(work_dir)
    corpora = [c for c in CORPORA if c != hold_out]
    labels = list(TEXT_LABELS)
    if members[0].labels != labels:
        raise ValueError(f"{member_paths[0]} has labels {members[0].labels}, not {labels}")
    val_splits = [load_split(datasets_dir, corpus, "val", curiosity=True) for corpus in corpora]
    log(f"ensemble of {len(members)} (seeds {', '.join(map(str, seeds))}): fitting its temperature on "
        f"{', '.join(split.name for split in val_splits)}")
    runtime = EncoderClassifier(Ensemble.of(members, temperature=1.0).save(work_dir / "uncalibrated.npz"))
    temperature, fit = fit_temperature_across(val_splits, [runtime.logits(split.texts) for split in val_splits], labels)
    log(f"temperature {temperature:.3f} (worst validation ECE {fit['worst_ece']:.4f})")
    first = members[0].meta
    path = Ensemble.of(members, temperature=temperature, temperature_fit=fit, seeds=seeds, hold_out=hold_out,
                       trained_on=corpora, base=first.get("base"), base_sha256=first.get("base_sha256"),
                       recipe=first.get("recipe")).save(work_dir / MODEL_FILE)
    log(f"ensemble saved: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    result = measure(path, datasets_dir, log=log)
    result.update(recipe=first.get("recipe"), trained_on=corpora, hold_out=hold_out, temperature_fit=fit,
                  adapter_bytes=path.stat().st_size, seeds=seeds,
                  members=[{"file": str(p), "test": test} for p, test in zip(member_paths, alone)])
    (work_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def measure(adapter_path: Path, datasets_dir: Path, log: Optional[Printer] = print) -> Dict[str, Any]:
    """The shipped runtime (int8 ONNX) on every corpus: calibration on the validation splits,
    scores on the test splits."""
    from emotion_sensing.text.encoder import EncoderClassifier

    classifier = EncoderClassifier(adapter_path)
    labels, temperature = classifier.labels, classifier.temperature
    out: Dict[str, Any] = {"temperature": temperature, "validation": {}, "test": {}}
    for corpus in CORPORA:
        try:
            val = load_split(datasets_dir, corpus, "val", curiosity=True)
            test = load_split(datasets_dir, corpus, "test")
        except FileNotFoundError as error:
            if log:
                log(f"skipping {corpus}: {error}")
            continue
        val_logits = classifier.logits(val.texts)
        val_truth = [labels.index(label) for label in val.labels]
        report = calibration_report(val_logits, val_truth, temperature)
        report.update({k: v for k, v in score(val, val_logits, labels, temperature).items()
                       if k in ("accuracy", "macro_f1", "micro_f1_emotions", "ece", "ece_uncalibrated")})
        out["validation"][val.name] = report
        result = score(test, classifier.logits(test.texts), labels, temperature)
        out["test"][test.name] = result
        if log:
            log(f"{val.name}: ECE {report['ece_uncalibrated']:.4f} -> {report['ece']:.4f}; {test.name}: accuracy "
                f"{result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, micro-F1 (emotions) "
                f"{result['micro_f1_emotions']}, ECE {result['ece']:.4f}")
    return out


def vader_valence_agreement(split: TextSplit, recognizer, logits: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """How often VADER's compound sign, and the recognizer's blended valence, match the valence
    sign of the true label (neutral and surprise, which have no clear sign, are skipped).

    The recognizer's valence comes from the classifier's raw logits for the split's texts
    (``logits``, where the caller has scored them already, so the encoder does not read every text
    twice; else computed here), one text at a time as the recognizer computes them: the valence is
    the one ``recognizer.read`` gives, to rounding (1e-15)."""
    from emotion_sensing.calibration import softmax

    if logits is None:
        logits = recognizer.classifier.logits(split.texts)
    agree = counted = model_agree = 0
    for row, (text, label) in enumerate(zip(split.texts, split.labels)):
        if label not in VALENCE or label in ("neutral", "surprise") or VALENCE[label] == 0:
            continue
        sign = VALENCE[label]
        counted += 1
        scores = recognizer.vader(text)
        agree += scores["compound"] * sign > 0
        probs = recognizer.canonical(softmax(logits[row], recognizer.classifier.temperature))
        model_agree += recognizer.valence(probs, scores) * sign > 0
    return {"n": counted, "vader_only": round(agree / counted, 4) if counted else None,
            "recognizer": round(model_agree / counted, 4) if counted else None}


def eval_text(splits: Sequence[TextSplit], model_path: Path) -> Dict[str, Any]:
    """The shipped recognizer on each split: accuracy, macro-F1, micro-F1 over the emotions,
    ECE (15 bins) with and without the temperature, valence agreement."""
    from emotion_sensing.text.recognizer import TextRecognizer

    recognizer = TextRecognizer(model_path)
    if not recognizer.has_classifier:
        raise FileNotFoundError(recognizer.unavailable or f"no text model at {model_path}")
    classifier = recognizer.classifier
    results = []
    for split in splits:
        logits = classifier.logits(split.texts)
        result = score(split, logits, classifier.labels, classifier.temperature)
        result.update(modality="text", dataset=split.name, skipped=split.skipped,
                      valence_agreement=vader_valence_agreement(split, recognizer, logits))
        if split.skipped_labels is not None:
            result["skipped_labels"] = split.skipped_labels.as_dict()
        results.append(result)
    return {"modality": "text", "model": str(model_path), "temperature": classifier.temperature, "datasets": results}


# ---- the TF-IDF model the project shipped before, as a baseline ------------------------------

def tfidf_baseline(datasets_dir: Path, train_on: Sequence[str], test_on: Sequence[str],
                   log: Optional[Printer] = print) -> Dict[str, Dict[str, Any]]:
    """Today's TF-IDF recipe (word 1-2-grams, logistic regression C=5, balanced classes, dair rows
    weighted 3x, curiosity kept apart) trained on ``train_on`` and scored on the test splits of
    ``test_on``."""
    from emotion_sensing.text.model import build_pipeline

    texts, labels, weights = [], [], []
    for corpus in train_on:
        split = load_split(datasets_dir, corpus, "train", curiosity=True)
        texts += split.texts
        labels += split.labels
        weights += [3.0 if corpus == "dair_emotion" else 1.0] * len(split)
    started = time.time()
    model = build_pipeline(c=5.0, class_weight="balanced")
    model.fit(texts, labels, classifier__sample_weight=weights)
    if log:
        log(f"TF-IDF on {', '.join(train_on)}: {len(texts):,} rows, fitted in {time.time() - started:.0f} s")
    classes = [str(c) for c in model.classes_]
    out = {}
    for corpus in test_on:
        split = load_split(datasets_dir, corpus, "test")
        logits = np.log(np.clip(model.predict_proba(split.texts), 1e-12, None))
        out[split.name] = score(split, logits, classes, 1.0)
    return out


def cross_corpus(datasets_dir: Path, work_dir: Path, max_minutes: Optional[float] = None,
                 log: Printer = print, seeds: Sequence[int] = (0,)) -> Optional[List[Dict[str, Any]]]:
    """Leave one corpus out, three times: the shipped recipe and the TF-IDF recipe trained on the
    other two corpora, both scored on the test split of the one left out. With several
    ``seeds``, the recipe's ensemble of those seeds (as ``train_seeds`` builds the shipped one).
    Resumable (each fine-tuning run keeps its checkpoints); None if ``max_minutes`` ran out."""
    deadline = time.time() + max_minutes * 60 if max_minutes else None
    seeds = list(seeds)
    rows = []
    for corpus in CORPORA:
        others = [c for c in CORPORA if c != corpus]
        folder = Path(work_dir).with_name(f"{Path(work_dir).name}-without-{corpus}")
        done = run_folder(folder, seeds) / "result.json"
        if done.exists():
            result = json.loads(done.read_text())
        else:
            left = None if deadline is None else max(1.0, (deadline - time.time()) / 60)
            result = train_seeds(datasets_dir, folder, folder, seeds, hold_out=corpus, export=False,
                                 max_minutes=left, log=log)
            if result is None:
                return None
        held = next(name for name in result["test"] if corpus_of(name) == corpus)
        baseline_file = folder / "tfidf.json"
        if baseline_file.exists():
            baseline = json.loads(baseline_file.read_text())
        else:
            baseline = tfidf_baseline(datasets_dir, others, [corpus], log=log)
            baseline_file.write_text(json.dumps(baseline, indent=2))
        keep = ("n", "accuracy", "macro_f1", "micro_f1_emotions", "ece")
        rows.append({"held_out": corpus, "trained_on": others, "seeds": seeds,
                     "encoder": {k: result["test"][held][k] for k in keep},
                     "tfidf": {k: baseline[held][k] for k in keep}})
        log(f"without {corpus}: encoder accuracy {rows[-1]['encoder']['accuracy']:.4f} / macro-F1 "
            f"{rows[-1]['encoder']['macro_f1']:.4f}; TF-IDF {rows[-1]['tfidf']['accuracy']:.4f} / "
            f"{rows[-1]['tfidf']['macro_f1']:.4f}")
    return rows
