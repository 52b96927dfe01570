"""The manifest reader behind `emobot eval text|speech|face --manifest`."""
from __future__ import annotations

import pytest

from emotion_sensing.manifest import LABEL_COLUMNS, read_manifest

TEXT = {"text": ("text", "utterance"), "label": LABEL_COLUMNS}


@pytest.mark.parametrize("content", [
    "i feel rotten, so rotten;sadness\ni am thrilled;joy\nwhat a day;surprise\n",  # dair-ai's own text;label lines
    "text\tlabel\ni feel rotten, so rotten\tsadness\ni am thrilled\tjoy\nwhat a day\tsurprise\n",  # a TSV
    'Emotion,Speaker,Utterance\nsadness,A,"i feel rotten, so rotten"\njoy,B,i am thrilled\nsurprise,A,what a day\n',
])
def test_the_separator_and_the_columns_are_found(tmp_path, content):
    path = tmp_path / "m.txt"
    path.write_text(content)
    manifest = read_manifest(path, TEXT, required=("text", "label"))
    assert [row["text"] for row in manifest.rows] == ["i feel rotten, so rotten", "i am thrilled", "what a day"]
    assert [row["label"] for row in manifest.rows] == ["sad", "happy", "surprise"] and manifest.skipped == 0


def test_rows_left_out_are_counted_by_label(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("\ufefftext,label\nfine,neutral\nso ashamed,shame\nhm,sarcasm\nno label here\n\n")
    manifest = read_manifest(path, TEXT, required=("text", "label"))
    assert len(manifest.rows) == 1 and manifest.skipped == 3  # the blank line is not a row
    assert manifest.left_out.as_dict() == {"no_counterpart": {"shame": 1}, "unknown": {"sarcasm": 1}}
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv", TEXT, required=("text", "label"))
