"""Labelled manifests: the CSV files a user points ``emobot eval text|speech|face --manifest`` at.

One reader for the three modalities. A manifest's columns are found by its header when the first
row names every required column (in any order, among other columns: MELD's CSVs, RAVDESS's and
SAVEE's ``labels.csv``), else by position; the separator (comma, tab, semicolon or bar) is the
one under which most of the first rows carry a known label. Labels are mapped by
:func:`labels.read_label` (the seven names, or a corpus's own names and codes); the rows it cannot
use are counted by their label, so none is dropped unsaid.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from emotion_sensing.labels import SkippedLabels, read_label

LABEL_COLUMNS = ("label", "emotion")


@dataclass
class Manifest:
    """The usable rows (each a dict of the named columns, ``label`` canonical) and what was left out."""

    path: Path
    rows: List[Dict[str, str]]
    skipped: int = 0  # rows left out: too few columns, or a label with no counterpart / unknown
    left_out: SkippedLabels = field(default_factory=SkippedLabels)

    def relative(self, name: str) -> Path:
        """A file named in the manifest: absolute as given, else beside the manifest."""
        file = Path(name.strip())
        return file if file.is_absolute() else self.path.parent / file


def read_manifest(path: Path, columns: Dict[str, Sequence[str]], required: Sequence[str]) -> Manifest:
    """The rows of the CSV at ``path``. ``columns`` maps each wanted column to the header names
    that may hold it, in positional order (used when there is no header); ``required`` are the
    ones a row must have, ``label`` among them. Raises FileNotFoundError when there is no file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found at {path}")
    text = path.read_text(encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark
    sample = text.splitlines()[:50]
    delimiter = max(DELIMITERS, key=lambda d: _labels_read(list(csv.reader(sample, delimiter=d)), columns, required))
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in row)]
    at, rows = _layout(rows, columns, required)
    needed = max(at[key] for key in required)
    manifest = Manifest(path, [])
    for row in rows:
        if len(row) <= needed:
            manifest.skipped += 1
            continue
        label, known = read_label(row[at["label"]])
        if label is None:
            manifest.skipped += 1
            manifest.left_out.add(row[at["label"]], known)
            continue
        values = {key: row[i] if 0 <= i < len(row) else "" for key, i in at.items()}
        values["label"] = label
        manifest.rows.append(values)
    return manifest


# Column separators tried, in order of preference on a tie: comma, tab (TSV), semicolon (dair-ai's
# own text;label lines), bar.
DELIMITERS = (",", "\t", ";", "|")


def _layout(rows: List[List[str]], columns: Dict[str, Sequence[str]],
            required: Sequence[str]) -> Tuple[Dict[str, int], List[List[str]]]:
    """Where each column is, and the rows without the header: by header names when the first row
    names every required column, else by position."""
    head = [cell.strip().lower() for cell in rows[0]] if rows else []
    by_header = {key: next((head.index(name) for name in names if name in head), -1) for key, names in columns.items()}
    if all(by_header[key] >= 0 for key in required):
        return by_header, rows[1:]
    return {key: i for i, key in enumerate(columns)}, rows


def _labels_read(rows: List[List[str]], columns: Dict[str, Sequence[str]], required: Sequence[str]) -> int:
    """How many of ``rows`` have a label :func:`read_label` knows where the layout puts it."""
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    at, rows = _layout(rows, columns, required)
    needed = max(at[key] for key in required)
    return sum(1 for row in rows if len(row) > needed and read_label(row[at["label"]])[1])
