#!/usr/bin/env python
"""Word error rate and time of the offline transcripts, for Whisper encoder windows side by side
(emotion_sensing/speech/transcribe.py, "Window").

    .venv/bin/python scripts/transcript_wer.py [--data ../shared/datasets] [--windows 30,10,15] [--json out.json]

Clips with known words: sentences of a support chat spoken by espeak-ng (short ones, and long ones of
three to eight sentences, 5-16 s), and, where ``--data`` holds RAVDESS, 80 of its clips (a fixed
sample over actors and emotions: statement 01 is "Kids are talking by the door", 02 "Dogs are
sitting by the door"). Words are compared lower-cased without punctuation, digits as words. One
core; about 4 minutes.
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path
from typing import List, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

SENTENCES = (
    "I have been waiting for my parcel for two weeks and nobody answers my emails",
    "I want a refund for the blender", "Can I talk to a person", "Thank you so much that was really helpful",
    "This is ridiculous I have called three times already", "Yes please", "No that is not what I asked for",
    "My card was charged twice for the same item", "Could you tell me when the shop opens tomorrow",
    "I am so happy with the new phone", "The delivery driver left the box in the rain",
    "Please cancel my subscription", "I forgot my password again", "Okay goodbye",
    "Where is my order", "I would like to change my delivery address", "The app keeps crashing when I open it",
    "Why was my account blocked", "I am really worried that someone stole my card details",
    "That is wonderful news thank you", "Nobody has called me back since Monday",
    "I need to speak to your manager right now", "Can you send me the invoice by email",
    "The shoes I ordered are the wrong size", "How long does a refund usually take",
    "I am scared I will lose all my money", "This is the worst service I have ever had",
    "Great that works for me", "I do not understand what you mean", "Please help me reset my password",
    "My package arrived damaged and the screen is broken", "Is there a discount for students",
    "I have been a customer for ten years", "What time do you close on Saturday",
    "I am sorry I did not mean to be rude", "The charger stopped working after one day",
)
LONG_GROUPS = ((0, 1, 2), (3, 4, 5, 6), (7, 8, 9), (10, 11, 12, 13, 14), (15, 16, 17), (18, 19, 20, 21),
               (22, 23, 24), (25, 26, 27, 28), (29, 30, 31), (32, 33, 34, 35),
               (0, 3, 6, 9, 12, 15, 18), (21, 24, 27, 30, 33, 1, 4), (7, 10, 13, 16, 19, 22, 25, 28))
RAVDESS_STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
RAVDESS_CLIPS = 80
NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
           "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


def words(text: str) -> List[str]:
    text = re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).replace("'", "")
    return [NUMBERS.get(word, word) for word in text.split()]


def word_edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[:], i
        for j, hyp in enumerate(hypothesis, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref != hyp))
    return row[-1]


def clips(datasets: Path) -> List[Tuple[str, str, np.ndarray]]:
    """(kind, reference words, 16 kHz samples) of every clip."""
    from emotion_sensing.speech.audio import load
    from emotion_sensing.speech.bench import spoken_sentence

    found = []
    for sentence in SENTENCES:
        samples = spoken_sentence(sentence)
        if samples is None:
            sys.exit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        found.append(("espeak-ng", sentence, samples))
    for group in LONG_GROUPS:
        text = ". ".join(SENTENCES[i] for i in group)
        found.append(("espeak-ng long", text, spoken_sentence(text)))
    files = sorted((datasets / "ravdess").glob("Actor_*/*.flac"))
    if files:
        random.Random(0).shuffle(files)
        for path in files[:RAVDESS_CLIPS]:
            found.append(("RAVDESS", RAVDESS_STATEMENTS[path.name.split("-")[4]], load(path)))
    else:
        print(f"no RAVDESS under {datasets}: espeak-ng sentences only", file=sys.stderr)
    return found


def measure(window_s: float, found) -> dict:
    from emotion_sensing.speech.bench import _one_core
    from emotion_sensing.speech.transcribe import Transcriber

    _one_core()
    transcriber = Transcriber("whisper", cpu_threads=1, window_s=window_s)
    transcriber.load()
    transcriber.transcribe(found[0][2])  # warm-up
    errors, totals, times, worst = {}, {}, [], (0, "")
    for kind, reference, samples in found:
        transcript = transcriber.transcribe(samples)
        times.append(transcript.seconds * 1000)
        edits = word_edits(words(reference), words(transcript.text))
        errors[kind] = errors.get(kind, 0) + edits
        totals[kind] = totals.get(kind, 0) + len(words(reference))
        if edits > worst[0]:
            worst = (edits, f"{reference!r} -> {transcript.text!r}")
    return {
        "window_s": window_s,
        "wer": round(sum(errors.values()) / sum(totals.values()), 4),
        "wer_by_kind": {kind: round(errors[kind] / totals[kind], 4) for kind in totals},
        "clips": len(found),
        "ms": {"p50": round(float(np.median(times))), "p95": round(float(np.percentile(times, 95))),
               "max": round(max(times))},
        "worst": worst[1],
    }


def main(argv=None) -> int:
    args = arguments(__doc__, (), argv, json="also write the results here", more=lambda parser: parser.add_argument(
        "--windows", default="30,10", help="encoder windows to compare, in seconds (10-30)"))
    found = clips(args.data)
    durations = [samples.size / 16000 for _, _, samples in found]
    print(f"{len(found)} clips, {min(durations):.1f}-{max(durations):.1f} s", flush=True)
    results = []
    for window in (float(w) for w in args.windows.split(",")):
        started = time.time()
        result = measure(window, found)
        results.append(result)
        print(f"window {window:g} s: WER {result['wer']:.4f} {result['wer_by_kind']}, "
              f"p50 {result['ms']['p50']} ms, p95 {result['ms']['p95']} ms, max {result['ms']['max']} ms "
              f"({time.time() - started:.0f} s); worst: {result['worst']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
