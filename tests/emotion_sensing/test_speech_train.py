"""Speaker-independent comparison and distinctiveness pruning, on small synthetic data."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emotion_sensing.labels import LABELS
from emotion_sensing.speech.model import VoiceModel
from emotion_sensing.speech.prune import prune_layer, prune_thresholds
from emotion_sensing.speech.train import actor_folds, cross_validate, fit, format_table


def synthetic(speakers=12, per_label=6, dims=20, seed=0):
    """Clips whose emotion moves a few features and whose speaker shifts all of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(len(LABELS), dims))
    vectors, labels, names = [], [], []
    for s in range(speakers):
        offset = rng.normal(scale=4.0, size=dims)
        for i, label in enumerate(LABELS):
            for _ in range(per_label):
                vectors.append(centres[i] + offset + rng.normal(size=dims))
                labels.append(label)
                names.append(f"Actor_{s + 1:02d}")
    return np.array(vectors), np.array(labels), np.array(names)


def test_folds_never_split_a_speaker_and_mix_genders():
    speakers = [f"Actor_{n:02d}" for n in range(1, 19) for _ in range(3)]
    folds = actor_folds(speakers, 6)
    for speaker in set(speakers):
        assert len({f for s, f in zip(speakers, folds) if s == speaker}) == 1
    for fold in range(6):
        numbers = {int(s[-2:]) for s, f in zip(speakers, folds) if f == fold}
        assert len(numbers) == 3 and {n % 2 for n in numbers} == {0, 1}  # odd actors male, even female
    with pytest.raises(ValueError):
        actor_folds(["a", "b"], 6)


def test_cross_validation_by_speaker_beats_chance_and_reports_every_mode():
    vectors, labels, speakers = synthetic()
    result = cross_validate("logreg", vectors, labels, speakers, actor_folds(list(speakers), 4))
    assert result["speaker"]["accuracy"] > 0.8
    assert result["speaker"]["accuracy"] > result["none"]["accuracy"]  # per-speaker standardisation helps
    table = format_table([{
        "classifier": "logreg", "f1": {label: 0.5 for label in LABELS}, "cv_accuracy": 0.5,
        "cv_accuracy_running": 0.4, "cv_accuracy_none": 0.3, "test_accuracy": None}])
    assert "logreg" in table and "—" in table


def test_saved_model_reads_the_same(tmp_path):
    vectors, labels, speakers = synthetic(speakers=4)
    model = fit("svc", vectors, labels, speakers)
    model.save(tmp_path / "m.joblib")
    again = VoiceModel.load(tmp_path / "m.joblib")
    x = vectors[:5]
    np.testing.assert_allclose(again.probabilities(x), model.probabilities(x))
    assert again.probabilities(x).sum(axis=1) == pytest.approx(np.ones(5))
    import joblib

    joblib.dump({"something": "else"}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a voice emotion model"):
        VoiceModel.load(tmp_path / "other.joblib")


def test_duplicate_and_opposite_units_are_merged_without_changing_the_output():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5))
    w_in = rng.normal(size=(5, 4))
    w_in[:, 1] = w_in[:, 0]  # unit 1 copies unit 0
    w_in[:, 3] = -w_in[:, 2]  # unit 3 mirrors unit 2
    b_in = np.zeros(4)
    w_out = rng.normal(size=(4, 3))
    hidden = np.tanh(x @ w_in + b_in)
    w_in2, b_in2, w_out2, report = prune_layer(w_in, b_in, w_out, hidden)
    assert (report.hidden_before, report.hidden_after) == (4, 2)
    assert (report.merged_similar, report.merged_opposite) == (1, 1)
    np.testing.assert_allclose(np.tanh(x @ w_in2 + b_in2) @ w_out2, hidden @ w_out, atol=1e-9)


def test_pruned_mlp_trains_and_keeps_fewer_units():
    vectors, labels, speakers = synthetic(speakers=4)
    model = fit("mlp", vectors, labels, speakers, prune_deg=60.0)
    pruned = model.meta["pruned"]
    assert pruned["hidden_before"] == 256 and pruned["hidden_after"] < 256
    assert model.pipeline.named_steps["classifier"].coefs_[0].shape[1] == pruned["hidden_after"]
    probs = model.probabilities(vectors - vectors.mean(axis=0))
    assert probs.shape == (len(labels), len(LABELS))
    from emotion_sensing.speech.train import predict

    assert np.mean(np.array(predict(model, vectors, speakers, "speaker")) == labels) > 0.5
    assert prune_thresholds("15, 30") == [15.0, 30.0]
    with pytest.raises(ValueError):
        prune_thresholds("120")


def blocky(speakers=8, seed=1):
    """Synthetic vectors as wide as the real blocks: emotion moves a few eGeMAPS columns."""
    from emotion_sensing.speech.vector import BLOCKS, layout, width

    rng = np.random.default_rng(seed)
    where = layout(BLOCKS)
    vectors, labels, names = [], [], []
    centres = rng.normal(scale=2.0, size=(len(LABELS), 10))
    for s in range(speakers):
        offset = rng.normal(scale=3.0, size=width(BLOCKS))
        for i, label in enumerate(LABELS):
            for _ in range(4):
                v = offset + rng.normal(size=width(BLOCKS))
                v[where["egemaps"].start:where["egemaps"].start + 10] += centres[i]
                vectors.append(v)
                labels.append(label)
                names.append(f"S{s}")
    return np.array(vectors), np.array(labels), np.array(names)


def test_experts_each_read_their_own_block_and_keep_their_temperature(tmp_path):
    from emotion_sensing.speech.train import EXPERTS, standardise
    from emotion_sensing.speech.vector import BLOCKS, layout

    vectors, labels, speakers = blocky()
    model = fit(EXPERTS, vectors, labels, speakers, blocks=BLOCKS)
    assert [e.blocks for e in model.experts] == [(b,) for b in BLOCKS]
    x = standardise(vectors, speakers, model.prior, "speaker")
    accuracy = np.mean(np.array(LABELS)[model.probabilities(x).argmax(axis=1)] == labels)
    assert accuracy > 0.8
    # A sharper temperature changes the confidence, never the label.
    model.temperature = 0.5
    sharp = model.probabilities(x)
    model.temperature = 1.0
    assert (sharp.argmax(axis=1) == model.probabilities(x).argmax(axis=1)).all()
    assert sharp.max(axis=1).mean() > model.probabilities(x).max(axis=1).mean()
    # The eGeMAPS expert ignores the other blocks' columns.
    egemaps = model.experts[1].pipeline
    shuffled = x.copy()
    shuffled[:, layout(BLOCKS)["whisper"]] = 0
    np.testing.assert_allclose(egemaps.predict_proba(shuffled[:, layout(BLOCKS)["egemaps"]]),
                               egemaps.predict_proba(x[:, layout(BLOCKS)["egemaps"]]))
    model.temperature = 0.7
    model.save(tmp_path / "m.joblib")
    again = VoiceModel.load(tmp_path / "m.joblib")
    assert again.blocks == BLOCKS and again.temperature == pytest.approx(0.7)
    np.testing.assert_allclose(again.probabilities(x[:5]), model.probabilities(x[:5]))


def test_a_model_of_the_first_format_still_loads(tmp_path):
    import joblib

    vectors, labels, speakers = synthetic(speakers=4)
    old = fit("logreg", vectors, labels, speakers)
    joblib.dump({"format": "emobot-voice/1", "pipeline": old.pipeline, "prior": old.prior.to_dict(), "meta": {}},
                tmp_path / "old.joblib")
    again = VoiceModel.load(tmp_path / "old.joblib")
    assert again.blocks == ("librosa",) and again.temperature == 1.0
    np.testing.assert_allclose(again.probabilities(vectors[:3]), old.probabilities(vectors[:3]))


def test_a_model_trained_on_whisper_final_states_reads_them_under_their_new_name(tmp_path):
    """Before vector version 3 the whisper block was the encoder's output; a model of then must go
    on reading those values (today's whisper_final), not the states after 3 layers."""
    vectors, labels, speakers = synthetic(speakers=4)
    model = fit("logreg", vectors, labels, speakers, blocks=("librosa",))
    model.blocks = ("librosa", "whisper")  # as a saved bundle of then names them
    model.experts = [dataclasses.replace(e, blocks=("librosa", "whisper")) for e in model.experts]
    for version, expected in ((1002, ("librosa", "whisper_final")), (1003, ("librosa", "whisper")),
                              (None, ("librosa", "whisper"))):
        model.meta["feature_version"] = version
        model.save(tmp_path / "m.joblib")
        again = VoiceModel.load(tmp_path / "m.joblib")
        assert again.blocks == expected and again.experts[0].blocks == expected, version


def test_augmented_copies_join_training_and_every_candidate_is_named():
    from emotion_sensing.speech.train import EXPERTS, candidates

    vectors, labels, speakers = synthetic(speakers=6)
    noisy = vectors + np.random.default_rng(2).normal(scale=0.5, size=vectors.shape)
    plain = fit("logreg", vectors, labels, speakers)
    both = fit("logreg", vectors, labels, speakers, augmented=[(noisy, labels, speakers)])
    assert not np.allclose(plain.pipeline[-1].coef_, both.pipeline[-1].coef_)
    names = [c[0] for c in candidates(["logreg", "svc", "knn"], prune_degrees=[30])]
    assert {"logreg [librosa]", "svc [egemaps]", "logreg [whisper]", "knn [all]", "mlp-pruned-30° [all]"} <= set(names)
    assert any(c[1] == EXPERTS for c in candidates(["logreg"]))
    # The extra ComParE block: alone and beside all three, with the two linear classifiers only.
    extra = [c for c in candidates(["logreg", "svc", "knn"], extra_blocks=("compare",)) if "compare" in c[2]]
    assert [c[0] for c in extra] == ["logreg [compare]", "svc [compare]", "logreg [all+compare]", "svc [all+compare]"]
    assert extra[2][2] == ("librosa", "egemaps", "whisper", "compare")
    assert not any("compare" in c[2] for c in candidates(["logreg", "svc"]))


def test_extra_blocks_are_extracted_only_when_asked_for(monkeypatch):
    from emotion_sensing.speech import train
    from emotion_sensing.speech.datasets import SetFeatures, SpeechSet

    calls = []

    def fake_extract(dataset, log=None, blocks=("librosa",), condition="clean"):
        calls.append((tuple(blocks), condition))
        return SetFeatures(np.full((2, 6373), 7.0, np.float32), [np.zeros((1, 40))] * 2)

    monkeypatch.setattr(train, "extract", fake_extract)
    base = SetFeatures(np.ones((2, 1312), np.float32), [np.zeros((1, 40))] * 2)
    noisy = SetFeatures(np.full((2, 1312), 2.0, np.float32), [np.zeros((1, 40))] * 2)
    corpus = train._Corpus(SpeechSet("x", [], ["happy", "sad"], ["a", "b"]), base, {"noise10": noisy},
                           ("compare",), log=lambda _: None)
    assert corpus.vectors(extra=False) is base.vectors and corpus.vectors("noise10", extra=False) is noisy.vectors
    assert not calls  # the shipped blocks alone never extract ComParE
    clean = corpus.vectors()
    assert clean.shape == (2, 1312 + 6373) and clean[0, 0] == 1.0 and clean[0, -1] == 7.0
    corpus.vectors()
    assert calls == [(("compare",), "clean")]  # once, then kept
    (v, labels, speakers), = train._augmented(corpus, np.array([True, False]), extra=True)
    assert v.shape == (1, 1312 + 6373) and v[0, 0] == 2.0 and list(labels) == ["happy"]
    assert calls[-1] == (("compare",), "noise10")


def test_live_session_standardisations_use_only_what_a_session_would_have():
    from emotion_sensing.speech.speaker import SpeakerPrior
    from emotion_sensing.speech.train import CROSS_MODES, standardise

    vectors, labels, speakers = synthetic(speakers=3)
    prior = SpeakerPrior.fit(vectors, speakers)
    out = {mode: standardise(vectors, speakers, prior, mode) for mode in CROSS_MODES}
    assert set(out) == {"speaker", "pooled", "after0", "after3", "after10"}
    # after0: a clip with only itself and the prior, whatever else the speaker said.
    first = standardise(vectors[:1], speakers[:1], prior, "after0")
    np.testing.assert_allclose(first, out["after0"][:1], rtol=1e-5)
    # More of the speaker's clips bring the standardisation closer to the full speaker statistics.
    gap = {n: np.abs(out[f"after{n}"] - out["speaker"]).mean() for n in (0, 3, 10)}
    assert gap[0] > gap[3] > gap[10]
    # pooled treats everyone as one speaker.
    np.testing.assert_allclose(out["pooled"], standardise(vectors, ["x"] * len(vectors), prior, "speaker"))
    with pytest.raises(ValueError):
        standardise(vectors, speakers, prior, "sideways")


def test_the_card_speaks_of_compare_only_when_it_was_compared():
    from emotion_sensing.speech import card

    def row(name, features, score, test, savee):
        return {"classifier": name, "model": name.split()[0], "features": features, "score": score,
                "cv_accuracy": score, "test_accuracy": test, "savee": {"speaker": savee, "pooled": savee / 2}}

    rows = [row("logreg [all]", ["librosa", "egemaps", "whisper"], 0.66, 0.79, 0.52),
            row("logreg [egemaps]", ["egemaps"], 0.58, 0.64, 0.52)]
    without = {"rows": rows, "shipped": "logreg [all]"}
    assert card._compare_text(without) == "" and card._compare_candidates(without) == ""
    assert card._runner_up(without) == ": 0.660, the next `logreg [egemaps]` 0.580"
    compared = {"rows": rows + [row("logreg [compare]", ["compare"], 0.55, 0.72, 0.38)], "shipped": "logreg [all]"}
    text = card._compare_text(compared)
    assert "ComParE_2016" in text and "not in the shipped vector" in text and "0.720 against 0.640" in text
    assert "[all+compare]" in card._compare_candidates(compared)


def test_protocol_rows_split_ravdess_by_actor_and_keep_savee_apart():
    from emotion_sensing.speech.datasets import SpeechSet
    from emotion_sensing.speech.train import protocol_rows

    ravdess = SpeechSet("ravdess", [], ["happy", "sad", "angry", "fear"], ["Actor_01", "Actor_19", "Actor_24", "Actor_02"])
    savee = SpeechSet("savee", [], ["neutral", "sad"], ["DC", "JE"])
    rows = protocol_rows(ravdess, savee, usable=[True, True, True, False, True, False])
    assert list(rows.labels) == ["happy", "sad", "angry", "fear", "neutral", "sad"]
    assert list(rows.speakers[4:]) == ["DC", "JE"]
    assert list(np.flatnonzero(rows.train)) == [0]  # Actor_02 has no vector
    assert list(np.flatnonzero(rows.test)) == [1, 2]
    assert list(np.flatnonzero(rows.savee)) == [4]
    assert protocol_rows(ravdess, savee).train.sum() == 2
