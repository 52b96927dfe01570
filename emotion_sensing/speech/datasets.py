"""Speech emotion corpora mapped onto the canonical labels, and a cache of their features.

- RAVDESS speech (``ravdess/labels.csv``: ``file,speaker,emotion,duration_s``; 16 kHz FLAC
  under ``Actor_NN/``), mapped with :data:`emotion_sensing.labels.RAVDESS` (calm -> neutral).
- A manifest CSV of ``file,label`` with an optional third column ``speaker`` (header
  optional); relative paths are relative to the manifest's folder. Without speakers all
  clips share one speaker normaliser, as one live session would.

Extracted features are cached outside the project (``~/.cache/emobot/speech`` or
``EMOBOT_CACHE``), keyed by the files' paths, sizes and times and the feature version.
"""
from __future__ import annotations

import csv
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.labels import FOLDER_NAMES, RAVDESS, SkippedLabels, canonical, class_folders, read_named_label
from emotion_sensing.manifest import LABEL_COLUMNS, read_manifest

Printer = Callable[[str], None]


@dataclass
class SpeechSet:
    """Audio files of one corpus with canonical labels and speaker ids."""

    name: str
    files: List[Path]
    labels: List[str]
    speakers: List[str]
    skipped: int = 0
    notes: List[str] = field(default_factory=list)
    # A manifest's rows left out for their label (None for the corpora, whose mappings are fixed).
    skipped_labels: Optional[SkippedLabels] = None

    def __len__(self) -> int:
        return len(self.files)


def _load_corpus(root: Path, folder: str, title: str, table) -> SpeechSet:
    """A corpus folder with ``labels.csv`` (``file,speaker,emotion,...``); ``root`` is that
    folder or the datasets folder above it."""
    root = Path(root)
    if not (root / "labels.csv").exists() and (root / folder / "labels.csv").exists():
        root = root / folder
    path = root / "labels.csv"
    if not path.exists():
        raise FileNotFoundError(f"{title} labels.csv not found in {root / folder} or {root}. See README.md, 'Voice', "
                                "for the data and pass its folder with --data.")
    files, labels, speakers, skipped = [], [], [], 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                label = canonical(row["emotion"], table)
            except KeyError:
                label = None
            if label is None:
                skipped += 1
                continue
            files.append(root / row["file"])
            labels.append(label)
            speakers.append(row["speaker"])
    return SpeechSet(folder, files, labels, speakers, skipped)


def load_ravdess(root: Path) -> SpeechSet:
    """RAVDESS speech from ``root/labels.csv`` (``root`` is the ravdess folder or the datasets folder)."""
    return _load_corpus(root, "ravdess", "RAVDESS", RAVDESS)


def load_savee(root: Path) -> SpeechSet:
    """SAVEE (4 male British speakers, 480 clips) from ``root/labels.csv``, same layout as RAVDESS's."""
    return _load_corpus(root, "savee", "SAVEE", FOLDER_NAMES)


def load_manifest(path: Path) -> SpeechSet:
    """A CSV of ``file,label[,speaker]`` (by position, header optional) or with a header naming
    ``file``, ``label`` or ``emotion`` and optionally ``speaker`` in any order (RAVDESS's and
    SAVEE's labels.csv are read as they are); see :mod:`emotion_sensing.manifest`."""
    manifest = read_manifest(path, {"file": ("file",), "label": LABEL_COLUMNS, "speaker": ("speaker",)},
                             required=("file", "label"))
    files, labels, speakers, skipped, notes = [], [], [], manifest.skipped, []
    for row in manifest.rows:
        file = manifest.relative(row["file"])
        if not file.exists():
            skipped += 1
            if len(notes) < 5:
                notes.append(f"missing file {file}")
            continue
        files.append(file)
        labels.append(row["label"])
        speakers.append(row["speaker"].strip() or "all")
    if manifest.left_out:
        notes.append(manifest.left_out.describe())
    return SpeechSet(f"manifest/{manifest.path.name}", files, labels, speakers, skipped, notes, manifest.left_out)


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


def load_folders(root: Path) -> SpeechSet:
    """Clips in class folders, ``root/<label>/*.wav``, as TESS and many corpora lay them out. A folder
    is named by its label or by something and then its label (TESS's "OAF_angry"): the part before
    the label is taken as the speaker ("OAF"), so each is standardised with its own statistics;
    folders named by the label alone share one normaliser. Folders without a counterpart among the
    seven (boredom) or with a name emobot does not know are counted, with their clips."""
    root = Path(root)
    files, labels, speakers, left_out = [], [], [], SkippedLabels()
    for folder, clips in class_folders(root, AUDIO_SUFFIXES):
        label, known, speaker = read_named_label(folder.name)
        if label is None:
            for _ in clips:
                left_out.add(folder.name, known)
            continue
        files += clips
        labels += [label] * len(clips)
        speakers += [speaker or "all"] * len(clips)
    notes = [left_out.describe()] if left_out else []
    return SpeechSet(f"folders/{root.name}", files, labels, speakers, sum(left_out.no_counterpart.values())
                     + sum(left_out.unknown.values()), notes, left_out)


def cache_dir() -> Path:
    return Path(os.environ.get("EMOBOT_CACHE", Path.home() / ".cache" / "emobot")) / "speech"


def _cache_key(files: List[Path], version: int) -> str:
    digest = hashlib.sha256(f"v{version}".encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}|{stat.st_size}|{int(stat.st_mtime)}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class SetFeatures:
    """Utterance vectors (NaN rows for silent clips) and voiced MFCC frames of a SpeechSet."""

    vectors: np.ndarray
    mfcc: List[np.ndarray]

    @property
    def usable(self) -> np.ndarray:
        return usable_rows(self.vectors)


def usable_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows of utterance vectors that hold speech (a clip without speech is a NaN row)."""
    return ~np.isnan(vectors).any(axis=1)


# Clips per job when several processes extract features (EMOBOT_FEATURE_WORKERS, default one per core).
CHUNK = 16
_WORKER_FEATURISER = None


def _workers() -> int:
    from emotion_sensing.machine import usable_cores

    try:
        return max(1, int(os.environ.get("EMOBOT_FEATURE_WORKERS", "0")) or usable_cores())
    except ValueError:
        return usable_cores()


def _featurise(featuriser, files: Sequence[str], condition: str,
               first: int) -> List[Tuple[Optional[np.ndarray], Optional[np.ndarray]]]:
    """(vector or None, MFCC frames) of each clip; clip ``first + k`` gets the condition's seed ``first + k``."""
    from emotion_sensing.speech.audio import load
    from emotion_sensing.speech.conditions import apply

    out = []
    for i, file in enumerate(files, start=first):
        utterance = featuriser(apply(load(file), condition, seed=i))
        out.append((utterance.vector, utterance.frames.mfcc() if utterance.vector is not None else None))
    return out


def _start_worker(blocks: Tuple[str, ...]) -> None:
    global _WORKER_FEATURISER
    from emotion_sensing.speech.vector import Featuriser

    _leave_with_parent(os.getppid())
    _WORKER_FEATURISER = Featuriser(blocks)


def _leave_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Exit this worker once its parent is gone. A command stopped by a signal (Ctrl-C twice, a
    kill) cannot shut its pool down, and its workers would go on with their clips, then wait for
    work forever."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


def _featurise_in_worker(files: Sequence[str], condition: str, first: int):
    return _featurise(_WORKER_FEATURISER, files, condition, first)


def extract(dataset: SpeechSet, log: Optional[Printer] = None, use_cache: bool = True,
            blocks: Sequence[str] = ("librosa",), condition: str = "clean") -> SetFeatures:
    """Utterance vectors of ``blocks`` (vector.py) for every clip of ``dataset`` under ``condition``
    (conditions.py), from the cache when the files are unchanged."""
    from emotion_sensing.speech.features import FEATURE_VERSION, N_MFCC
    from emotion_sensing.speech.vector import VECTOR_VERSION, Featuriser, layout, width

    blocks = tuple(blocks)
    layout(blocks)  # validates the names; a featuriser (models loaded) only where clips are read here
    version = FEATURE_VERSION * 1000 + VECTOR_VERSION
    tag = "+".join(blocks) + ("" if condition == "clean" else f"-{condition}")
    path = cache_dir() / f"{dataset.name.replace('/', '_')}-{tag}-{_cache_key(dataset.files, version)}.npz"
    if use_cache and path.exists():
        with np.load(path) as data:
            offsets = data["offsets"]
            frames = data["mfcc"]
            return SetFeatures(data["vectors"], [frames[a:b] for a, b in zip(offsets[:-1], offsets[1:])])
    vectors = np.full((len(dataset), width(blocks)), np.nan, dtype=np.float32)
    mfcc: List[np.ndarray] = [np.zeros((0, N_MFCC), dtype=np.float32)] * len(dataset)
    started, done, next_log = time.time(), 0, 200

    def keep(first: int, chunk: List[Tuple[Optional[np.ndarray], Optional[np.ndarray]]]) -> None:
        nonlocal done, next_log
        for i, (vector, frames) in enumerate(chunk, start=first):
            if vector is not None:
                vectors[i], mfcc[i] = vector, frames
        done += len(chunk)
        if log and (done >= next_log or done == len(dataset)):
            next_log = done + 200
            rate = done / max(time.time() - started, 1e-9)
            log(f"  {dataset.name} {condition}: {done}/{len(dataset)} clips "
                f"({rate:.1f}/s, {(len(dataset) - done) / rate:.0f} s left)")

    workers = min(_workers(), max(1, len(dataset) // CHUNK))
    chunks = [(start, list(dataset.files[start:start + CHUNK])) for start in range(0, len(dataset), CHUNK)]
    finished = 0
    if workers > 1:
        # Clips are independent: one process per core, each with its own featuriser (spawned,
        # never forked from a process that may hold TensorFlow's or CTranslate2's threads).
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # librosa compiles its numba functions when first imported and caches them in its package
        # folder; two workers doing that at once on a fresh install left a cache that crashed every
        # later process (a segfault in librosa.zero_crossings, 6 December). Here it happens once.
        import librosa  # noqa: F401

        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_start_worker, initargs=(blocks,)) as pool:
                jobs = [pool.submit(_featurise_in_worker, files, condition, start) for start, files in chunks]
                for (start, _), job in zip(chunks, jobs):
                    keep(start, job.result())
                    finished += 1
        except BrokenProcessPool:
            # A worker could not start: e.g. a script without `if __name__ == "__main__":`
            # (spawned processes import the main module). The rest in this process, as before.
            if log:
                log(f"  {dataset.name} {condition}: feature workers failed to start; extracting in this process")
    if finished < len(chunks):
        featuriser = Featuriser(blocks)
        for start, files in chunks[finished:]:
            keep(start, _featurise(featuriser, files, condition, start))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(m) for m in mfcc])
        np.savez(path, vectors=vectors, mfcc=np.concatenate(mfcc) if mfcc else np.zeros((0, N_MFCC)), offsets=offsets)
    return SetFeatures(vectors, mfcc)
