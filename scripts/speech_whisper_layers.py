#!/usr/bin/env python
"""Voice: which of Whisper tiny.en's encoder layers should the whisper block read?

The block pools (mean and standard deviation over the voiced span) the encoder's states. Whisper's
last layer feeds the transcript's decoder and carries what was said: on RAVDESS (two sentences) the
strongest block alone, on SAVEE (a different sentence per clip) the weakest. This measures the states
after each of the 4 layers (layer-normalised, float32; vector.WhisperEncoder with ``layers``) and the
encoder's own output (its learnt final norm) in int8 and float32, each beside librosa and eGeMAPS with
the same logistic regression (logreg, C=0.05, per-speaker standardisation), trained on RAVDESS actors
1-18, tested on actors 19-24 and on SAVEE under every standardisation of the card.

    .venv/bin/python scripts/speech_whisper_layers.py --data ../shared/datasets [--json out.json]

About 10 minutes on 2 cores (1,920 clips, five encoders), the features cached in
~/.cache/emobot/speech/whisper-layers-v1.npz. Figures: models/speech_emotion.md, "Whisper's layers".
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

# (name, encoder layers, CTranslate2 compute type): the states after 1, 2 and 3 layers, and the
# encoder's output (all 4 layers and its final norm) in both precisions.
ENCODERS = (("after 1 layer", 1, "float32"), ("after 2 layers", 2, "float32"), ("after 3 layers", 3, "float32"),
            ("output, float32", 4, "float32"), ("output, int8", 4, "int8"))
MODES = ("speaker", "pooled", "after0", "after3", "after10")


def work(files):
    """(librosa+egemaps vector, one whisper block per ENCODERS row) of each clip; None: no speech."""
    from emotion_sensing.speech.audio import load
    from emotion_sensing.speech.vector import Featuriser, WhisperEncoder, prepare, voiced_span

    feat = Featuriser(("librosa", "egemaps"))
    encoders = [WhisperEncoder(layers=layers, compute_type=kind) for _, layers, kind in ENCODERS]
    out = []
    for f in files:
        y = load(f)
        u = feat(y)
        if u.vector is None:
            out.append(None)
            continue
        span = voiced_span(u.frames, prepare(y, 16000))
        out.append((u.vector, np.stack([encode(span) for encode in encoders])))
    return out


def main() -> int:
    from emotion_sensing.speech.datasets import cache_dir, load_ravdess, load_savee

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    rav, sav = load_ravdess(args.data), load_savee(args.data)
    cache = cache_dir() / "whisper-layers-v1.npz"
    if cache.exists():
        d = np.load(cache)
        A, W, ok = d["A"], d["W"], d["ok"]
    else:
        files = [str(f) for f in rav.files + sav.files]
        t0 = time.time()
        with ProcessPoolExecutor(2) as ex:
            parts = list(ex.map(work, [files[0::2], files[1::2]]))
        res = [None] * len(files)
        res[0::2], res[1::2] = parts
        ok = np.array([r is not None for r in res])
        A = np.stack([r[0] if r else np.zeros(544, np.float32) for r in res])
        W = np.stack([r[1] if r else np.zeros((len(ENCODERS), 768), np.float32) for r in res])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, A=A, W=W, ok=ok)
        print(f"extracted {len(files)} clips in {time.time() - t0:.0f} s", flush=True)
    from emotion_sensing.speech.train import fit, predict, protocol_rows

    rows = protocol_rows(rav, sav, usable=ok)
    labels, speakers, train, test, savee = rows.labels, rows.speakers, rows.train, rows.test, rows.savee
    out = {}
    for k, (name, _, _) in enumerate(ENCODERS):
        for beside, X, blocks in (("librosa+egemaps+", np.concatenate([A, W[:, k]], 1), ("librosa", "egemaps", "whisper")),
                                  ("alone: ", W[:, k], ("whisper",))):
            m = fit("logreg", X[train], labels[train], speakers[train], blocks=blocks)
            r = {"test actors": float((np.array(predict(m, X[test], speakers[test], "speaker")) == labels[test]).mean())}
            for mode in MODES:
                r[f"SAVEE {mode}"] = float((np.array(predict(m, X[savee], speakers[savee], mode)) == labels[savee]).mean())
            out[beside + name] = {key: round(v, 4) for key, v in r.items()}
            print(beside + name, out[beside + name], flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
