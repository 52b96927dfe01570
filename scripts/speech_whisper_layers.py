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

import numpy as np
from script_arguments import arguments
from speech_protocol import FOLDERS, accuracies, clips, corpora, extracted, report

# (name, encoder layers, CTranslate2 compute type): the states after 1, 2 and 3 layers, and the
# encoder's output (all 4 layers and its final norm) in both precisions.
ENCODERS = (("after 1 layer", 1, "float32"), ("after 2 layers", 2, "float32"), ("after 3 layers", 3, "float32"),
            ("output, float32", 4, "float32"), ("output, int8", 4, "int8"))


def work(files):
    """(librosa+egemaps vector, one whisper block per ENCODERS row) of each clip; None: no speech."""
    from emotion_sensing.speech.vector import WhisperEncoder

    encoders = [WhisperEncoder(layers=layers, compute_type=kind) for _, layers, kind in ENCODERS]
    return [clip and (clip.vector, np.stack([encode(clip.span) for encode in encoders]))
            for clip in clips(files, ("librosa", "egemaps"))]


def main() -> int:
    from emotion_sensing.speech.train import protocol_rows

    args = arguments(__doc__, FOLDERS)
    rav, sav = corpora(args.data)
    files = [str(f) for f in rav.files + sav.files]
    d = extracted("whisper-layers-v1", files, work, {"A": ((544,), 0), "W": ((len(ENCODERS), 768), 0)})
    A, W = d["A"], d["W"]
    rows = protocol_rows(rav, sav, usable=d["ok"])
    out = {}
    for k, (name, _, _) in enumerate(ENCODERS):
        for beside, X, blocks in (("librosa+egemaps+", np.concatenate([A, W[:, k]], 1), ("librosa", "egemaps", "whisper")),
                                  ("alone: ", W[:, k], ("whisper",))):
            out[beside + name] = accuracies(X, rows, blocks)
            print(beside + name, out[beside + name], flush=True)
    return report(out, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
