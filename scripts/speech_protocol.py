"""What the voice measurement scripts share besides their command line (script_arguments.py): the
features they extract themselves (two processes, cached), and the protocol's accuracies.

The protocol is the speech card's: the same logistic regression (logreg, C=0.05) trained on RAVDESS
actors 1-18 standardised per speaker, tested on actors 19-24 (per speaker) and on SAVEE (never heard)
under each standardisation of the card (``train.CROSS_MODES``). Not a script itself.
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROCESSES = 2
FOLDERS = ("ravdess", "savee")  # of the datasets folder: what corpora() reads


def corpora(data: Path):
    """(RAVDESS, SAVEE) as the protocol reads them, in that order; a missing corpus ends the script
    with the loader's message (where the data comes from), not a traceback."""
    from emotion_sensing.speech.datasets import load_ravdess, load_savee

    try:
        return load_ravdess(data), load_savee(data)
    except FileNotFoundError as error:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {error}") from None


def cached_vectors(data: Path, blocks: Sequence[str]):
    """(vectors, rows): RAVDESS's then SAVEE's utterance vectors of ``blocks`` from the feature cache
    (extracted as `emobot train speech` does the first time), NaN rows for clips with no speech, and
    the protocol's rows (``train.protocol_rows``) over the usable ones."""
    from emotion_sensing.speech.datasets import extract
    from emotion_sensing.speech.train import protocol_rows

    ravdess, savee = corpora(data)
    log = lambda message: print(message, flush=True)  # noqa: E731
    vectors = np.vstack([extract(ravdess, log=log, blocks=blocks).vectors, extract(savee, log=log, blocks=blocks).vectors])
    return vectors, protocol_rows(ravdess, savee, usable=~np.isnan(vectors).any(axis=1))  # no speech, no vector


class Clip(NamedTuple):
    samples: np.ndarray  # as loaded: mono float32 at 16 kHz
    vector: np.ndarray  # the utterance vector of the blocks asked for
    frames: Any  # vector.FrameFeatures
    span: np.ndarray  # the voiced span (what the span blocks read)


def clips(files: Sequence[str], blocks: Sequence[str]) -> Iterator[Optional[Clip]]:
    """Each file read and featurised with ``blocks`` as the product does; None for a clip with no speech."""
    from emotion_sensing.speech.audio import SAMPLE_RATE, load
    from emotion_sensing.speech.vector import Featuriser, prepare, voiced_span

    featuriser = Featuriser(blocks)
    for file in files:
        samples = load(file)
        utterance = featuriser(samples)
        if utterance.vector is None:
            yield None
            continue
        span = voiced_span(utterance.frames, prepare(samples, SAMPLE_RATE))
        yield Clip(samples, utterance.vector, utterance.frames, span)


def extracted(name: str, files: Sequence[str], work: Callable[[List[str]], list],
              empty: Dict[str, Tuple[Tuple[int, ...], Any]]) -> Dict[str, np.ndarray]:
    """Arrays of every clip from ``work`` (run over the files in two interleaved halves, one process
    each), cached in ~/.cache/emobot/speech/``name``.npz; a cached file is read, not recomputed.

    ``work`` returns, for each of its files in order, a tuple with one value per key of ``empty``
    (in that order), or None for a clip with no speech; such a clip gets ``empty``'s (shape, fill)
    and ``ok`` False."""
    from emotion_sensing.speech.datasets import cache_dir

    cache = cache_dir() / f"{name}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return {key: stored[key] for key in stored.files}
    t0 = time.time()
    print(f"extracting {len(files)} clips in {PROCESSES} processes (cached in {cache}) ...", flush=True)
    with ProcessPoolExecutor(PROCESSES) as pool:
        parts = list(pool.map(work, [list(files[k::PROCESSES]) for k in range(PROCESSES)]))
    results: List[Optional[tuple]] = [None] * len(files)
    for k, part in enumerate(parts):
        results[k::PROCESSES] = part
    out = {"ok": np.array([r is not None for r in results])}
    for i, (key, (shape, fill)) in enumerate(empty.items()):
        out[key] = np.stack([np.asarray(r[i]) if r is not None else np.full(shape, fill, np.float32) for r in results])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    print(f"extracted {len(files)} clips in {time.time() - t0:.0f} s", flush=True)
    return out


def accuracies(vectors: np.ndarray, rows, blocks: Optional[Sequence[str]],
               modes: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """The protocol's figures for one feature matrix (RAVDESS rows, then SAVEE's, as ``rows``):
    actors 19-24 per speaker, then SAVEE under each of ``modes`` (default: every cross mode)."""
    from emotion_sensing.speech.train import CROSS_MODES, accuracy_by_mode, fit

    model = fit("logreg", vectors[rows.train], rows.labels[rows.train], rows.speakers[rows.train], blocks=blocks)
    actors = accuracy_by_mode(model, vectors[rows.test], rows.labels[rows.test], rows.speakers[rows.test], ("speaker",))
    savee = accuracy_by_mode(model, vectors[rows.savee], rows.labels[rows.savee], rows.speakers[rows.savee],
                             modes or CROSS_MODES)
    return {"test actors": actors["speaker"], **{f"SAVEE {mode}": value for mode, value in savee.items()}}


def report(out: Dict[str, Any], path: Optional[Path]) -> int:
    """Write the figures to ``path`` (when given); the script's exit status."""
    if path is not None:
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}", flush=True)
    return 0
