"""Learned fusion: the parameters that turn the modalities' calibrated readings into one state.

One form covers the three candidates ``emobot train fusion`` compares (fusion_train.py). For the
modalities present, with ``l_m`` the log of modality m's calibrated probabilities and ``a_m`` its
presence (1 for a fresh reading, decaying towards 0 as it ages)::

    z = b + sum_m a_m * (W_m @ l_m + c_m)          fused probabilities = softmax(z)

- ``weighted``: ``W_m = w_m * I``: each modality's log-probabilities scaled by one learned weight
  (a log-linear pool), plus a per-modality class offset;
- ``product``: ``W_m = I``: the product of the calibrated experts, with learned offsets that
  correct each expert's class prior;
- ``stacking``: ``W_m`` a full 7x7 matrix: a multinomial logistic regression over every
  modality's log-probabilities and the availability mask.

The words of a chat message carry the person's emotion only sometimes: most messages are
content-free ("ok", an order number) whatever the person feels. So text enters as a mixture,
``log(r * p_y + (1 - r) * p_neutral)`` for each emotion y (``log p_neutral`` for neutral), with the
carry rate ``r`` fitted: a neutral reading of the words then says little about the person, a
confident emotional one says a lot (``r = 1``: the reading as it is). A message alone (no face,
no voice, no earlier turn) keeps its own reading: see :meth:`LearnedFusion.terms`.

Mood carries across turns: the previous turn's fused state enters as one more term,
``beta * 0.5 ** (age / half_life) * log(k * previous probs + (1 - k) / K)``, so a content-free
message after an angry one stays angry-leaning while a message that carries a new emotion moves
the state (after a turn, words alone enter as the mixture with their own carry rate,
``mood_text_carry``). ``k`` (``mood_keep``) is how often the emotion is the one of the turn
before: the rest of the time it may be any. Without it (``k = 1``) the log of a confident turn's
state vetoes every other label: after "thanks, that is great!" (happy 0.91, sad 0.0004) the
message "actually I am really sad, my dog died yesterday" (sad 0.79) fused to happy 0.44.

The parameters live in ``models/fusion.json`` (card: ``models/fusion.md``); fusion.py falls back
to its hand-set weights when the file is absent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.calibration import softmax
from emotion_sensing.labels import LABELS

MODEL_FILE = "fusion.json"
CARD_FILE = "fusion.md"
# The recognizers' files in the models folder whose readings the fusion is fitted on (the face's
# networks in both precisions, its ensemble and temperature in face_emotion.json). The fusion
# records their fingerprints when it is fitted; a change to any of them wants `emobot train fusion`.
RECOGNIZER_FILES = ("text_emotion.npz", "speech_emotion.joblib", "face_emotion.json", "face_emotion.tflite",
                    "face_emotion.int8.tflite", "face_emotion.fer.tflite", "face_emotion.fer.int8.tflite")
FORMAT = 1
MODALITIES: Tuple[str, ...] = ("text", "face", "voice")
KINDS: Tuple[str, ...] = ("weighted", "product", "stacking")
LOG_FLOOR = 1e-4  # probabilities are clipped here before the log: one model's 0 is not a veto
MOOD_FLOOR = 0.01  # below this decay the previous turn's state no longer counts (13 min at 2 min)
K = len(LABELS)


def log_probs(probs: Sequence[float]) -> np.ndarray:
    """Logs of a distribution (or of each row), floored at LOG_FLOOR and renormalised."""
    p = np.maximum(np.asarray(probs, dtype=np.float64), LOG_FLOOR)
    return np.log(p / p.sum(axis=-1, keepdims=True))


@dataclass
class LearnedFusion:
    """Fitted fusion parameters (see the module doc) and how they were chosen."""

    kind: str
    weights: np.ndarray  # (M, K, K): W_m
    offsets: np.ndarray  # (M, K): c_m
    bias: np.ndarray  # (K,): b
    mood_weight: float = 0.0  # beta
    mood_half_life_s: float = 120.0
    unknown_below: float = 0.0
    text_carry: float = 1.0  # r: how often a message's words carry the person's emotion
    mood_text_carry: float = 1.0  # r of a turn with only words and a mood (fitted with beta)
    mood_keep: float = 1.0  # k: how often the emotion stays the previous turn's (fitted with beta)
    meta: Dict[str, Any] = field(default_factory=dict)

    def terms(self, logp: np.ndarray, presence: np.ndarray, mood: Optional[Sequence[float]] = None,
              mood_factor: float = 1.0, mood_weight: Optional[float] = None,
              mood_text_carry: Optional[float] = None,
              mood_keep: Optional[float] = None) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """One turn's fused logits and each part's term (by modality, and "mood").

        - Words only, no mood: the text reading as it is (its own calibration, fitted on the
          corpora's real mix of labels, is the better account of a lone message than the
          balanced benchmark's; text-only fusion leaves the reading unchanged).
        - Words only, after a turn: the words as a mixture with carry rate ``mood_text_carry``
          plus ``beta * decay * log(k * mood + (1 - k) / K)``, so a content-free message keeps the
          mood and an emotional one moves it.
        - A face or a voice present: the learned combination, plus the same mood term.
        - Words with a face or voice reading that has aged (presence between 0 and 1): a mixture
          of the two above, ``(1 - s) * p(words only) + s * p(learned)``, where
          ``s = 1 - prod(1 - a_m)`` over face and voice (the chance that the expression or the
          voice still holds) and the learned part sees their presences divided by ``s``. The
          state then moves smoothly from the message's own reading (``s`` -> 0) to the fitted
          combination (a fresh reading, ``s = 1``); the mood term is added to the mixture's
          logits, and the modalities' terms (for the shares) are mixed by the same weights.
          Without it, a face 10 s old (presence 0.1) switched a message to the learned regime,
          where the words weigh as little as on the balanced benchmark, and turned "where is my
          order?" from neutral 0.99 into ``unknown`` 0.20 (issue 21: at 50 conversations on 2
          cores, sparse face readings made 32% of turns unknown).

        A neutral state is no mood: after a turn fused as neutral the next one starts from its own
        evidence, so an emotion that begins is read at once. (With a neutral mood, "I'm furious, my
        order never arrived" after "where is my order?" read neutral: the neutral prior of a
        confident neutral turn outweighed the flattened words. CI caught it.)
        """
        logp = np.asarray(logp, dtype=np.float64)
        presence = np.asarray(presence, dtype=np.float64)
        beta = self.mood_weight if mood_weight is None else mood_weight
        carry = self.mood_text_carry if mood_text_carry is None else mood_text_carry
        keep = self.mood_keep if mood_keep is None else mood_keep
        if mood is not None and int(np.argmax(mood)) == NEUTRAL:
            mood = None
        weight = beta * mood_factor if mood is not None else 0.0
        seen = float(_seen(presence))
        if presence[TEXT] > 0 and seen == 0.0:
            z, parts = self._words_terms(logp, carry if weight > 0 else 1.0)
        elif presence[TEXT] > 0 and seen < 1.0:
            words_z, words = self._words_terms(logp, carry if weight > 0 else 1.0)
            full_z, full = self._learned_terms(logp, _learned_presence(presence, seen))
            parts = {name: seen * term for name, term in full.items()}
            parts["text"] = parts["text"] + (1.0 - seen) * words["text"]
            z = _mix(words_z, full_z, seen)
        else:
            z, parts = self._learned_terms(logp, presence)
        if weight > 0:
            parts["mood"] = weight * mood_prior(mood, keep)
            z = z + parts["mood"]
        return z, parts

    @staticmethod
    def _words_terms(logp: np.ndarray, carry: float) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """The words alone: the reading as it is (``carry`` 1), or as the mixture with ``carry``."""
        text = carry_text(logp, carry)[TEXT]
        return text.copy(), {"text": text}

    def _learned_terms(self, logp: np.ndarray, presence: np.ndarray) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        evidence = self.evidence(logp, presence)
        return self.bias + evidence.sum(axis=0), {m: evidence[i] for i, m in enumerate(MODALITIES) if presence[i] > 0}

    def evidence(self, logp: np.ndarray, presence: np.ndarray) -> np.ndarray:
        """Per-modality logit terms ``a_m * (W_m @ l_m + c_m)``: (M, K) for one row, (N, M, K) for many."""
        logp = carry_text(np.asarray(logp, dtype=np.float64), self.text_carry)
        presence = np.asarray(presence, dtype=np.float64)
        terms = np.einsum("mij,...mj->...mi", self.weights, logp) + self.offsets
        return presence[..., None] * terms

    def logits(self, logp: np.ndarray, presence: np.ndarray, mood: Optional[np.ndarray] = None,
               mood_factor: float = 1.0, mood_weight: Optional[float] = None,
               mood_text_carry: Optional[float] = None, mood_keep: Optional[float] = None) -> np.ndarray:
        """Fused logits of many rows, as :meth:`terms` gives them one by one: ``logp`` (N, M, K),
        ``presence`` (N, M), and ``mood`` (N, K) each row's previous state (none: no mood; a row
        whose mood reads neutral has none, as in :meth:`terms`)."""
        logp = np.asarray(logp, dtype=np.float64)
        presence = np.asarray(presence, dtype=np.float64)
        seen = _seen(presence)
        z = self.bias + self.evidence(logp, _learned_presence(presence, seen)).sum(axis=-2)
        words = logp[..., TEXT, :]
        weight = np.zeros(words.shape[:-1])
        if mood is not None:
            mood = np.asarray(mood, dtype=np.float64)
            beta = self.mood_weight if mood_weight is None else mood_weight
            carry = self.mood_text_carry if mood_text_carry is None else mood_text_carry
            keep = self.mood_keep if mood_keep is None else mood_keep
            weight = np.where(mood.argmax(axis=-1) != NEUTRAL, beta * mood_factor, 0.0)
            # After a turn the words enter with their own carry rate (rows with a mood only).
            words = np.where((weight > 0)[..., None], carry_text(logp, carry)[..., TEXT, :], words)
        # Words only (seen 0): the text reading; words with aged face or voice: the mixture of terms().
        z = _mix(words, z, np.where(presence[..., TEXT] > 0, seen, 1.0))
        if mood is not None and np.any(weight > 0):
            z = z + weight[..., None] * mood_prior(mood, keep)
        return z

    def mood_factor(self, age_s: float) -> float:
        """How much a mood ``age_s`` old still counts: halving every half-life, 0 below MOOD_FLOOR."""
        if self.mood_half_life_s <= 0:
            return 1.0
        factor = float(0.5 ** (max(age_s, 0.0) / self.mood_half_life_s))
        return factor if factor >= MOOD_FLOOR else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": self.kind,
            "labels": list(LABELS),
            "modalities": list(MODALITIES),
            "weights": np.round(self.weights, 6).tolist(),
            "offsets": np.round(self.offsets, 6).tolist(),
            "bias": np.round(self.bias, 6).tolist(),
            "mood_weight": round(float(self.mood_weight), 6),
            "mood_half_life_s": float(self.mood_half_life_s),
            "unknown_below": round(float(self.unknown_below), 6),
            "text_carry": round(float(self.text_carry), 6),
            "mood_text_carry": round(float(self.mood_text_carry), 6),
            "mood_keep": round(float(self.mood_keep), 6),
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> LearnedFusion:
        if data.get("format") != FORMAT:
            raise ValueError(f"fusion model format {data.get('format')!r}; this code reads {FORMAT}")
        if list(data.get("labels", [])) != list(LABELS) or list(data.get("modalities", [])) != list(MODALITIES):
            raise ValueError("fusion model was fitted for other labels or modalities: retrain it (emobot train fusion)")
        weights = np.asarray(data["weights"], dtype=np.float64)
        offsets = np.asarray(data["offsets"], dtype=np.float64)
        bias = np.asarray(data["bias"], dtype=np.float64)
        m = len(MODALITIES)
        if weights.shape != (m, K, K) or offsets.shape != (m, K) or bias.shape != (K,):
            raise ValueError(f"fusion model arrays have shapes {weights.shape}, {offsets.shape}, {bias.shape}")
        return cls(str(data["kind"]), weights, offsets, bias, float(data.get("mood_weight", 0.0)),
                   float(data.get("mood_half_life_s", 120.0)), float(data.get("unknown_below", 0.0)),
                   float(data.get("text_carry", 1.0)), float(data.get("mood_text_carry", 1.0)),
                   float(data.get("mood_keep", 1.0)), dict(data.get("meta") or {}))

    @classmethod
    def load(cls, path: Path) -> LearnedFusion:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        return cls.from_dict(data)


NEUTRAL = LABELS.index("neutral")
TEXT = MODALITIES.index("text")


def mood_prior(mood, keep: float) -> np.ndarray:
    """The log-prior a previous state ``mood`` (…, K) sets on the next turn: ``log(k * mood + (1 - k) / K)``,
    the emotion staying the previous turn's with probability ``k`` and any one otherwise."""
    return log_probs(keep * np.asarray(mood, dtype=np.float64) + (1.0 - keep) / K)


def carry_text(logp: np.ndarray, carry: float) -> np.ndarray:
    """``logp`` (…, M, K) with the text row replaced by the mixture of the module doc."""
    if carry >= 1.0:
        return logp
    out = np.array(logp, dtype=np.float64, copy=True)
    p = np.exp(out[..., TEXT, :])
    mixed = carry * p + (1 - carry) * p[..., NEUTRAL:NEUTRAL + 1]
    mixed[..., NEUTRAL] = p[..., NEUTRAL]
    out[..., TEXT, :] = np.log(np.maximum(mixed, LOG_FLOOR))
    return out


def _seen(presence: np.ndarray) -> np.ndarray:
    """How much the face and voice readings count together: ``1 - prod(1 - a_m)`` over the
    modalities other than text (0: none present, 1: one of them fresh)."""
    others = np.minimum(np.maximum(np.delete(np.asarray(presence, dtype=np.float64), TEXT, axis=-1), 0.0), 1.0)
    return 1.0 - np.prod(1.0 - others, axis=-1)


def _mix(words: np.ndarray, learned: np.ndarray, weight) -> np.ndarray:
    """Logits of ``(1 - weight) * softmax(words) + weight * softmax(learned)`` (row by row);
    ``learned`` itself where the weight is 1, ``words`` where it is 0."""
    weight = np.asarray(weight, dtype=np.float64)[..., None]
    mixed = (1.0 - weight) * softmax(words) + weight * softmax(learned)
    out = np.log(np.maximum(mixed, 1e-300))
    return np.where(weight >= 1.0, learned, np.where(weight <= 0.0, words, out))


def _learned_presence(presence: np.ndarray, seen) -> np.ndarray:
    """The presences the learned part of the mixture sees (one row or many): beside a message,
    face and voice divided by ``seen``; without one, or with neither, the presences as they are."""
    presence = np.asarray(presence, dtype=np.float64)
    seen = np.asarray(seen, dtype=np.float64)
    scale = np.where((presence[..., TEXT] > 0) & (seen > 0), np.maximum(seen, 1e-12), 1.0)
    out = presence / scale[..., None]
    out[..., TEXT] = presence[..., TEXT]
    return out


# --- fitting -------------------------------------------------------------------------------

def _unpack(kind: str, theta: np.ndarray, m: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    bias, rest = theta[:K], theta[K:]
    offsets, rest = rest[: m * K].reshape(m, K), rest[m * K:]
    eye = np.eye(K)
    if kind == "weighted":
        weights = rest[:m, None, None] * eye
    elif kind == "product":
        weights = np.repeat(eye[None], m, axis=0)
    elif kind == "stacking":
        weights = rest.reshape(m, K, K)
    else:
        raise ValueError(f"unknown fusion kind {kind!r}; expected one of {KINDS}")
    return weights, offsets, bias


def _initial(kind: str, m: int) -> np.ndarray:
    extra = {"weighted": np.ones(m), "product": np.zeros(0), "stacking": np.repeat(np.eye(K)[None], m, 0).ravel()}[kind]
    return np.concatenate([np.zeros(K), np.zeros(m * K), extra])


def fit(kind: str, logp: np.ndarray, presence: np.ndarray, labels: np.ndarray, l2: float = 1e-3,
        sample_weight: Optional[np.ndarray] = None, text_carry: float = 1.0) -> LearnedFusion:
    """Parameters of ``kind`` minimising the (weighted) mean negative log-likelihood of ``labels``
    (indices into LABELS) on rows ``logp`` (N, M, K) with ``presence`` (N, M), the text row
    mixed with carry rate ``text_carry``. ``l2`` pulls the stacking matrices towards the identity
    and the weights towards 1 (the product)."""
    from scipy.optimize import minimize

    logp = carry_text(np.asarray(logp, dtype=np.float64), text_carry)
    presence = np.asarray(presence, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, m, _ = logp.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.sum()
    onehot = np.eye(K)[labels]
    eye = np.eye(K)

    def objective(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        weights, offsets, bias = _unpack(kind, theta, m)
        terms = np.einsum("mij,nmj->nmi", weights, logp) + offsets
        z = bias + (presence[..., None] * terms).sum(axis=1)
        z -= z.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=1))
        loss = float(np.sum(sw * (logsum - z[np.arange(n), labels])))
        dz = (np.exp(z - logsum[:, None]) - onehot) * sw[:, None]  # (N, K)
        grad_b = dz.sum(axis=0)
        weighted_dz = presence[..., None] * dz[:, None, :]  # (N, M, K)
        grad_c = weighted_dz.sum(axis=0)
        parts = [grad_b, grad_c.ravel()]
        if kind == "weighted":
            w = theta[K + m * K:]
            loss += l2 * float(np.sum((w - 1) ** 2))
            parts.append(np.einsum("nmk,nmk->m", weighted_dz, logp) + 2 * l2 * (w - 1))
        elif kind == "stacking":
            full = theta[K + m * K:].reshape(m, K, K)
            loss += l2 * float(np.sum((full - eye) ** 2))
            parts.append((np.einsum("nmi,nmj->mij", weighted_dz, logp) + 2 * l2 * (full - eye)).ravel())
        return loss, np.concatenate(parts)

    result = minimize(objective, _initial(kind, m), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    weights, offsets, bias = _unpack(kind, result.x, m)
    return LearnedFusion(kind, weights, offsets, bias, text_carry=text_carry,
                         meta={"fit": {"nll": round(float(result.fun), 5),
                                                                     "iterations": int(result.nit),
                                                                     "converged": bool(result.success)}})


def run_sequences(model: LearnedFusion, sequences: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
                  mood_weight: Optional[float] = None, mood_text_carry: Optional[float] = None,
                  mood_keep: Optional[float] = None) -> List[np.ndarray]:
    """The fused probabilities of each person's turns in order (``sequences``: (logp (T, M, K),
    presence (T, M), labels (T,)) per person), each turn's state the next one's mood (no decay:
    consecutive turns); every sequence is run together, turn by turn."""
    if not sequences:
        return []
    lengths = np.array([len(s[0]) for s in sequences])
    n, length = len(sequences), int(lengths.max())
    m = sequences[0][0].shape[1]
    logp = np.zeros((n, length, m, K))
    presence = np.zeros((n, length, m))
    for i, (lp, pr, _) in enumerate(sequences):
        logp[i, : len(lp)], presence[i, : len(pr)] = lp, pr
    out = np.zeros((n, length, K))
    for t in range(length):
        mood = out[:, t - 1] if t > 0 else None
        out[:, t] = softmax(model.logits(logp[:, t], presence[:, t], mood, 1.0, mood_weight, mood_text_carry, mood_keep))
    return [out[i, : lengths[i]] for i in range(n)]


MOOD_GRID = tuple(np.round(np.arange(0.0, 1.01, 0.1), 2))
CARRY_GRID = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
KEEP_GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def mood_settings(grid: Sequence[float] = MOOD_GRID, carries: Sequence[float] = CARRY_GRID,
                  keeps: Sequence[float] = KEEP_GRID) -> Tuple[str, ...]:
    """Every mood setting of the grids as "beta/carry/keep" (no mood: beta 0, carry 1, keep 1)."""
    return tuple(f"{beta:g}/{carry:g}/{keep:g}" for beta in grid
                 for carry in (carries if beta > 0 else (1.0,)) for keep in (keeps if beta > 0 else (1.0,)))


def mood_setting(key: str) -> Tuple[float, float, float]:
    """(beta, carry, keep) of a "beta/carry/keep" key (a "beta/carry" key of older files: keep 1)."""
    values = [float(v) for v in key.split("/")]
    return values[0], values[1], values[2] if len(values) > 2 else 1.0


def fit_mood_weight(model: LearnedFusion, sequences: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
                    settings: Optional[Sequence[str]] = None) -> Tuple[str, Dict[str, float]]:
    """The mood setting (weight beta, the words' carry rate of a turn after another r, and the
    chance k that the emotion stays) minimising the class-balanced NLL of each later turn's label
    given its own evidence and the previous turn's state (the filter run along each sequence).
    ``sequences``: (logp (T, M, K), presence (T, M), labels (T,)) per speaker, turns in order.
    Returns (the best "beta/carry/keep", NLL by setting)."""
    counts = np.bincount(np.concatenate([s[2] for s in sequences]), minlength=K).astype(float)
    class_weight = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    curve: Dict[str, float] = {}
    for key in settings or mood_settings():
        beta, carry, keep = mood_setting(key)
        total = weight = 0.0
        for (_, _, labels), probs in zip(sequences, run_sequences(model, sequences, beta, carry, keep)):
            probs = probs[1:]
            w = class_weight[labels[1:]]
            total -= float(np.sum(w * np.log(np.clip(probs[np.arange(len(probs)), labels[1:]], 1e-12, None))))
            weight += float(w.sum())
        curve[key] = round(total / max(weight, 1e-12), 5)
    return min(curve, key=curve.__getitem__), curve


def recognizer_fingerprints(models_dir: Path) -> Dict[str, str]:
    """The first 16 hex digits of the sha256 of each recognizer file in ``models_dir`` (those absent left out)."""
    import hashlib

    out = {}
    for name in RECOGNIZER_FILES:
        path = Path(models_dir) / name
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out


def changed_recognizers(model: LearnedFusion, models_dir: Path) -> Optional[list]:
    """The recognizer files that differ from those ``model`` was fitted on ([] when all match);
    None when the model has no record of them (fitted before fingerprints were kept)."""
    fitted = model.meta.get("recognizers")
    if not isinstance(fitted, dict):
        return None
    now = recognizer_fingerprints(models_dir)
    return sorted(name for name in set(fitted) | set(now) if fitted.get(name) != now.get(name))
