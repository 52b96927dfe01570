import pytest

from emotion_sensing.labels import (
    DAIR_EMOTION,
    LABELS,
    RAVDESS,
    SkippedLabels,
    arousal_of,
    canonical,
    class_folders,
    read_label,
    read_named_label,
    valence_of,
)


def test_labels_follow_fer2013_order():
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_source_tables_map_onto_canonical_labels():
    assert DAIR_EMOTION["love"] == "happy" and DAIR_EMOTION["joy"] == "happy"
    assert RAVDESS["calm"] == "neutral"
    assert canonical("Sadness") == "sad"
    assert canonical("contempt") is None
    with pytest.raises(KeyError):
        canonical("bewildered")


def test_valence_and_arousal_summarise_a_distribution():
    happy = [0, 0, 0, 1, 0, 0, 0]
    sad = [0, 0, 0, 0, 1, 0, 0]
    assert valence_of(happy) > 0.5 > -0.5 > valence_of(sad)
    assert arousal_of([1, 0, 0, 0, 0, 0, 0]) > arousal_of(sad)


@pytest.mark.parametrize("name, label", [
    ("Pleasant_surprise", "surprise"), ("pleasant-surprised", "surprise"), ("ps", "surprise"),  # TESS
    ("ANG", "angry"), ("HAP", "happy"), ("NEU", "neutral"), ("exc", "happy"),  # CREMA-D, IEMOCAP
    ("AN", "angry"), ("SU", "surprise"),  # JAFFE's codes
    ("joy", "happy"), ("No emotion", "neutral"), (" Fearful ", "fear"),  # MELD, DailyDialog, RAVDESS
])
def test_other_corpora_s_names_and_codes_are_read(name, label):
    assert read_label(name) == (label, True)


def test_a_label_left_out_is_counted_and_said():
    """An emotion with no counterpart is told apart from a name nobody knows, which gets a hint."""
    assert read_label("shame") == (None, True) and read_label("fru") == (None, True)
    assert read_label("bewildered") == (None, False)
    left_out = SkippedLabels()
    for name in ("shame", "shame", "guilt", "bewildered"):
        left_out.add(name, read_label(name)[1])
    assert left_out.as_dict() == {"no_counterpart": {"shame": 2, "guilt": 1}, "unknown": {"bewildered": 1}}
    said = left_out.describe()
    assert "no counterpart among the seven: shame (2), guilt (1)" in said
    assert "does not know: bewildered (1)" in said and "angry, disgust" in said
    assert not SkippedLabels() and SkippedLabels().describe() == ""


def test_a_name_may_put_a_speaker_before_its_label():
    assert read_named_label("OAF_angry") == ("angry", True, "OAF")
    assert read_named_label("YAF_pleasant_surprised") == ("surprise", True, "YAF")
    assert read_named_label("happy") == ("happy", True, "")
    assert read_named_label("S01_boredom") == (None, True, "S01")
    assert read_named_label("misc") == (None, False, "")


def test_class_folders_lists_each_folders_files_in_order_and_says_a_missing_root(tmp_path):
    for name in ("sad/b.JPG", "sad/a.png", "sad/notes.txt", "sad/more/c.jpg", "angry/x.jpg", "loose.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    walk = [(folder.name, [f.relative_to(folder).as_posix() for f in files])
            for folder, files in class_folders(tmp_path, {".jpg", ".png"})]
    assert walk == [("angry", ["x.jpg"]), ("sad", ["a.png", "b.JPG", "more/c.jpg"])]
    flat = class_folders(tmp_path, {".jpg", ".png"}, recursive=False)
    assert [f.name for f in flat[1][1]] == ["a.png", "b.JPG"]
    with pytest.raises(FileNotFoundError, match="no folder"):
        class_folders(tmp_path / "absent", {".jpg"})
