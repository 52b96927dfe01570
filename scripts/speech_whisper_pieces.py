#!/usr/bin/env python
"""Voice: can the Whisper block be computed while the person speaks?

Whisper's encoder attends over its whole input, so the shipped block (the states after 3 layers,
mean and standard deviation over the voiced span) can only start once the utterance has ended: about
60 ms for 3 s on one AVX2 core, twice the project's 30 ms for a reading. Encoding the span in pieces
of L seconds as they arrive (each piece on its own, the states of every piece pooled together) would
leave only the last piece to encode after the last sample. This measures what that costs in accuracy,
beside librosa and eGeMAPS, with the same logistic regression trained on RAVDESS actors 1-18 and
tested on actors 19-24 and on SAVEE; and the encoder's time for a piece of each length.

A last piece shorter than 0.2 s is left out of the pooling (too short to carry much, and a stream
would not wait for it).

    .venv/bin/python scripts/speech_whisper_pieces.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"): about 7 minutes on 2 cores (1,920 clips),
the features cached in ~/.cache/emobot/speech/whisper-pieces-v1.npz.
"""
from __future__ import annotations

import time

import numpy as np
from script_arguments import arguments
from speech_protocol import FOLDERS, accuracies, clips, corpora, extracted, report

PIECES_S = (0.5, 1.0, 1.5, 2.0)
SHORTEST_S = 0.2
SAMPLE_RATE = 16000


def in_pieces(encoder, span: np.ndarray, seconds: float) -> np.ndarray:
    """The block with the span encoded in pieces of ``seconds`` (each by ``encoder.states``, as the
    block encodes a whole span): mean and std over every piece's states."""
    n = int(seconds * SAMPLE_RATE)
    pieces = [span[i:i + n] for i in range(0, len(span), n)]
    if len(pieces) > 1 and len(pieces[-1]) < SHORTEST_S * SAMPLE_RATE:
        pieces = pieces[:-1]
    states = np.concatenate([encoder.states(piece) for piece in pieces])
    return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)


def work(files):
    """(librosa+egemaps vector, the block in pieces of each PIECES_S then whole) of each clip; None: no speech."""
    from emotion_sensing.speech.vector import WhisperEncoder

    encoder = WhisperEncoder()
    return [clip and (clip.vector, np.stack([in_pieces(encoder, clip.span, s) for s in PIECES_S] + [encoder(clip.span)]))
            for clip in clips(files, ("librosa", "egemaps"))]


def piece_ms(repeats: int = 15) -> dict:
    """The encoder's p50 time (one thread) for one piece of each length, and for 3 s."""
    from emotion_sensing.speech.vector import WhisperEncoder

    encoder = WhisperEncoder(cpu_threads=1)
    rng = np.random.default_rng(0)
    out = {}
    for seconds in (*PIECES_S, 3.0):
        piece = (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 0.05).astype(np.float32)
        encoder(piece)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            encoder(piece)
            times.append((time.perf_counter() - t0) * 1000)
        out[f"{seconds:g} s"] = round(float(np.median(times)), 1)
    return out


def main() -> int:
    from emotion_sensing.speech.train import protocol_rows

    args = arguments(__doc__, FOLDERS)
    rav, sav = corpora(args.data)
    files = [str(f) for f in rav.files + sav.files]
    d = extracted("whisper-pieces-v1", files, work, {"A": ((544,), 0), "W": ((len(PIECES_S) + 1, 768), 0)})
    A, W = d["A"], d["W"]
    rows = protocol_rows(rav, sav, usable=d["ok"])
    out = {"encode_ms_p50": piece_ms()}
    print("encoder p50 ms for one piece:", out["encode_ms_p50"], flush=True)
    for k, name in enumerate([f"pieces of {s:g} s" for s in PIECES_S] + ["whole span (shipped)"]):
        out[name] = accuracies(np.concatenate([A, W[:, k]], 1), rows, ("librosa", "egemaps", "whisper"))
        print(name, out[name], flush=True)
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
