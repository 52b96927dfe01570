#!/usr/bin/env python
"""Voice: can the Whisper block be pooled from the transcript's own encoding (the utterance padded
to the 10 s window, as transcribe.py encodes it) instead of a second encoding of the voiced span?
Same logistic regression (logreg, C=0.05, per-speaker standardisation), trained on RAVDESS 1-18,
tested on actors 19-24 and on SAVEE; librosa+egemaps+whisper(span) against
librosa+egemaps+whisper(window, pooled over the voiced span's encoder frames).

    .venv/bin/python scripts/speech_whisper_window.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"): about 4 minutes on 2 cores (1,920 clips),
the features cached in ~/.cache/emobot/speech/whisper-window.npz.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotion_sensing.config import DEFAULT_DATASETS_DIR  # noqa: E402


def work(files):
    """(shipped vector, window-pooled Whisper block, window encoding ms) of each clip; None: no speech."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from emotion_sensing.speech.audio import SAMPLE_RATE, load
    from emotion_sensing.speech.transcribe import encoder_window, whisper_model_dir
    from emotion_sensing.speech.vector import Featuriser, voiced_bounds

    feat = Featuriser(("librosa", "egemaps", "whisper"))
    model = ctranslate2.models.Whisper(str(whisper_model_dir()), device="cpu", compute_type="int8", intra_threads=1)
    mel = FeatureExtractor(feature_size=80)
    out = []
    for f in files:
        y = load(f)
        u = feat(y)
        if u.vector is None:
            out.append(None)
            continue
        t0 = time.perf_counter()
        # As faster-whisper prepares a transcript: the whole utterance's log-mel padded to 30 s, then
        # transcribe.py's window (10 s for an utterance under 5 s).
        m = encoder_window(pad_or_trim(mel(y)[:, :-1])[np.newaxis])  # faster-whisper: the content frames
        states = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(m, dtype=np.float32))))[0]
        ms = (time.perf_counter() - t0) * 1000
        start, end = voiced_bounds(u.frames, len(y))  # the span the shipped Whisper block encodes
        start_s, end_s = start / SAMPLE_RATE, end / SAMPLE_RATE
        # The encoder's states come 50 a second (two log-mel frames each).
        a, b = int(start_s * 50), max(int(np.ceil(end_s * 50)), int(start_s * 50) + 1)
        s = states[a:b]
        out.append((u.vector, np.concatenate([s.mean(0), s.std(0)]).astype(np.float32), ms))
    return out


def main() -> int:
    from emotion_sensing.speech.datasets import cache_dir, load_ravdess, load_savee

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    rav, sav = load_ravdess(args.data), load_savee(args.data)
    cache = cache_dir() / "whisper-window.npz"
    if cache.exists():
        d = np.load(cache)
        A, B, ok, ms = d["A"], d["B"], d["ok"], d["ms"]
    else:
        files = [str(f) for f in rav.files + sav.files]
        chunks = [files[i::2] for i in range(2)]
        t0 = time.time()
        with ProcessPoolExecutor(2) as ex:
            parts = list(ex.map(work, chunks))
        res = [None] * len(files)
        for k in range(2):
            res[k::2] = parts[k]
        ok = np.array([r is not None for r in res])
        A = np.stack([r[0] if r else np.zeros(1312, np.float32) for r in res])
        B = np.stack([r[1] if r else np.zeros(768, np.float32) for r in res])
        ms = np.array([r[2] if r else np.nan for r in res])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, A=A, B=B, ok=ok, ms=ms)
        print(f"extracted {len(files)} clips in {time.time()-t0:.0f} s", flush=True)
    from emotion_sensing.speech.train import fit, predict, protocol_rows
    rows = protocol_rows(rav, sav, usable=ok)
    labels, speakers, train, test, savee = rows.labels, rows.speakers, rows.train, rows.test, rows.savee
    Bfull = np.concatenate([A[:, :544], B], 1)
    out = {"window_encode_ms_p50": float(np.nanpercentile(ms, 50)), "window_encode_ms_p95": float(np.nanpercentile(ms, 95))}
    for name, X in (("whisper on the voiced span (shipped)", A), ("whisper pooled from the 10 s window", Bfull),
                    ("window whisper alone", B), ("span whisper alone", A[:, 544:])):
        blocks = ("librosa", "egemaps", "whisper") if X.shape[1] == 1312 else (("whisper",) if X.shape[1] == 768 else None)
        m = fit("logreg", X[train], labels[train], speakers[train], blocks=blocks)
        r = {"test actors": float((np.array(predict(m, X[test], speakers[test], "speaker")) == labels[test]).mean())}
        for mode in ("speaker", "pooled", "after0"):
            r[f"SAVEE {mode}"] = float((np.array(predict(m, X[savee], speakers[savee], mode)) == labels[savee]).mean())
        out[name] = {k: round(v, 4) for k, v in r.items()}
        print(name, out[name], flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
