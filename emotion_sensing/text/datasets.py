"""Readers for the text emotion corpora, each mapped onto the canonical labels.

Layouts (as distributed):
- dair-ai emotion (CARER): ``{train,val,test}.txt``, one ``text;label`` per line.
- GoEmotions, Ekman grouping (monologg/GoEmotions-pytorch ``data/ekman``):
  ``{train,dev,test}.tsv`` with ``text<TAB>label ids<TAB>comment id``; only rows with a
  single label are used, since a multi-label row has no one right answer. For training,
  rows whose Ekman "surprise" comes only from curiosity or confusion (``data/original``)
  can be kept apart as ``curiosity``: see emotion_sensing/text/model.py for why.
- DailyDialog (ConvLab-3's unified release converted to CSV): ``{train,validation,test}.csv``
  with ``dialogue_id,turn,speaker,text,emotion,...``, one utterance per row in dialogue order;
  each row also carries the previous utterance of its dialogue (the other speaker's turn).
- A manifest CSV of ``text,label`` (or columns named text/utterance and label/emotion) with any
  label name ``labels.read_label`` knows (:mod:`emotion_sensing.manifest`).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from emotion_sensing.labels import DAILYDIALOG, DAIR_EMOTION, GOEMOTIONS_EKMAN, SkippedLabels
from emotion_sensing.manifest import LABEL_COLUMNS, read_manifest

CURIOSITY = "curiosity"
CURIOUS = frozenset({"curiosity", "confusion"})


@dataclass
class TextSplit:
    """Texts and canonical labels of one split, with how many rows were skipped."""

    name: str
    texts: List[str]
    labels: List[str]
    skipped: int = 0
    # The utterance before each text in its conversation ("" at the start); None where the
    # corpus has no conversations.
    previous: Optional[List[str]] = None
    # A manifest's rows left out, by label (None for the corpora, whose mappings are fixed).
    skipped_labels: Optional[SkippedLabels] = None

    def __len__(self) -> int:
        return len(self.texts)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}. See README.md, 'Datasets', for where to get it "
            "and pass its folder with --data."
        )
    return path


def load_dair(root: Path, split: str) -> TextSplit:
    """dair-ai emotion split ``train``, ``val`` or ``test``; love and joy become happy."""
    path = _require(Path(root) / f"{split}.txt", f"dair-ai emotion {split} split")
    texts, labels, skipped = [], [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        text, _, label = line.rpartition(";")
        mapped = DAIR_EMOTION.get(label.strip())
        if not text or mapped is None:
            skipped += 1
            continue
        texts.append(text)
        labels.append(mapped)
    return TextSplit(f"dair_emotion/{split}", texts, labels, skipped)


def _original_labels(folder: Path, split: str) -> dict[str, set[str]]:
    """Comment id -> its fine-grained GoEmotions labels (``data/original``)."""
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    found = {}
    with _require(folder / f"{split}.tsv", f"GoEmotions original {split} split").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 3:
                found[row[2]] = {names[int(i)] for i in row[1].split(",")}
    return found


def load_goemotions_ekman(root: Path, split: str, curiosity: bool = False) -> TextSplit:
    """GoEmotions Ekman split ``train``, ``dev`` or ``test``, single-label rows only.

    With ``curiosity``, "surprise" rows whose fine labels are only curiosity/confusion
    are labelled ``curiosity`` instead.
    """
    root = Path(root)
    folder = root / "data" / "ekman" if (root / "data" / "ekman").exists() else root
    path = _require(folder / f"{split}.tsv", f"GoEmotions Ekman {split} split")
    fine = _original_labels(folder.parent / "original", split) if curiosity else {}
    texts, labels, skipped = [], [], 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2 or "," in row[1]:
                skipped += 1
                continue
            label = GOEMOTIONS_EKMAN[int(row[1])]
            if curiosity and label == "surprise" and fine.get(row[2], set()) <= CURIOUS:
                label = CURIOSITY
            texts.append(row[0])
            labels.append(label)
    return TextSplit(f"goemotions_ekman/{split}", texts, labels, skipped)


DAILYDIALOG_SPLITS = {"train": "train", "val": "validation", "dev": "validation", "validation": "validation",
                      "test": "test"}


def load_dailydialog(root: Path, split: str) -> TextSplit:
    """DailyDialog split ``train``, ``validation`` (or ``val``) or ``test``; "no emotion" is
    neutral. Each text keeps the utterance before it in its dialogue."""
    name = DAILYDIALOG_SPLITS.get(split, split)
    path = _require(Path(root) / f"{name}.csv", f"DailyDialog {name} split")
    texts, labels, previous, skipped = [], [], [], 0
    last_dialogue, last_text = None, ""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = (row.get("text") or "").strip()
            if row["dialogue_id"] != last_dialogue:
                last_dialogue, last_text = row["dialogue_id"], ""
            mapped = DAILYDIALOG.get((row.get("emotion") or "").strip())
            if not text or mapped is None:
                skipped += 1
            else:
                texts.append(text)
                labels.append(mapped)
                previous.append(last_text)
            last_text = text
    return TextSplit(f"dailydialog/{name}", texts, labels, skipped, previous)


def load_manifest(path: Path) -> TextSplit:
    """A CSV of ``text,label`` (by position, header optional), or with a header naming a text
    column (text, utterance, sentence or message) and a label column (label or emotion) in any
    order among others (MELD's CSVs are read as they are); see :mod:`emotion_sensing.manifest`."""
    manifest = read_manifest(path, {"text": ("text", "utterance", "sentence", "message"), "label": LABEL_COLUMNS},
                             required=("text", "label"))
    if not manifest.rows:
        why = manifest.left_out.describe() or "a text column and a label column are needed"
        raise ValueError(f"{manifest.path}: no row to evaluate ({why})")
    return TextSplit(f"manifest/{manifest.path.name}", [row["text"] for row in manifest.rows],
                     [row["label"] for row in manifest.rows], manifest.skipped, skipped_labels=manifest.left_out)
