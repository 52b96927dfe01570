import pytest

from emotion_sensing.config import Settings


@pytest.fixture(autouse=True)
def no_endpoints_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no endpoints.yml in the working folder


def test_defaults_are_loopback_and_documented_ports():
    s = Settings.from_env({})
    assert (s.host, s.rasa_port, s.actions_port, s.service_port) == ("127.0.0.1", 5005, 5055, 5006)
    assert s.service_url == "http://127.0.0.1:5006"
    assert s.time_budget_ms == 300


def test_environment_overrides():
    s = Settings.from_env({"EMOBOT_SERVICE_PORT": "7000", "EMOBOT_TIME_BUDGET_MS": "150",
                           "EMOBOT_FUSION_RELIABILITY": "face=0.5", "EMOBOT_MODALITIES": "text",
                           "EMOBOT_FUSION_HALF_LIFE_S": "face=1.5", "EMOBOT_FUSION_WINDOW_S": "12"})
    assert s.service_url.endswith(":7000")
    assert s.time_budget_ms == 150
    assert s.fusion.reliability["face"] == 0.5 and s.fusion.reliability["text"] == 1.0
    assert s.modalities == ("text",)
    assert s.fusion.half_life_s["face"] == 1.5 and s.fusion.half_life_s["voice"] == 8.0
    assert s.fusion.window_s == 12.0


def test_policy_thresholds_from_the_environment():
    from emobot.policy import policy_overrides

    assert policy_overrides({"EMOBOT_POLICY_TURNS": "3", "EMOBOT_POLICY_NEGATIVE_VALENCE": "-0.5"}) == {
        "turns": 3, "negative_valence": -0.5}
    with pytest.raises(ValueError, match="EMOBOT_POLICY_TURNS"):
        policy_overrides({"EMOBOT_POLICY_TURNS": "many"})


def test_malformed_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="EMOBOT"):
        Settings.from_env({"EMOBOT_RASA_PORT": "five"})


def test_endpoints_emotion_service_block_then_environment(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("emotion_service:\n  url: http://127.0.0.1:7777\n  time_budget_ms: 120\n")
    s = Settings.from_env({}, endpoints=endpoints)
    assert s.service_url == "http://127.0.0.1:7777" and s.time_budget_ms == 120
    s = Settings.from_env({"EMOBOT_TIME_BUDGET_MS": "90"}, endpoints=endpoints)
    assert s.time_budget_ms == 90


def test_rasa_workers_a_count_or_one_per_core():
    import os

    assert Settings.from_env({"EMOBOT_RASA_WORKERS": "3"}).rasa_workers == 3
    cores = len(os.sched_getaffinity(0))
    assert Settings.from_env({"EMOBOT_RASA_WORKERS": "auto"}).rasa_workers == max(1, min(4, cores))
    assert Settings.from_env({}).rasa_workers == max(1, min(4, cores))  # the default
    for bad in ("0", "many", "100"):
        with pytest.raises(ValueError, match="EMOBOT_RASA_WORKERS"):
            Settings.from_env({"EMOBOT_RASA_WORKERS": bad})


def test_several_rasa_workers_get_the_file_lock_store_unless_one_is_configured(tmp_path):
    from dataclasses import replace

    from emobot.stack import Stack

    stack = Stack.on_free_ports(tmp_path)
    stack.settings = replace(stack.settings, rasa_workers=1)
    assert "lock_store" not in stack.endpoints()
    stack.settings = replace(stack.settings, rasa_workers=2)
    assert stack.endpoints()["lock_store"] == {"type": "emobot.lock_store.FileLockStore", "path": str(tmp_path / "locks")}
    # Before Rasa starts no turn can be in progress: a ticket left by a killed Rasa goes.
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "stale.json").write_text("{}")
    stack._clear_file_locks()
    assert not list((tmp_path / "locks").glob("*.json"))
    redis = {"type": "emobot.lock_store.RedisLockStore", "url": "127.0.0.1", "port": 6379}
    stack.lock_store = redis
    assert stack.endpoints()["lock_store"] == redis
