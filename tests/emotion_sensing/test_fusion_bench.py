"""The paired fusion benchmark: rows, patterns and scores (synthetic readings; real ones need ../shared)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from emotion_sensing.fusion_bench import (
    PATTERNS,
    Pool,
    benchmark,
    build_rows,
    earlier_rows,
    score,
    two_turns,
    with_calm_faces,
)
from emotion_sensing.labels import LABELS, UNKNOWN
from emotion_sensing.reading import Reading
from tests.conftest import DATASETS


def reading(modality, label, confidence, now=1000.0):
    """A reading that puts ``confidence`` on ``label`` and spreads the rest."""
    probs = [(1 - confidence) / (len(LABELS) - 1)] * len(LABELS)
    probs[LABELS.index(label)] = confidence
    return Reading(modality, tuple(probs), confidence, timestamp=now)


def pools(face_right=0.9, voice_right=0.6):
    """Text reads its own label; face and voice are right with the given confidences."""
    out = {}
    for modality, conf in (("text", 0.85), ("face", face_right), ("voice", voice_right)):
        out[modality] = Pool(modality, "synthetic", {label: [reading(modality, label, conf)] for label in LABELS})
    return out


def test_rows_are_balanced_and_messages_carry_the_emotion_with_probability_p():
    rows = build_rows(pools(), n_per_label=400, p=0.3, seed=1)
    assert len(rows) == 400 * len(LABELS)
    assert {label: sum(r.truth == label for r in rows) for label in LABELS} == {label: 400 for label in LABELS}
    emotional = [r for r in rows if r.truth != "neutral"]
    carried = np.mean([r.carries for r in emotional])
    assert carried == pytest.approx(0.3, abs=0.03)
    # A message that does not carry the emotion is a neutral one; face and voice always show it.
    for row in emotional:
        assert row.readings["text"].label == (row.truth if row.carries else "neutral")
        assert row.readings["face"].label == row.readings["voice"].label == row.truth
    again = build_rows(pools(), n_per_label=400, p=0.3, seed=1)  # same seed, same rows
    assert [(r.truth, r.carries) for r in again] == [(r.truth, r.carries) for r in rows]


def test_faces_that_do_not_show_the_emotion_are_calm_ones_and_nothing_else_changes():
    shown = build_rows(pools(), n_per_label=400, p=0.3, seed=1)
    half = build_rows(pools(), n_per_label=400, p=0.3, seed=1, face_shows=0.5)
    assert [(r.truth, r.carries, r.readings["text"], r.readings["voice"]) for r in half] == \
        [(r.truth, r.carries, r.readings["text"], r.readings["voice"]) for r in shown]
    emotional = [r for r in half if r.truth != "neutral"]
    calm = np.mean([r.readings["face"].label == "neutral" for r in emotional])
    assert calm == pytest.approx(0.5, abs=0.04)
    assert all(r.readings["face"].label in (r.truth, "neutral") for r in emotional)
    # A face hidden at 0.7 stays hidden at 0.5: one draw per row decides, so the curve is monotone.
    seventy = build_rows(pools(), n_per_label=400, p=0.3, seed=1, face_shows=0.7)
    assert all(b.readings["face"].label == "neutral" for a, b in zip(seventy, half)
               if a.truth != "neutral" and a.readings["face"].label == "neutral")
    assert with_calm_faces(shown, pools(), 1.0, 1) == shown
    # Without a face in the rows there is nothing to hide.
    no_face = {m: pool for m, pool in pools().items() if m != "face"}
    assert len(build_rows(no_face, 10, 0.3, 0, face_shows=0.5)) == 10 * len(LABELS)
    no_calm = pools()
    no_calm["face"].by_label["neutral"] = []
    with pytest.raises(ValueError, match="no neutral face"):
        with_calm_faces(shown, no_calm, 0.5, 1)


def test_every_pattern_reports_singles_today_and_candidates():
    result = benchmark(build_rows(pools(), 100, 0.3, 0))
    assert [p["pattern"] for p in result["patterns"]] == list(PATTERNS)
    for entry in result["patterns"]:
        assert set(entry["singles"]) == set(entry["pattern"].split("+"))
        assert entry["best_single"]["modality"] in entry["singles"]
        assert {"accuracy", "macro_f1", "valence_sign_agreement"} <= set(entry["fused"])
        assert {"mean", "product"} <= set(entry["candidates"])
    text_only = result["patterns"][0]
    # Text alone reads the message: right on the emotional and neutral rows, wrong on the rest.
    expected = (100 + 0.3 * 600) / 700
    assert text_only["singles"]["text"]["accuracy"] == pytest.approx(expected, abs=0.05)


def test_a_label_with_too_few_samples_in_some_modality_makes_no_rows():
    few = pools()
    for pool in few.values():
        pool.by_label = {label: group * 3 for label, group in pool.by_label.items()}
    few["face"].by_label["fear"] = []  # no fear faces at all
    few["face"].by_label["disgust"] = [reading("face", "disgust", 0.9)] * 2  # two disgust faces
    rows = build_rows(few, n_per_label=50, p=0.3, seed=0, min_samples=3)
    assert {r.truth for r in rows} == set(LABELS) - {"fear", "disgust"}
    assert len(rows) == 50 * (len(LABELS) - 2)


def test_unknown_counts_as_wrong_and_valence_sign_is_scored():
    result = score(["angry", "happy", "neutral"], [("angry", -0.5), (UNKNOWN, 0.0), ("neutral", 0.05)])
    assert result["accuracy"] == pytest.approx(2 / 3, abs=1e-3) and result["unknown"] == 1
    # angry: negative (agrees); happy: 0 (disagrees); neutral: 0 (agrees).
    assert result["valence_sign_agreement"] == pytest.approx(2 / 3, abs=1e-3)


@pytest.mark.data
def test_eval_fusion_on_the_real_test_splits():
    if not (DATASETS / "fer2013").exists() or not (DATASETS / "ravdess").exists():
        pytest.skip(f"FER2013 and RAVDESS not found under {DATASETS} (set EMOBOT_DATASETS)")
    # 150 messages and faces per label at most: a fifth of the FER2013 test faces, read in about 20 s.
    done = subprocess.run([sys.executable, "-m", "emobot", "eval", "fusion", "--rows-per-label", "60", "--json",
                           "--samples-per-label", "150", "--data", str(DATASETS)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    patterns = {p["pattern"]: p for p in body["patterns"]}
    assert set(patterns) == set(PATTERNS) and body["rows"] == 60 * len(LABELS)
    assert body["samples_per_label"] == 150
    assert body["sources"]["face"].startswith("FER2013 PrivateTest (") and " of 3589)" in body["sources"]["face"]
    everything = patterns["text+face+voice"]
    assert everything["best_single"]["modality"] in ("face", "voice")
    assert everything["singles"]["face"]["accuracy"] > 0.5 and everything["singles"]["voice"]["accuracy"] > 0.5
    # Text alone reads mostly neutral messages: it is the weakest single modality here.
    assert everything["singles"]["text"]["accuracy"] < everything["best_single"]["accuracy"]


def test_the_benchmark_outside_the_training_corpora(monkeypatch, tmp_path):
    """`emobot eval fusion --cross` draws rows only for labels every outside pool has enough of,
    names its sources and scores every pattern (synthetic pools here; the card has the real run)."""
    from emotion_sensing import fusion_bench

    synthetic = pools()
    face = synthetic["face"]
    face.by_label = {label: group * fusion_bench.OUTSIDE_MIN_SAMPLES for label, group in face.by_label.items()}
    face.by_label["disgust"], face.by_label["fear"] = face.by_label["disgust"][:2], face.by_label["fear"][:1]
    voice = dataclasses.replace(synthetic["voice"], source="SAVEE (synthetic)",
                                by_label={k: v * 30 for k, v in synthetic["voice"].by_label.items()})
    text = dataclasses.replace(synthetic["text"], by_label={k: v * 30 for k, v in synthetic["text"].by_label.items()})
    monkeypatch.setenv("EMOBOT_CACHE", str(tmp_path))
    monkeypatch.setattr(fusion_bench, "outside_face_pool", lambda *a, **k: face)
    monkeypatch.setattr(fusion_bench, "savee_voice_pool", lambda *a, **k: voice)
    monkeypatch.setattr(fusion_bench, "text_pool", lambda *a, **k: text)
    result = fusion_bench.run_outside(tmp_path, tmp_path, n_per_label=40)
    assert result["labels"] == [label for label in LABELS if label not in ("disgust", "fear")]
    assert result["rows"] == 40 * 5 and result["sources"]["voice"] == "SAVEE (synthetic)"
    assert [p["pattern"] for p in result["patterns"]] == list(PATTERNS)


def test_the_card_reports_the_fusion_with_faces_that_do_not_show_the_feeling():
    """`emobot train fusion` chooses how often the fitting rows' faces show the emotion and records
    the test benchmark with half of them calm: there too, words with a face beat the face alone."""
    from emotion_sensing.config import Settings

    results = json.loads((Settings().models_dir / "fusion.results.json").read_text())
    fitted = json.loads((Settings().models_dir / "fusion.json").read_text())["meta"]
    assert 0.0 < fitted["face_shows"] < 1.0 and str(fitted["face_shows"]).rstrip("0").rstrip(".") in fitted["face_shows_nll"]
    calm = results["calm_faces"]
    assert calm["face_shows"] == 0.5
    by_pattern = {p["pattern"]: p for p in calm["patterns"]}
    for pattern in ("text+face", "text+face+voice"):
        assert by_pattern[pattern]["fused"]["accuracy"] >= by_pattern[pattern]["best_single"]["accuracy"], pattern
    assert "Faces that do not show the feeling" in (Settings().models_dir / "fusion.md").read_text()


def test_the_kind_that_ships_is_the_one_that_generalises_best():
    """Every candidate's parameters are fitted on validation rows; the one that ships is the best on
    the test rows and outside the training corpora together, and the card says so."""
    from emotion_sensing.config import Settings

    fitted = json.loads((Settings().models_dir / "fusion.json").read_text())
    scores = fitted["meta"]["generalisation"]
    assert set(scores) == {"weighted", "product", "stacking"}
    assert fitted["kind"] == max(scores, key=lambda kind: scores[kind]["score"])
    for entry in scores.values():
        assert entry["score"] == pytest.approx((entry["test"] + entry["outside"]) / 2, abs=1e-4)
    assert "The kind that ships is chosen by" in (Settings().models_dir / "fusion.md").read_text()


def test_kind_scores_judge_each_candidate_on_the_test_rows_and_outside_them_where_there_are_any():
    """The choice of kind runs on the pools `emobot train fusion` reads once; without the sets from
    outside the training corpora the test rows alone choose."""
    from emotion_sensing.fusion_bench import OUTSIDE_MIN_SAMPLES
    from emotion_sensing.fusion_model import fit
    from emotion_sensing.fusion_train import TRAIN_PATTERNS, arrays, kind_scores

    fitting = build_rows(pools(), 30, 0.3, seed=1)
    models = {kind: fit(kind, *arrays(fitting, TRAIN_PATTERNS)) for kind in ("weighted", "product")}
    # Outside: faces that lean away from the truth, enough of each label to make rows there.
    outside = {m: Pool(m, "synthetic", {label: group * OUTSIDE_MIN_SAMPLES for label, group in pool.by_label.items()})
               for m, pool in pools(face_right=0.1).items()}
    both = kind_scores(models, pools(), outside, 30, 0.3, seed=0)
    alone = kind_scores(models, pools(), None, 30, 0.3, seed=0)
    for kind in models:
        assert set(alone[kind]) == {"test", "score"} and alone[kind]["score"] == alone[kind]["test"]
        assert both[kind]["test"] == alone[kind]["test"]
        assert both[kind]["outside"] < both[kind]["test"]
        assert both[kind]["score"] == pytest.approx((both[kind]["test"] + both[kind]["outside"]) / 2, abs=1e-4)


def test_eval_fusion_face_shows_is_checked():
    done = subprocess.run([sys.executable, "-m", "emobot", "eval", "fusion", "--face-shows", "1.5"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--face-shows" in done.stderr


def test_the_card_reports_fusion_outside_the_training_corpora():
    """The shipped fusion's recorded run outside the training corpora (models/fusion.results.json,
    written by `emobot train fusion`): all three fused beat the best single modality there too."""
    from emotion_sensing.config import Settings

    results = Settings().models_dir / "fusion.results.json"
    outside = json.loads(results.read_text()).get("outside")
    assert outside, "emobot train fusion records the benchmark outside the training corpora"
    assert "SAVEE" in outside["sources"]["voice"] and "KDEF3" in outside["sources"]["face"]
    everything = {p["pattern"]: p for p in outside["patterns"]}["text+face+voice"]
    assert everything["fused"]["accuracy"] >= everything["best_single"]["accuracy"] + 0.05
    assert "Outside the training corpora" in (Settings().models_dir / "fusion.md").read_text()


def test_eval_fusion_refuses_a_manifest_rather_than_ignoring_it(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("text,label\nhello,neutral\n")
    done = subprocess.run([sys.executable, "-m", "emobot", "eval", "fusion", "--manifest", str(manifest)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--manifest is for text, speech and face" in done.stderr


def test_earlier_turns_of_a_person_whose_emotion_changed():
    """``change`` is how often an emotional row's earlier turn has another emotion (never neutral);
    neutral rows and ``change=0`` keep the same emotion, drawn as before."""
    rows = build_rows(pools(), n_per_label=100, p=0.3, seed=2)
    same = earlier_rows(rows, np.random.default_rng(5))
    assert all(rows[j].truth == row.truth for row, j in zip(rows, same))
    changed = earlier_rows(rows, np.random.default_rng(5), change=1.0)
    for row, j in zip(rows, changed):
        if row.truth == "neutral":
            assert rows[j].truth == "neutral"
        else:
            assert rows[j].truth not in (row.truth, "neutral")
    some = earlier_rows(rows, np.random.default_rng(5), change=0.25)
    emotional = [(row, j) for row, j in zip(rows, some) if row.truth != "neutral"]
    assert np.mean([rows[j].truth != row.truth for row, j in emotional]) == pytest.approx(0.25, abs=0.05)


def test_the_mood_moves_for_a_message_that_carries_a_new_emotion():
    """The two-turn benchmark where the emotion changed: with the mood mixed with how often emotion
    stays (k < 1) the second turn's words still win where they carry the new emotion; with k = 1 a
    confident first turn vetoes them."""
    from emotion_sensing import fusion_model as fm

    def model(keep):
        return fm.LearnedFusion("product", np.repeat(np.eye(len(LABELS))[None], 3, 0), np.zeros((3, len(LABELS))),
                                np.zeros(len(LABELS)), mood_weight=1.0, text_carry=0.9, mood_text_carry=0.7,
                                mood_keep=keep)

    # Messages read confidently (0.9995) or plainly (0.75): a plain one after a confident one of
    # another emotion is what the old mood vetoed.
    two = {m: Pool(m, "synthetic", {label: [reading(m, label, c) for c in (0.9995, 0.75)] for label in LABELS})
           for m in ("text", "face", "voice")}
    rows = build_rows(two, n_per_label=60, p=1.0, seed=3)
    vetoed = two_turns(rows, model(1.0), change=1.0)["text"]
    kept = two_turns(rows, model(0.5), change=1.0)["text"]
    assert vetoed["without_mood"]["accuracy"] == kept["without_mood"]["accuracy"] == 1.0
    assert kept["with_mood"]["accuracy"] == 1.0 > vetoed["with_mood"]["accuracy"]
    # Where the emotion stays, the mood still helps (or costs nothing).
    assert two_turns(rows, model(0.5))["text"]["with_mood"]["accuracy"] == 1.0


def test_the_shipped_mood_costs_little_where_the_emotion_changes():
    """`emobot train fusion` records, for every mood setting, what it costs where a person's emotion
    changed, and ships one that costs at most the tolerance there and on DailyDialog."""
    from emotion_sensing.config import Settings
    from emotion_sensing.fusion_model import mood_setting
    from emotion_sensing.fusion_train import MOOD_TOLERANCE, NO_MOOD

    results = json.loads((Settings().models_dir / "fusion.results.json").read_text())
    fitted = json.loads((Settings().models_dir / "fusion.json").read_text())
    mood = results["mood"]
    shipped = next(key for key in mood["nll_sum"]
                   if mood_setting(key) == (fitted["mood_weight"], fitted["mood_text_carry"], fitted["mood_keep"]))
    changed = mood["changed_two_turn_accuracy"]
    assert changed[shipped] >= changed[NO_MOOD] - MOOD_TOLERANCE
    f1 = mood["dailydialog_validation_macro_f1"]
    assert f1[shipped] >= f1[NO_MOOD] - MOOD_TOLERANCE
    assert 0.0 < fitted["mood_keep"] < 1.0 and 0.05 < mood["change_rate"]["rate"] < 0.2
    for pattern, entry in results["benchmark"]["two_turns"].items():
        assert entry["with_mood"]["accuracy"] > entry["without_mood"]["accuracy"], pattern
    assert results["benchmark"]["two_turns_changed"]
