#!/usr/bin/env python
"""Does the previous turn help the fine-tuned text model on DailyDialog? Measured and not shipped
(see models/text_emotion.md, "Limits").

    .venv/bin/python scripts/text_context_probe.py --data ../shared/datasets [--json out.json]

A residual term on the shipped model's logits: logits = z(message) + V f(context) + c, fitted on
DailyDialog's training dialogues (the recipe's class weights, (inverse frequency)^0.4; L2 chosen on
the validation split's macro-F1), scored with the shipped temperature. f(context) is the context
turn's mean-pooled embedding from the fine-tuned encoder, its calibrated probabilities and a flag
for "there is one" (zeros at a dialogue's start). Context turns:

- ``other``: the utterance just before (the other party's; at run time, the bot's last message);
- ``own``: the same speaker's previous utterance, two back (at run time, the user's previous message);
- ``both``; and ``bias``, the constant alone, to tell a shift of the class priors from context.

**Bot in the loop** (``bot_in_the_loop``): the chosen fit with the other party's turn replaced by
what the demo bot would have said (each of domain.yml's responses with per-emotion variations, and
``utter_default``), the variation picked by the assistant's own reading, with that
same residual, of the speaker's previous message, row by row in dialogue order: the feedback a chat
would have. Also the echo: for each variation, how much more often the next message is read as that
emotion than after the unconditioned text, and the share of readings that change with it.

The encoder runs once over DailyDialog (about 103,000 utterances, 3-4 minutes on 2 cores), then
each fit takes a minute or two; about 25 minutes in all.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from script_arguments import arguments  # noqa: E402

L2 = (1e-4, 1e-3, 1e-2)


def pooled_embeddings(adapter_path: Path, texts_by_split):
    """The fine-tuned encoder's mean-pooled states (the int8 runtime's), through a copy of the
    adapter whose head is the identity."""
    import tempfile

    from emotion_sensing.text.encoder import HIDDEN, Adapter, EncoderClassifier

    adapter = Adapter.load(adapter_path)
    arrays = dict(adapter.arrays, **{"head/kernel": np.eye(HIDDEN, dtype=np.float32),
                                     "head/bias": np.zeros(HIDDEN, np.float32)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Adapter(arrays, dict(adapter.meta, labels=[f"d{i}" for i in range(HIDDEN)])).save(Path(tmp) / "p.npz")
        encoder = EncoderClassifier(path)
        out = {}
        for name, texts in texts_by_split.items():
            started = time.time()
            out[name] = encoder.logits(texts)
            print(f"encoder: {name} ({len(texts):,} utterances, {time.time() - started:.0f} s)", flush=True)
    return adapter, out


def context_features(split, pooled, probs, back: int) -> np.ndarray:
    """[pooled, probabilities, 1] of the utterance ``back`` turns before each one in its dialogue
    (zeros where there is none). Rows keep dialogue order; ``split.previous`` marks the starts."""
    n, d = len(split.texts), pooled.shape[1] + probs.shape[1] + 1
    out = np.zeros((n, d), np.float32)
    for i in range(n):
        j = i - back
        if j >= 0 and all(split.previous[i - m] == split.texts[i - m - 1] for m in range(back)):
            out[i] = np.concatenate([pooled[j], probs[j], [1.0]])
    return out


def fit_residual(z, f, y, l2: float, n_labels: int):
    """(V, c) minimising the class-weighted cross-entropy of z + f V + c, plus l2/2 |V|^2."""
    from scipy.optimize import minimize

    from emotion_sensing.text.finetune import Corpus, class_weights
    from emotion_sensing.text.train import default_recipe

    # The fine-tuning recipe's own class weights (mean 1 over the rows).
    weights = class_weights([Corpus("dailydialog", [], y)], n_labels, default_recipe().class_weight_power)[y]
    m, rows = f.shape[1], np.arange(len(y))

    def loss(theta):
        v, c = theta[: m * n_labels].reshape(m, n_labels), theta[m * n_labels:]
        logits = z + f @ v + c
        logits -= logits.max(1, keepdims=True)
        lse = np.log(np.exp(logits).sum(1))
        nll = (weights * (lse - logits[rows, y])).mean()
        grad = np.exp(logits - lse[:, None])
        grad[rows, y] -= 1
        grad *= weights[:, None] / len(y)
        return nll + 0.5 * l2 * (v ** 2).sum(), np.concatenate([(f.T @ grad + l2 * v).ravel(), grad.sum(0)])

    theta = minimize(loss, np.zeros(m * n_labels + n_labels), jac=True, method="L-BFGS-B",
                     options={"maxiter": 300}).x
    return theta[: m * n_labels].reshape(m, n_labels), theta[m * n_labels:]


def bot_replies(domain_path: Path) -> Dict[str, Dict[Optional[str], str]]:
    """{response: {emotion or None (the unconditioned text): text}} for domain.yml's responses
    that vary with the user's emotion, and ``utter_default``."""
    import yaml

    responses = yaml.safe_load(Path(domain_path).read_text())["responses"]
    out = {}
    for key, variations in responses.items():
        if len(variations) > 1 or key == "utter_default":
            out[key] = {(v["condition"][0]["value"] if v.get("condition") else None): v["text"] for v in variations}
    return out


def bot_in_the_loop(z, other, own, v, c, replies, bot_features, canonical, temperature) -> Dict[str, Any]:
    """One response's loop over a split's rows in dialogue order (see the module's docstring).
    ``other``, ``own``: the split's context features (:func:`context_features`, one and two back;
    the bot's reply takes the other party's place, and the flag in their last column says where
    there is a turn); ``v``, ``c``: the residual fitted on [other party, own];
    ``bot_features``: {reply text: its context features}; ``canonical``: probabilities -> the
    seven labels. Returns the loop's logits, the echo and the flips per variation."""
    from emotion_sensing.calibration import softmax
    from emotion_sensing.labels import LABELS

    width = other.shape[1]
    has_other, has_own = other[:, -1] == 1, own[:, -1] == 1

    def reply(reading: Optional[str]) -> str:
        return replies.get(reading, replies[None])

    logits = np.array(z, dtype=np.float64)
    readings: List[Optional[str]] = [None] * len(z)
    for i in range(len(z)):
        other = np.zeros(width, np.float32)
        if has_own[i]:
            other = bot_features[reply(readings[i - 2])]
        elif has_other[i]:  # the speaker's first message after the bot's opening reply
            other = bot_features[replies[None]]
        logits[i] = z[i] + np.concatenate([other, own[i]]) @ v + c
        readings[i] = LABELS[int(canonical(softmax(logits[i:i + 1], temperature))[0].argmax())]
    rows = np.flatnonzero(has_own)
    read = {}
    for emotion in [None] + [e for e in replies if e is not None]:
        f = np.concatenate([np.tile(bot_features[reply(emotion)], (len(rows), 1)), own[rows]], 1)
        read[emotion] = canonical(softmax(z[rows] + f @ v + c, temperature)).argmax(1)
    base = read.pop(None)
    echo = {e: round(float((p == LABELS.index(e)).mean() - (base == LABELS.index(e)).mean()), 4) for e, p in read.items()}
    flips = {e: round(float((p != base).mean()), 4) for e, p in read.items()}
    return {"logits": logits, "echo": echo, "flips": flips}


def main() -> int:
    from emotion_sensing.calibration import softmax
    from emotion_sensing.labels import LABELS
    from emotion_sensing.text.train import CURIOSITY_AS, load_split, score, to_canonical

    args = arguments(__doc__, ("dailydialog",), model="text_emotion.npz", more=lambda parser: parser.add_argument(
        "--domain", type=Path, default=Path(__file__).resolve().parents[1] / "domain.yml",
        help="the bot's responses, for the bot-in-the-loop figures (default: the demo's domain.yml)"))
    splits = {w: load_split(args.data, "dailydialog", w) for w in ("train", "val", "test")}
    adapter, pooled = pooled_embeddings(args.model, {w: s.texts for w, s in splits.items()})
    labels, temperature = adapter.labels, adapter.temperature
    head_w, head_b = adapter.arrays["head/kernel"], adapter.arrays["head/bias"]
    z = {w: pooled[w] @ head_w + head_b for w in splits}
    probs = {w: softmax(z[w], temperature) for w in splits}
    y = np.array([labels.index(label) for label in splits["train"].labels])
    other = {w: context_features(s, pooled[w], probs[w], 1) for w, s in splits.items()}
    own = {w: context_features(s, pooled[w], probs[w], 2) for w, s in splits.items()}
    variants = {"bias": {w: np.zeros((len(s), 0), np.float32) for w, s in splits.items()}, "other": other, "own": own,
                "both": {w: np.concatenate([other[w], own[w]], 1) for w in splits}}

    def figures(which, logits):
        split = splits[which]
        result = score(split, logits, labels, temperature)
        canonical = to_canonical(softmax(logits, temperature), labels, CURIOSITY_AS["dailydialog"])
        truth = [LABELS.index(label) for label in split.labels]
        nll = float(-np.log(np.clip(canonical[np.arange(len(truth)), truth], 1e-12, None)).mean())
        return {**{k: result[k] for k in ("accuracy", "macro_f1", "micro_f1_emotions", "ece")}, "nll": round(nll, 4)}

    out = {"model": str(args.model), "class_weights": "the fine-tuning recipe's (finetune.class_weights)",
           "none": {"validation": figures("val", z["val"]), "test": figures("test", z["test"])}, "variants": []}
    print(f"shipped model alone: validation {out['none']['validation']}, test {out['none']['test']}", flush=True)
    fits = {}
    for name, f in variants.items():
        rows = []
        for l2 in (L2[:1] if name == "bias" else L2):
            started = time.time()
            v, c = fit_residual(z["train"], f["train"], y, l2, len(labels))
            fits[(name, l2)] = (v, c)
            row = {"context": name, "l2": l2, "validation": figures("val", z["val"] + f["val"] @ v + c),
                   "test": figures("test", z["test"] + f["test"] @ v + c)}
            rows.append(row)
            print(f"{name}, l2 {l2:g} ({time.time() - started:.0f} s): validation {row['validation']}, "
                  f"test {row['test']}", flush=True)
        best = max(rows, key=lambda r: r["validation"]["macro_f1"])
        out["variants"].append({**best, "chosen_on": "validation macro-F1", "curve": rows})
        print(f"{name}: chosen l2 {best['l2']:g}, test macro-F1 {best['test']['macro_f1']:.4f}", flush=True)
    # One choice across the variants, by the same rule; and what validation log-loss would choose
    # (DailyDialog's validation split has 3 disgust and 11 fear utterances, so its macro-F1 is noisy).
    every = [row for variant in out["variants"] for row in variant["curve"]]
    for rule, key in (("validation macro-F1", lambda r: r["validation"]["macro_f1"]),
                      ("validation log-loss", lambda r: -r["validation"]["nll"])):
        best = max(every, key=key)
        out.setdefault("chosen", {})[rule] = best
        print(f"by {rule}: {best['context']}, l2 {best['l2']:g}: test macro-F1 {best['test']['macro_f1']:.4f}, "
              f"micro-F1 (emotions) {best['test']['micro_f1_emotions']:.4f}", flush=True)
    # The bot in the loop, for the fit validation log-loss chose (on 5 December both rules chose the same),
    # when that fit reads the other party's turn.
    chosen = out["chosen"]["validation log-loss"]
    if chosen["context"] == "both":
        v, c = fits[("both", chosen["l2"])]
        replies = bot_replies(args.domain)
        texts = sorted({text for variations in replies.values() for text in variations.values()})
        _, bot_pooled = pooled_embeddings(args.model, {"bot replies": texts})
        bot_pooled = bot_pooled["bot replies"]
        bot_probs = softmax(bot_pooled @ head_w + head_b, temperature)
        bot_features = {t: np.concatenate([bot_pooled[i], bot_probs[i], [1.0]]).astype(np.float32)
                        for i, t in enumerate(texts)}
        canonical = lambda p: to_canonical(p, labels, CURIOSITY_AS["dailydialog"])  # noqa: E731
        out["bot_in_the_loop"] = {"fit": {"context": "both", "l2": chosen["l2"]}, "responses": {}}
        for key, variations in replies.items():
            loop = bot_in_the_loop(z["test"], other["test"], own["test"], v, c, variations, bot_features, canonical,
                                   temperature)
            row = {"test": figures("test", loop["logits"]), "echo": loop["echo"], "flips": loop["flips"]}
            out["bot_in_the_loop"]["responses"][key] = row
            print(f"bot in the loop, {key}: test {row['test']}, echo {row['echo']}, flips {row['flips']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
