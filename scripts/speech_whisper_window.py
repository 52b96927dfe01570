#!/usr/bin/env python
"""Voice: can the Whisper block be pooled from the transcript's own encoding (the utterance padded
to the 10 s window, as transcribe.py encodes it) instead of a second encoding of the voiced span?

The transcript's encoding runs all 4 of the encoder's layers; the shipped block reads the states
after 3 (scripts/speech_whisper_layers.py). So this compares, beside librosa and eGeMAPS, with the
same logistic regression trained on RAVDESS actors 1-18 and tested on actors 19-24 and on SAVEE:
the encoder's output pooled from the 10 s window over the voiced span's frames (shared with a
transcript), the encoder's output over the voiced span alone (the block of 5 December,
``whisper_final``), and the shipped block (after 3 layers, over the voiced span).

    .venv/bin/python scripts/speech_whisper_window.py --data ../shared/datasets [--json out.json]

Measured and not built (models/speech_emotion.md, "Limits"): about 10 minutes on 2 cores (1,920 clips),
the features cached in ~/.cache/emobot/speech/whisper-window-v2.npz.
"""
from __future__ import annotations

import time

import numpy as np
from script_arguments import arguments
from speech_protocol import FOLDERS, accuracies, clips, corpora, extracted, report

BLOCKS = ("librosa", "egemaps", "whisper", "whisper_final")


def work(files):
    """(librosa+egemaps+whisper+whisper_final vector, window-pooled Whisper output, window encoding ms)
    of each clip; None: no speech."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from emotion_sensing.speech.audio import SAMPLE_RATE
    from emotion_sensing.speech.transcribe import encoder_window, whisper_model_dir
    from emotion_sensing.speech.vector import voiced_bounds

    model = ctranslate2.models.Whisper(str(whisper_model_dir()), device="cpu", compute_type="int8", intra_threads=1)
    mel = FeatureExtractor(feature_size=80)
    out = []
    for clip in clips(files, BLOCKS):
        if clip is None:
            out.append(None)
            continue
        t0 = time.perf_counter()
        # As faster-whisper prepares a transcript: the whole utterance's log-mel padded to 30 s, then
        # transcribe.py's window (10 s for an utterance under 5 s).
        m = encoder_window(pad_or_trim(mel(clip.samples)[:, :-1])[np.newaxis])  # faster-whisper: the content frames
        states = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(m, dtype=np.float32))))[0]
        ms = (time.perf_counter() - t0) * 1000
        start, end = voiced_bounds(clip.frames, len(clip.samples))  # the span the span blocks encode
        start_s, end_s = start / SAMPLE_RATE, end / SAMPLE_RATE
        # The encoder's states come 50 a second (two log-mel frames each).
        a, b = int(start_s * 50), max(int(np.ceil(end_s * 50)), int(start_s * 50) + 1)
        s = states[a:b]
        out.append((clip.vector, np.concatenate([s.mean(0), s.std(0)]).astype(np.float32), ms))
    return out


def main() -> int:
    from emotion_sensing.speech.train import protocol_rows
    from emotion_sensing.speech.vector import layout, width

    args = arguments(__doc__, FOLDERS)
    rav, sav = corpora(args.data)
    files = [str(f) for f in rav.files + sav.files]
    d = extracted("whisper-window-v2", files, work,
                  {"A": ((width(BLOCKS),), 0), "B": ((768,), 0), "ms": ((), np.nan)})
    A, B, ms = d["A"], d["B"], d["ms"]
    rows = protocol_rows(rav, sav, usable=d["ok"])
    where = layout(BLOCKS)
    base = A[:, :where["egemaps"].stop]
    out = {"window_encode_ms_p50": float(np.nanpercentile(ms, 50)), "window_encode_ms_p95": float(np.nanpercentile(ms, 95))}
    three = ("librosa", "egemaps", "whisper")
    for name, X, blocks in (
        ("whisper after 3 layers on the voiced span (shipped)", np.concatenate([base, A[:, where["whisper"]]], 1), three),
        ("whisper output on the voiced span (whisper_final)", np.concatenate([base, A[:, where["whisper_final"]]], 1), three),
        ("whisper output pooled from the 10 s window", np.concatenate([base, B], 1), three),
        ("alone: whisper output pooled from the 10 s window", B, ("whisper",)),
        ("alone: whisper output on the voiced span", A[:, where["whisper_final"]], ("whisper",)),
    ):
        out[name] = accuracies(X, rows, blocks)
        print(name, out[name], flush=True)
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
