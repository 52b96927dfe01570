"""Acoustic features: one fixed-length vector per utterance, whatever the audio's form."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.speech.audio import AudioError, decode, to_mono_float
from emotion_sensing.speech.features import (
    N_FEATURES,
    block_slice,
    feature_names,
    frame_features,
    utterance_features,
)
from tests.emotion_sensing.speech_audio import needs_espeak, silence, spoken, wav_bytes

SENTENCE = "Please tell me where my parcel is"


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    if needs_espeak.args[0]:
        pytest.skip(needs_espeak.kwargs["reason"])
    return spoken(SENTENCE, tmp_path_factory.mktemp("speech"))


def test_layout_names_every_value():
    names = feature_names()
    assert len(names) == N_FEATURES == 456
    assert names[block_slice("mfcc").start] == "mean.mfcc.0"
    assert names[block_slice("zcr", "std").start] == "std.zcr.0"
    assert len(set(names)) == N_FEATURES


def test_speech_gives_a_finite_vector(voice):
    vector = utterance_features(voice)
    assert vector.shape == (N_FEATURES,)
    assert np.isfinite(vector).all()


def test_any_sample_rate_channel_layout_and_sample_type(voice):
    reference = utterance_features(voice)
    stereo_int16 = (np.stack([voice, voice], axis=1) * 32767).astype(np.int16)
    as_int16 = utterance_features(stereo_int16)
    mfcc, rms = block_slice("mfcc"), block_slice("rms")
    assert np.corrcoef(as_int16[mfcc], reference[mfcc])[0, 1] > 0.999
    assert as_int16[rms][0] == pytest.approx(reference[rms][0], abs=0.5)
    channels_first = np.stack([voice, voice]).astype(np.float64)
    np.testing.assert_allclose(utterance_features(channels_first), reference, rtol=1e-3, atol=1e-3)
    import soxr

    at_44k = soxr.resample(voice, 16_000, 44_100)
    resampled = utterance_features(at_44k, 44_100)
    assert np.corrcoef(resampled[mfcc], reference[mfcc])[0, 1] > 0.99
    samples, rate = decode(wav_bytes(voice, 16_000, "FLAC"))
    assert rate == 16_000 and utterance_features(samples, rate) is not None


def test_a_louder_microphone_shifts_levels_in_decibels(voice):
    quiet, loud = utterance_features(0.1 * voice), utterance_features(0.4 * voice)
    rms = block_slice("rms")
    assert loud[rms][0] - quiet[rms][0] == pytest.approx(20 * np.log10(4), abs=0.3)
    assert np.allclose(loud[block_slice("chroma")], quiet[block_slice("chroma")], atol=0.02)


def test_silence_and_steady_noise_hold_no_speech():
    assert utterance_features(silence()) is None
    noise = 0.05 * np.random.default_rng(0).standard_normal(32_000).astype(np.float32)
    assert utterance_features(noise) is None
    assert frame_features(silence()).silent


def test_short_clips_do_not_break_anything(voice):
    for n in (1, 100, 800, 3000):
        vector = utterance_features(voice[8000 : 8000 + n])
        assert vector is None or (vector.shape == (N_FEATURES,) and np.isfinite(vector).all())
    assert utterance_features(np.zeros(0, dtype=np.float32)) is None


def test_sample_types_are_scaled_to_the_same_range():
    ramp = np.linspace(-1, 1, 9)
    assert np.allclose(to_mono_float((ramp * 32767).astype(np.int16)), ramp, atol=1e-4)
    assert np.allclose(to_mono_float((ramp * 2**31 - 1).astype(np.int32)), ramp, atol=1e-4)
    assert np.allclose(to_mono_float(((ramp + 1) * 127.5).astype(np.uint8)), ramp, atol=0.01)
    with pytest.raises(AudioError):
        to_mono_float(np.zeros((2, 2, 2)))


def test_cached_filter_banks_give_librosas_features(voice):
    import librosa

    from emotion_sensing.speech.features import FRAME_LAYOUT, _db

    values = frame_features(voice).values.T
    stft = np.abs(librosa.stft(voice, n_fft=1024, hop_length=256))
    power = stft**2
    expected = {
        "mel": _db(librosa.feature.melspectrogram(S=power, sr=16_000, n_mels=128, fmax=8000), 1e-10),
        "chroma": librosa.feature.chroma_stft(S=power, sr=16_000, tuning=0.0, n_fft=1024),
        "poly": librosa.feature.poly_features(S=_db(power, 1e-10), sr=16_000, n_fft=1024, order=2),
        "centroid": librosa.feature.spectral_centroid(S=stft, sr=16_000, n_fft=1024),
        "bandwidth": librosa.feature.spectral_bandwidth(S=stft, sr=16_000, n_fft=1024),
        "zcr": librosa.feature.zero_crossing_rate(voice, frame_length=1024, hop_length=256),
    }
    start = 0
    for name, size in FRAME_LAYOUT:
        if name in expected:
            np.testing.assert_allclose(values[start : start + size], expected[name], rtol=1e-4, atol=1e-3, err_msg=name)
        start += size


@needs_espeak
def test_features_of_a_set_are_the_same_from_worker_processes_or_one(tmp_path, monkeypatch):
    """`extract` spreads clips over processes (one per core); the vectors must be those of one
    process, and a script that cannot start workers (no `if __name__ == "__main__":` guard, so
    spawned workers re-run it) still gets them, from its own process."""
    import os
    import subprocess
    import sys

    from emotion_sensing.speech.datasets import CHUNK, SpeechSet, extract
    from tests.emotion_sensing.speech_audio import speak

    files = [speak(f"Sentence number {i} is spoken here.", tmp_path, f"s{i}.wav") for i in range(3)]
    files = (files * CHUNK)[: 2 * CHUNK + 1]  # three jobs
    dataset = SpeechSet("clips", files, ["neutral"] * len(files), ["a"] * len(files))
    monkeypatch.setenv("EMOBOT_FEATURE_WORKERS", "1")
    alone = extract(dataset, use_cache=False, condition="noise20")
    monkeypatch.setenv("EMOBOT_FEATURE_WORKERS", "2")
    spread = extract(dataset, use_cache=False, condition="noise20")
    np.testing.assert_array_equal(alone.vectors, spread.vectors)
    assert all(np.array_equal(a, b) for a, b in zip(alone.mfcc, spread.mfcc))
    assert not np.isnan(alone.vectors).any() and len(alone.vectors) == len(files)

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from emotion_sensing.speech.datasets import SpeechSet, extract\n"
        f"files = [Path(f) for f in {[str(f) for f in files]!r}]\n"
        "got = extract(SpeechSet('clips', files, ['neutral'] * len(files), ['a'] * len(files)), use_cache=False,\n"
        "              condition='noise20', log=print)\n"
        f"np.save({str(tmp_path / 'got.npy')!r}, got.vectors)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "EMOBOT_FEATURE_WORKERS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "extracting in this process" in done.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), alone.vectors)


@needs_espeak
def test_feature_workers_stop_when_their_command_is_killed(tmp_path):
    """A training run stopped by a signal cannot shut its worker pool down: the workers must not
    go on reading clips (or wait for work) after it is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.emotion_sensing.speech_audio import speak

    files = [speak(f"Sentence number {i} is spoken here.", tmp_path, f"s{i}.wav") for i in range(3)]
    script = tmp_path / "long.py"
    script.write_text(
        "from pathlib import Path\n"
        "from emotion_sensing.speech.datasets import SpeechSet, extract\n"
        "if __name__ == '__main__':\n"
        f"    files = [Path(f) for f in {[str(f) for f in files]!r}] * 400\n"
        "    extract(SpeechSet('clips', files, ['neutral'] * len(files), ['a'] * len(files)), use_cache=False,\n"
        "            blocks=('librosa', 'egemaps'))\n")
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "EMOBOT_FEATURE_WORKERS": "2"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> set:
        found = set()
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                if entry.isdigit() and int(fields[1]) == parent.pid and "spawn_main" in open(f"/proc/{entry}/cmdline").read():
                    found.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return found

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            return state != "Z" and "spawn_main" in open(f"/proc/{pid}/cmdline").read()
        except OSError:
            return False

    workers: set = set()
    try:
        deadline = time.time() + 120
        while len(workers) < 2:
            assert parent.poll() is None and time.time() < deadline, "the feature workers did not start"
            time.sleep(0.5)
            workers = children()
        time.sleep(3)  # at work on their clips
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.time() + 20
        while any(running(pid) for pid in workers):
            assert time.time() < deadline, f"feature workers {sorted(workers)} still running after their command was killed"
            time.sleep(0.5)
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
