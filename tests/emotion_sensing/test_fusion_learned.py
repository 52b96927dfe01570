"""Learned fusion: fitting, the model file, the runtime path, mood across turns, unknown when unsure."""
import json

import numpy as np
import pytest
from scipy.optimize import check_grad

from emotion_sensing import fusion_model as fm
from emotion_sensing.config import Settings, default_fusion
from emotion_sensing.fusion import FusionConfig, fuse
from emotion_sensing.fusion_train import choose_threshold
from emotion_sensing.labels import LABEL_INDEX, LABELS
from emotion_sensing.reading import Reading
from emotion_sensing.session import Session

K = len(LABELS)


def one_hot(label, strength=0.9):
    rest = (1 - strength) / (K - 1)
    return tuple(strength if name == label else rest for name in LABELS)


def synthetic(n=3000, seed=0):
    """Text reads the truth 30% of the time (else neutral), face 70%, voice is noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    logp = np.zeros((n, 3, K))
    for i, label in enumerate(y):
        text = label if rng.random() < 0.3 else LABEL_INDEX["neutral"]
        face = label if rng.random() < 0.7 else rng.integers(0, K)
        voice = rng.integers(0, K)
        for m, hot in enumerate((text, face, voice)):
            logp[i, m] = fm.log_probs(one_hot(LABELS[hot], 0.8))
    presence = (rng.random((n, 3)) < 0.8).astype(float)
    presence[:, 0] = 1.0
    return logp, presence, y


def test_fit_learns_to_trust_the_informative_modality_and_ignore_noise():
    logp, presence, y = synthetic()
    model = fm.fit("weighted", logp, presence, y)
    w_text, w_face, w_voice = (float(np.mean(np.diag(model.weights[m]))) for m in range(3))
    # Text is always right when it is not neutral, the face 70% of the time, the voice never.
    assert min(w_text, w_face) > 0.3
    assert abs(w_voice) < 0.1
    accuracy = np.mean(model.logits(logp, presence).argmax(axis=1) == y)
    assert accuracy > 0.6
    for kind in ("product", "stacking"):
        other = fm.fit(kind, logp, presence, y)
        assert np.mean(other.logits(logp, presence).argmax(axis=1) == y) > 0.5, kind


@pytest.mark.parametrize("kind", fm.KINDS)
def test_the_gradient_the_fit_follows_is_the_true_one(kind):
    logp, presence, y = synthetic(200, seed=1)
    theta0 = fm._initial(kind, 3) + np.random.default_rng(2).normal(0, 0.1, fm._initial(kind, 3).shape)
    captured = {}

    def spy(fun, x0, jac, method, options):
        captured["fun"] = fun
        from scipy.optimize import OptimizeResult
        return OptimizeResult(x=x0, fun=fun(x0)[0], nit=0, success=True)

    import scipy.optimize
    original = scipy.optimize.minimize
    scipy.optimize.minimize = spy
    try:
        fm.fit(kind, logp, presence, y)
    finally:
        scipy.optimize.minimize = original
    fun = captured["fun"]
    error = check_grad(lambda t: fun(t)[0], lambda t: fun(t)[1], theta0)
    assert error < 1e-4 * max(1.0, np.linalg.norm(fun(theta0)[1]))


def test_model_file_round_trips_and_a_wrong_file_says_why(tmp_path):
    logp, presence, y = synthetic(500)
    model = fm.fit("stacking", logp, presence, y)
    model.mood_weight, model.unknown_below = 0.4, 0.2
    path = tmp_path / fm.MODEL_FILE
    model.save(path)
    again = fm.LearnedFusion.load(path)
    assert again.kind == "stacking" and again.mood_weight == 0.4 and again.unknown_below == 0.2
    np.testing.assert_allclose(again.logits(logp[:5], presence[:5]), model.logits(logp[:5], presence[:5]), atol=1e-4)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        fm.LearnedFusion.load(path)
    data = model.to_dict()
    data["labels"] = ["a", "b"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="emobot train fusion"):
        fm.LearnedFusion.load(path)


def test_an_unreadable_model_file_falls_back_to_the_hand_set_weights(tmp_path):
    (tmp_path / fm.MODEL_FILE).write_text("{broken")
    with pytest.warns(RuntimeWarning, match="hand-set weights"):
        config = default_fusion(tmp_path)
    assert config.model is None
    assert default_fusion(tmp_path / "nowhere").model is None
    assert Settings.from_env({"EMOBOT_FUSION": "hand"}).fusion.model is None
    with pytest.raises(ValueError, match="EMOBOT_FUSION"):
        Settings.from_env({"EMOBOT_FUSION": "magic"})


def fitted(mood_weight=0.0, unknown_below=0.0, mood_text_carry=0.3):
    logp, presence, y = synthetic()
    model = fm.fit("weighted", logp, presence, y)
    model.mood_weight, model.unknown_below, model.mood_text_carry = mood_weight, unknown_below, mood_text_carry
    return FusionConfig(model=model)


def test_runtime_fusion_follows_the_fitted_model_and_explains_itself():
    config = fitted()
    text = Reading("text", one_hot("neutral", 0.8), 0.8, timestamp=100.0)
    face = [Reading("face", one_hot("angry", 0.8), 0.8, timestamp=100.0 - i * 0.25) for i in range(12)]
    state = fuse([text, *face], now=100.0, config=config)
    assert state.label == "angry"  # a neutral message is weak evidence; a fresh angry face is strong
    shares = {c.modality: c.share for c in state.contributions}
    assert shares["face"] > shares["text"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert state.valence < 0
    assert fuse([], now=100.0, config=config).label == "unknown"


def _distance(a, b):
    return 0.5 * float(np.abs(np.asarray(a.probs) - np.asarray(b.probs)).sum())


def test_a_stale_face_counts_less_than_a_fresh_one():
    config = fitted()
    text = Reading("text", one_hot("happy", 0.8), 0.8, timestamp=100.0)
    words = fuse([text], now=100.0, config=config)
    states = [fuse([text, Reading("face", one_hot("angry", 0.8), 0.8, timestamp=100.0 - age)], now=100.0,
                   config=config) for age in (0.0, 1.0, 3.0, 6.0, 12.0, 19.0)]
    # The older the face, the nearer the state to what the words alone say.
    distances = [_distance(state, words) for state in states]
    assert distances == sorted(distances, reverse=True) and distances[0] > 0.05
    assert distances[-1] < 0.01


def test_an_aged_face_does_not_turn_a_confident_message_unknown():
    """Issue 21: with faces read seldom (a saturated machine), a face several seconds old switched
    the fusion to the learned regime, where the words weigh little, and a message the text reads
    confidently came out unknown. The state now moves smoothly from the fused one (fresh face) to
    the words' own (old face), and is never less sure than both."""
    config = fitted(unknown_below=0.3)
    text = Reading("text", one_hot("neutral", 0.95), 0.95, timestamp=100.0)
    words = fuse([text], now=100.0, config=config)
    assert words.label == "neutral"
    for age in (2.0, 4.0, 6.0, 8.0, 10.0, 15.0):
        face = Reading("face", one_hot("happy", 0.9), 0.9, timestamp=100.0 - age)
        state = fuse([text, face], now=100.0, config=config)
        assert state.label != "unknown", age
    # The face's presence at 1 is the learned combination itself (what the fit and benchmarks see).
    model = config.model
    logp = np.stack([fm.log_probs(one_hot("neutral", 0.95)), fm.log_probs(one_hot("happy", 0.9)),
                     fm.log_probs(one_hot("sad", 0.5))])
    z, _ = model.terms(logp, np.array([1.0, 1.0, 0.0]))
    assert np.allclose(z, model.bias + model.evidence(logp, np.array([1.0, 1.0, 0.0])).sum(axis=0))
    # terms() (one turn) and logits() (many rows) agree for aged readings too.
    for presence in ([1.0, 0.3, 0.0], [1.0, 0.5, 0.5], [1.0, 0.0, 0.2], [0.0, 0.4, 0.0]):
        one = fm.softmax(model.terms(logp, np.array(presence))[0])
        many = fm.softmax(model.logits(logp[None], np.array([presence]))[0])
        assert np.allclose(one, many, atol=1e-9), presence


def test_unknown_below_the_fitted_threshold():
    weak = Reading("voice", tuple(1 / K for _ in LABELS), 0.2, timestamp=100.0)
    assert fuse([weak], now=100.0, config=fitted(unknown_below=0.5)).label == "unknown"
    assert fuse([weak], now=100.0, config=fitted(unknown_below=0.0)).label != "unknown"


def test_threshold_choice_costs_no_validation_accuracy():
    curve = [{"threshold": t, "accuracy_unknown_wrong": a}
             for t, a in ((0.0, 0.700), (0.1, 0.700), (0.15, 0.700), (0.2, 0.696), (0.3, 0.690))]
    assert choose_threshold(curve) == 0.15


def test_mood_keeps_a_content_free_turn_after_an_angry_one_angry_leaning():
    config = fitted(mood_weight=0.8)
    session = Session("s")
    session.add(Reading("text", one_hot("angry", 0.8), 0.8, timestamp=100.0))
    first = session.fuse(config, now=100.0)
    session.end_turn(first)
    assert first.label == "angry"
    session.add(Reading("text", one_hot("neutral", 0.8), 0.8, timestamp=105.0))
    second = session.fuse(config, now=105.0)
    assert second.valence < 0 and second.mood_share > 0
    # Without the mood the same turn reads neutral.
    assert fuse(list(session.readings), now=105.0, config=config).probs[LABEL_INDEX["angry"]] < \
        second.probs[LABEL_INDEX["angry"]]
    # A message that carries a new emotion moves the state.
    session.end_turn(second)
    session.add(Reading("text", one_hot("happy", 0.95), 0.95, timestamp=110.0))
    assert session.fuse(config, now=110.0).label == "happy"


def test_mood_fades_with_time():
    model = fitted(mood_weight=0.8).model
    assert model.mood_factor(0) == 1.0
    assert model.mood_factor(model.mood_half_life_s) == pytest.approx(0.5)


def test_mood_weight_is_fitted_from_sequences():
    rng = np.random.default_rng(3)
    model = fm.fit("weighted", *synthetic())

    def sequences(persistent):
        out = []
        for _ in range(300):
            label = rng.integers(0, K)
            labels, logp = [], []
            for _ in range(4):
                if not persistent:
                    label = rng.integers(0, K)
                shown = label if rng.random() < 0.5 else LABEL_INDEX["neutral"]
                lp = np.zeros((3, K))
                lp[0] = fm.log_probs(one_hot(LABELS[shown], 0.8))
                logp.append(lp)
                labels.append(label)
            presence = np.tile([1.0, 0.0, 0.0], (4, 1))
            out.append((np.array(logp), presence, np.array(labels)))
        return out

    settings = fm.mood_settings(keeps=(1.0, 0.5))
    best, curve = fm.fit_mood_weight(model, sequences(True), settings)
    other_best, other = fm.fit_mood_weight(model, sequences(False), settings)
    persistent, carry, _ = fm.mood_setting(best)
    independent, _, _ = fm.mood_setting(other_best)
    assert persistent > 0.3 and carry < 1.0  # half the messages are content-free: the words carry less
    assert "0/1/1" in curve and best in curve and len(curve) == len(settings)
    # Where the emotion persists the mood is worth much more. (Where it does not, a mood after an
    # emotional turn still lets a content-free message's words count less, so its weight need not
    # be 0: a neutral turn leaves no mood, and these labels are uniform.)
    gain = curve["0/1/1"] - min(curve.values())
    assert independent <= persistent and other["0/1/1"] - min(other.values()) < gain / 2


def test_mood_keep_bounds_what_a_confident_turn_vetoes():
    """The log of a confident turn's state (happy 0.9985, sad 0.0002) vetoes a message that plainly
    carries another emotion; mixed with how often the emotion stays (k < 1), it leans on it."""
    model = fm.fit("weighted", *synthetic())
    happy = np.array(one_hot("happy", 0.9985))
    logp = np.zeros((3, K))
    logp[0] = fm.log_probs(one_hot("sad", 0.8))
    presence = np.array([1.0, 0.0, 0.0])
    sad, happy_i = LABEL_INDEX["sad"], LABEL_INDEX["happy"]
    vetoed, _ = model.terms(logp, presence, happy, 1.0, 0.8, 0.5, 1.0)
    assert vetoed.argmax() == happy_i
    kept, parts = model.terms(logp, presence, happy, 1.0, 0.8, 0.5, 0.5)
    assert kept.argmax() == sad and parts["mood"][happy_i] > parts["mood"][sad]
    # k = 1 is the mood as it was, and files without the field read as k = 1.
    older = {k: v for k, v in model.to_dict().items() if k != "mood_keep"}
    assert fm.LearnedFusion.from_dict(older).mood_keep == 1.0


def test_a_message_alone_keeps_its_own_reading():
    """Text-only fusion leaves the reading unchanged; only a mood (an earlier turn) changes it."""
    config = fitted(mood_weight=0.5)
    reading = Reading("text", one_hot("sad", 0.6), 0.6, timestamp=100.0, valence=-0.4)
    state = fuse([reading], now=100.0, config=config)
    assert state.label == "sad" and state.probs == pytest.approx(reading.probs, abs=1e-3)
    assert state.valence == pytest.approx(-0.4) and state.mood_share == 0


def test_a_neutral_message_says_little_about_the_person_an_emotional_one_a_lot():
    logp = np.zeros((3, K))
    logp[0] = fm.log_probs(one_hot("neutral", 0.95))
    neutral = fm.carry_text(logp, 0.3)[0]
    assert neutral.max() - neutral.min() < 0.5  # near-even: every emotion stays possible
    assert neutral.argmax() == LABEL_INDEX["neutral"]
    logp[0] = fm.log_probs(one_hot("angry", 0.95))
    angry = fm.carry_text(logp, 0.3)[0]
    assert angry.argmax() == LABEL_INDEX["angry"] and angry.max() - np.sort(angry)[-2] > 2
    np.testing.assert_allclose(fm.carry_text(logp, 1.0), logp)


def test_a_near_even_state_is_not_pushed_negative():
    """Four of the seven labels are negative: valence comes from the deciding modalities, not from
    the fused distribution's mean."""
    config = fitted()
    config.model.text_carry = 0.3
    calm = Reading("text", one_hot("neutral", 0.95), 0.95, timestamp=100.0, valence=0.0)
    state = fuse([calm], now=100.0, config=config)
    assert abs(state.valence) < 0.05


def test_a_mood_from_long_ago_is_forgotten():
    """After a long silence a lone message keeps its own reading again."""
    config = fitted(mood_weight=0.5)
    session = Session("s")
    session.add(Reading("text", one_hot("angry", 0.8), 0.8, timestamp=100.0))
    session.end_turn(session.fuse(config, now=100.0))
    later = 100.0 + 20 * config.model.mood_half_life_s
    message = Reading("text", one_hot("neutral", 0.8), 0.8, timestamp=later)
    session.add(message)
    state = session.fuse(config, now=later)
    assert state.mood_share == 0 and state.probs == pytest.approx(message.probs, abs=1e-3)


def test_a_strong_mood_costs_macro_f1_where_emotion_changes_and_not_where_it_persists():
    """The mood's condition in `emobot train fusion`: macro-F1 over later turns per setting. Where
    each message says what the person feels and feelings change from turn to turn, a strong mood
    holds the old state and costs macro-F1; where they persist it costs none."""
    from emotion_sensing.fusion_train import NO_MOOD, mood_macro_f1

    rng = np.random.default_rng(5)
    model = fm.fit("weighted", *synthetic())

    def sequences(persistent):
        out = []
        for _ in range(150):
            label = rng.integers(0, K - 1)  # an emotion, never neutral: every turn leaves a mood
            labels, logp = [], []
            for _ in range(4):
                if not persistent:
                    label = rng.integers(0, K - 1)
                lp = np.zeros((3, K))
                lp[0] = fm.log_probs(one_hot(LABELS[label], 0.6))
                logp.append(lp)
                labels.append(label)
            out.append((np.array(logp), np.tile([1.0, 0.0, 0.0], (4, 1)), np.array(labels)))
        return out

    changing = mood_macro_f1(model, sequences(False), [NO_MOOD, "1/0.1"])
    steady = mood_macro_f1(model, sequences(True), [NO_MOOD, "1/0.1"])
    assert changing["1/0.1"] < changing[NO_MOOD] - 0.05
    assert steady["1/0.1"] >= steady[NO_MOOD] - 0.01


def test_how_often_emotion_changes_is_counted_from_dailydialog(tmp_path):
    """Consecutive utterances of one speaker, both emotional: how many change emotion. Neutral ones
    and the other speaker's do not count; without the corpus the recorded figure stands."""
    from emotion_sensing.fusion_train import MOOD_CHANGE, dailydialog_change_rate

    folder = tmp_path / "dailydialog"
    folder.mkdir()
    rows = [  # dialogue, turn, speaker, emotion
        (1, 0, "A", "happiness"), (1, 1, "B", "anger"), (1, 2, "A", "happiness"), (1, 3, "B", "no emotion"),
        (1, 4, "A", "sadness"), (1, 5, "B", "anger"), (2, 0, "A", "fear"), (2, 1, "A", "no emotion"),
        (2, 2, "A", "fear"),
    ]
    (folder / "train.csv").write_text("dialogue_id,turn,speaker,text,emotion\n" + "".join(
        f"{d},{t},{s},utterance {d}-{t},{e}\n" for d, t, s, e in rows))
    rate, source = dailydialog_change_rate(tmp_path)
    # A: happy -> happy (same), happy -> sad (changed). B's angry, neutral, angry and dialogue 2's
    # fear, neutral, fear make no pair: each has a neutral side.
    assert rate == pytest.approx(1 / 2) and "1 of 2" in source
    missing, why = dailydialog_change_rate(tmp_path / "elsewhere")
    assert missing == MOOD_CHANGE and "not here" in why


@pytest.mark.parametrize("kind", fm.KINDS)
def test_many_rows_at_once_fuse_as_one_by_one(kind):
    """The fit scores every mood setting on all rows at once (`logits` with moods, `run_sequences`):
    the same as `terms` row by row and turn by turn, for every presence pattern (aged face and voice too),
    rows whose mood reads neutral (none) and rows with no mood."""
    rng = np.random.default_rng(11)
    model = fm.fit(kind, *synthetic(600))
    n = 300
    logp = np.log(rng.dirichlet(np.ones(K) * 0.5, size=(n, 3)))
    presence = rng.choice([0.0, 1.0, 0.3, 0.8], size=(n, 3))
    presence[rng.random(n) < 0.3, 0] = 1.0
    moods = rng.dirichlet(np.ones(K) * 0.3, size=n)
    moods[::5, LABEL_INDEX["neutral"]] = 5.0
    moods /= moods.sum(axis=1, keepdims=True)
    for setting in ((0.7, 0.3, 0.6), (1.0, 0.7, 1.0), (0.0, 1.0, 1.0)):
        batch = model.logits(logp, presence, moods, 0.8, *setting)
        single = np.array([model.terms(logp[i], presence[i], moods[i], 0.8, *setting)[0] for i in range(n)])
        np.testing.assert_allclose(batch, single, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.logits(logp, presence),
                               [model.terms(logp[i], presence[i])[0] for i in range(n)], rtol=1e-9, atol=1e-9)
    sequences = [(logp[i:i + size], presence[i:i + size], np.zeros(size, dtype=int))
                 for i, size in zip(range(0, n, 7), rng.integers(1, 7, size=n // 7))]
    for got, (lp, pr, _) in zip(fm.run_sequences(model, sequences, 0.9, 0.5, 0.7), sequences):
        previous, expected = None, []  # one turn after another, each state the next one's mood
        for t in range(len(lp)):
            previous = fm.softmax(model.terms(lp[t], pr[t], previous, 1.0, 0.9, 0.5, 0.7)[0])
            expected.append(previous)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
