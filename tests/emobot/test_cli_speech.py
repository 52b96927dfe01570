"""`emobot sense|eval|bench speech` and `emobot chat --mic` as a user runs them."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.emotion_sensing.speech_audio import needs_espeak, needs_voice_model, silence, speak, wav_bytes

pytestmark = [needs_espeak, needs_voice_model]


def emobot(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emobot", *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_sense_speech_prints_the_reading_and_the_transcript(tmp_path):
    wav = speak("I want to speak to a manager about my broken phone", tmp_path)
    result = emobot("sense", "speech", "--audio", str(wav))
    assert result.returncode == 0, result.stderr
    assert "confidence" in result.stdout and "valence" in result.stdout
    assert "manager" in result.stdout.lower() and "transcript" in result.stdout
    as_json = json.loads(emobot("sense", "speech", "--audio", str(wav), "--json", "--no-transcript").stdout)
    assert as_json["reading"]["modality"] == "voice" and as_json["transcript"] is None


def test_sense_speech_on_silence_and_on_bad_input(tmp_path):
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(wav_bytes(silence()))
    result = emobot("sense", "speech", "--audio", str(quiet))
    assert result.returncode == 0 and "no speech" in result.stdout
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    for args, message in ((["--audio", str(text)], "not a WAV, FLAC or OGG"), (["--audio", str(tmp_path / "none.wav")], "no file"),
                          ([], "give a sound file")):
        result = emobot("sense", "speech", *args)
        assert result.returncode == 2 and message in result.stderr
        assert "Traceback" not in result.stderr


def test_eval_speech_on_a_manifest(tmp_path):
    rows = ["file,label"]
    for i, sentence in enumerate(["Where is my order", "Thank you for your help", "Nobody answers my emails"]):
        rows.append(f"{speak(sentence, tmp_path, f'{i}.wav').name},neutral")
    rows.append("missing.wav,neutral")
    rows.append(f"{speak('I am so bored', tmp_path, 'bored.wav').name},boredom")  # no counterpart
    rows.append(f"{speak('Hello', tmp_path, 'odd.wav').name},sarcastic")  # a name emobot does not know
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    result = emobot("eval", "speech", "--manifest", str(tmp_path / "m.csv"), "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["n"] == 3 and body["skipped"] == 3 and body["modality"] == "voice"
    assert body["skipped_labels"] == {"no_counterpart": {"boredom": 1}, "unknown": {"sarcastic": 1}}
    assert any("missing.wav" in note for note in body["skipped_notes"])
    assert set(body["accuracy_by_normalisation"]) == {
        "speaker", "running", "none", "pooled", "after0", "after3", "after10"}
    assert 0 <= body["ece"] <= 1 and body["temperature"] > 0
    missing = emobot("eval", "speech", "--manifest", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "manifest not found" in missing.stderr
    (tmp_path / "codes.csv").write_text("file,label\n0.wav,W\n1.wav,L\n")  # Emo-DB's German letters
    refused = emobot("eval", "speech", "--manifest", str(tmp_path / "codes.csv"))
    assert refused.returncode == 2 and "does not know: W (1), L (1)" in refused.stderr


def test_eval_speech_reads_a_corpus_labels_file_and_measures_robustness(tmp_path):
    """A labels.csv laid out as RAVDESS's and SAVEE's (file,speaker,emotion) is read by its header;
    --robustness measures every microphone condition, degrading the clips itself."""
    rows = ["file,speaker,emotion,duration_s"]
    for i, (sentence, who, emotion) in enumerate([("Where is my order", "a", "neutral"), ("I am so happy", "a", "happiness"),
                                                  ("This is awful", "b", "anger"), ("Thank you", "b", "neutral")]):
        rows.append(f"{speak(sentence, tmp_path, f'{i}.wav').name},{who},{emotion},1.0")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    result = emobot("eval", "speech", "--manifest", str(tmp_path / "labels.csv"), "--robustness", "--json",
                    env={**os.environ, "EMOBOT_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["n"] == 4 and body["n_speakers"] == 2 and body["skipped"] == 0
    conditions = body["robustness"]
    assert set(conditions) == {"clean", "telephone", "noise20", "noise10", "gain+12", "gain-12"}
    assert conditions["clean"]["speaker"] == pytest.approx(body["accuracy"]) and conditions["clean"]["drop"] == 0
    assert all(c["n"] == 4 and 0 <= c["speaker"] <= 1 for c in conditions.values())
    assert "telephone" in result.stderr  # progress on stderr, JSON alone on stdout


def test_eval_speech_on_class_folders_as_tess_lays_them_out(tmp_path):
    """`emobot eval speech --folders`: clips in folders named by their label, or by a speaker and then
    the label (TESS's OAF_angry, YAF_pleasant_surprised): the speaker part is the speaker; folders
    with no counterpart or an unknown name are counted with their clips."""
    clips = {"OAF_angry": ["This is awful", "I hate waiting"], "OAF_neutral": ["The bus leaves at six"],
             "YAF_pleasant_surprised": ["Oh what a lovely gift"], "YAF_boredom": ["Another long day"],
             "notes": ["Testing one two"]}
    for folder, sentences in clips.items():
        (tmp_path / "tess" / folder).mkdir(parents=True)
        for i, sentence in enumerate(sentences):
            speak(sentence, tmp_path / "tess" / folder, f"{i}.wav")
    result = emobot("eval", "speech", "--folders", str(tmp_path / "tess"), "--json",
                    env={**os.environ, "EMOBOT_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["n"] == 4 and body["n_speakers"] == 2 and body["skipped"] == 2
    assert body["per_class"]["surprise"]["support"] == 1 and body["per_class"]["angry"]["support"] == 2
    assert body["skipped_labels"] == {"no_counterpart": {"YAF_boredom": 1}, "unknown": {"notes": 1}}
    assert body["speakers"] == "2 speaker(s) from the folder names"
    empty = emobot("eval", "speech", "--folders", str(tmp_path / "tess" / "notes"))
    assert empty.returncode == 2 and "no clip in a folder named by an emotion" in empty.stderr


def test_bench_speech_reports_milliseconds():
    result = emobot("bench", "speech", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["utterance_s"] == 3.0 and body["cores"] == 1
    assert body["featurise_classify_ms"]["p50"] > 0 and body["featurise_classify_ms"]["n"] >= 10
    # What each feature block of the shipped model costs alone.
    assert set(body["block_ms"]) == set(body["blocks"]) and all(b["p50"] > 0 for b in body["block_ms"].values())
    # The extra blocks' costs (ComParE, Whisper's output), measured beside them (the comparison weighs them).
    assert body["extra_block_ms"]["compare"]["p50"] > 0 and body["extra_block_ms"]["whisper_final"]["p50"] > 0
    assert body["machine"]["cpu"] and body["machine"]["cores"] >= 1  # the figure says where it was measured
    assert body["transcript_ms"]["p50"] > 0 and body["transcript_engine"] == "whisper-tiny.en"
    # What the models cost in memory: the Whisper encoder alone holds tens of MB.
    assert body["memory_mb"]["warm"] > body["memory_mb"]["before"] > 0 and body["memory_mb"]["added"] > 20
    assert body["transcript_load_mb"] > 0


def test_chat_mic_without_a_microphone_says_so():
    from emobot.chat import RasaRestClient, chat_by_voice
    from emotion_sensing.speech import capture

    out = io.StringIO()
    try:
        capture.input_device()
        pytest.skip("this machine has a microphone")
    except capture.MicrophoneUnavailable:
        pass
    assert chat_by_voice(RasaRestClient("http://127.0.0.1:9"), out=out) == 2
    assert "no microphone" in out.getvalue() or "PortAudio" in out.getvalue()
    assert "emobot chat" in out.getvalue()


class FakeMicrophone:
    """Plays utterances as if spoken into a microphone."""

    info = {"name": "fake"}

    def __init__(self, utterances):
        self._utterances = utterances

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def utterances(self, timeout_s=None):
        yield from self._utterances


def test_chat_mic_sends_the_transcript_with_its_voice_reading(tmp_path, monkeypatch):
    from emobot import chat as chat_module
    from emotion_sensing.speech.audio import load
    from emotion_sensing.speech.vad import Utterance

    samples = load(speak("The delivery was late and the package was broken", tmp_path))
    sent, posted = [], []

    class Client(chat_module.RasaRestClient):
        def send(self, text, metadata=None):
            sent.append((text, metadata))
            return [{"text": "I'm sorry to hear that."}]

        def slots(self):
            return {"user_emotion": "sad", "emotion_confidence": 0.5, "emotion_valence": -0.4}

    monkeypatch.setattr(chat_module.requests, "get", lambda *a, **k: type("R", (), {"raise_for_status": lambda s: None})())
    monkeypatch.setattr(chat_module, "_post_reading", lambda url, sender, reading: posted.append(reading) or True)
    out = io.StringIO()
    mic = FakeMicrophone([Utterance(np.zeros(16_000, dtype=np.float32), 0.0, 0.0), Utterance(samples, 1.0, 2.0)])
    assert chat_module.chat_by_voice(Client("http://rasa"), out=out, microphone=mic) == 0
    assert len(sent) == 1  # the silent utterance sent nothing
    text, metadata = sent[0]
    assert "package" in text.lower()
    assert metadata["emobot"]["voice"]["modality"] == "voice"
    assert metadata["emobot"]["transcript"]["text"] == text
    assert posted and posted[0]["probs"] == metadata["emobot"]["voice"]["probs"]
    assert "bot> I'm sorry to hear that." in out.getvalue()
