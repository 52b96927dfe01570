"""The one emotion vocabulary of the project and the tables that map every source onto it.

Labels follow FER2013's order so a face model's output index is the label index.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
UNKNOWN = "unknown"
LABEL_INDEX: Dict[str, int] = {label: i for i, label in enumerate(LABELS)}

# Russell-circumplex coordinates per label: valence in -1..1, arousal in 0..1.
# Approximate centroids from the affective-norms literature; used to summarise a
# distribution over labels as one (valence, arousal) point.
VALENCE: Dict[str, float] = {
    "angry": -0.7, "disgust": -0.6, "fear": -0.7, "happy": 0.8,
    "sad": -0.7, "surprise": 0.2, "neutral": 0.0,
}
AROUSAL: Dict[str, float] = {
    "angry": 0.85, "disgust": 0.5, "fear": 0.8, "happy": 0.6,
    "sad": 0.25, "surprise": 0.85, "neutral": 0.2,
}

# Source label -> canonical label. None means "no counterpart: skip and count".
DAIR_EMOTION: Dict[str, Optional[str]] = {
    "anger": "angry", "fear": "fear", "joy": "happy", "love": "happy",
    "sadness": "sad", "surprise": "surprise",
}
# monologg/GoEmotions-pytorch data/ekman/labels.txt order.
GOEMOTIONS_EKMAN: Sequence[str] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# DailyDialog's seven utterance labels (its README: "no emotion" is neutral).
DAILYDIALOG: Dict[str, Optional[str]] = {
    "no emotion": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear",
}
RAVDESS: Dict[str, Optional[str]] = {
    "neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
    "angry": "angry", "fearful": "fear", "disgust": "disgust", "surprised": "surprise",
}
# Label names and codes of common emotion corpora, for class folders (FER2013 folders, CK+,
# AffectNet, RAF-DB, TFEID) and manifests (MELD, ISEAR, IEMOCAP, CREMA-D, TESS, JAFFE's codes).
# Keys are as :func:`label_key` writes them: lower case, "_" and "-" read as spaces.
FOLDER_NAMES: Dict[str, Optional[str]] = {
    "anger": "angry", "angry": "angry", "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "happy": "happy",
    "happiness": "happy", "joy": "happy", "joyful": "happy", "love": "happy",
    "sad": "sad", "sadness": "sad", "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral", "no emotion": "neutral",
    # TESS's pleasant surprise (its folders: "OAF_Pleasant_surprise", "YAF_pleasant_surprised").
    "ps": "surprise", "pleasant surprise": "surprise", "pleasant surprised": "surprise",
    # Three-letter codes (CREMA-D's file names, IEMOCAP's labels); IEMOCAP's "excited" joins
    # happy, as the field's four-class protocol does.
    "ang": "angry", "dis": "disgust", "fea": "fear", "hap": "happy", "neu": "neutral", "sur": "surprise",
    "exc": "happy", "excited": "happy",
    # Two-letter codes (JAFFE's file names: KA.AN1.39).
    "an": "angry", "di": "disgust", "fe": "fear", "ha": "happy", "sa": "sad", "su": "surprise", "ne": "neutral",
    # Emotions with no counterpart among the seven: skipped and counted, never guessed.
    "contempt": None, "boredom": None, "bored": None, "shame": None, "guilt": None,
    "frustration": None, "frustrated": None, "fru": None, "other": None, "oth": None, "xxx": None,
}


def label_key(name: str) -> str:
    """A source label as the tables spell it: lower case, "_" and "-" as spaces, single spaces."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def canonical(name: str, table: Mapping[str, Optional[str]] = FOLDER_NAMES) -> Optional[str]:
    """Map a source label onto the canonical vocabulary; None when it has no counterpart.

    Raises KeyError for a name the table does not know, so typos are not silently dropped.
    """
    key = name.strip().lower()
    if key in LABEL_INDEX:
        return key
    if key in table:
        return table[key]
    return table[label_key(name)]


def read_label(name: str, table: Mapping[str, Optional[str]] = FOLDER_NAMES) -> Tuple[Optional[str], bool]:
    """(canonical label or None, known?): None and known for an emotion with no counterpart
    (contempt, shame), None and not known for a name no table has."""
    try:
        return canonical(name, table), True
    except KeyError:
        return None, False


def read_named_label(name: str, table: Mapping[str, Optional[str]] = FOLDER_NAMES) -> Tuple[Optional[str], bool, str]:
    """:func:`read_label` for a name that may put something before its label, as TESS's folders
    do ("OAF_angry", "YAF_pleasant_surprised"): (label or None, known?, what came before it)."""
    label, known = read_label(name, table)
    if known:
        return label, True, ""
    words = [word for word in re.split(r"[_\-\s]+", name.strip()) if word]
    for i in range(1, len(words)):
        label, known = read_label(" ".join(words[i:]), table)
        if known:
            return label, True, "_".join(words[:i])
    return None, False, ""


def class_folders(root: Path, suffixes: Collection[str], recursive: bool = True) -> List[Tuple[Path, List[Path]]]:
    """Each folder directly under ``root`` (sorted) with its files whose suffix, in any case, is
    one of ``suffixes`` (sorted; those in its sub-folders too when ``recursive``): the one walk
    over corpora laid out in class folders (faces and voices alike), the same files in the same
    order on every machine. The caller reads each folder's name as it reads labels."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = folder.rglob("*") if recursive else folder.iterdir()
        out.append((folder, sorted(p for p in found if p.suffix.lower() in suffixes)))
    return out


@dataclass
class SkippedLabels:
    """Rows a manifest or folder walk left out, by their label, so none is dropped unsaid."""

    no_counterpart: Counter = field(default_factory=Counter)
    unknown: Counter = field(default_factory=Counter)

    def add(self, name: str, known: bool) -> None:
        (self.no_counterpart if known else self.unknown)[name.strip()] += 1

    def __bool__(self) -> bool:
        return bool(self.no_counterpart or self.unknown)

    def as_dict(self) -> Dict[str, Dict[str, int]]:
        return {"no_counterpart": dict(self.no_counterpart.most_common()), "unknown": dict(self.unknown.most_common())}

    @classmethod
    def from_dict(cls, counts: Optional[Mapping[str, Mapping[str, int]]]) -> SkippedLabels:
        """The inverse of :meth:`as_dict` (a result's ``skipped_labels``; None reads as nothing)."""
        counts = counts or {}
        return cls(Counter(counts.get("no_counterpart") or {}), Counter(counts.get("unknown") or {}))

    def describe(self) -> str:
        """One sentence: what was left out and, for unknown names, what to write instead."""
        def listed(counts: Counter) -> str:
            shown = [f"{name or '(empty)'!s} ({n:,})" for name, n in counts.most_common(8)]
            more = len(counts) - len(shown)
            return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
        parts = []
        if self.no_counterpart:
            parts.append(f"labels with no counterpart among the seven: {listed(self.no_counterpart)}")
        if self.unknown:
            parts.append(f"labels emobot does not know: {listed(self.unknown)} (name them "
                         f"{', '.join(LABELS)}, or a corpus's usual name or code for one: anger, joy, hap, ps ...)")
        return "; ".join(parts)


def valence_of(probs: Sequence[float]) -> float:
    """Expected valence of a distribution over LABELS."""
    return float(sum(p * VALENCE[label] for p, label in zip(probs, LABELS)))


def arousal_of(probs: Sequence[float]) -> float:
    """Expected arousal of a distribution over LABELS."""
    return float(sum(p * AROUSAL[label] for p, label in zip(probs, LABELS)))
