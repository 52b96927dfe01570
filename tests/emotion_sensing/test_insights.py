"""Insights across conversations on a hand-built tracker store whose answers are known."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.insights import InsightsError, Query, format_insights, insights, parse_when
from emotion_sensing.replay import EmptyStore
from emotion_sensing.service.app import create_app

DAY = 86400.0
T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC


def user(text, intent, t, model_id="m1", camera=False):
    return {"event": "user", "text": text, "timestamp": t, "parse_data": {"intent": {"name": intent}},
            "metadata": {"model_id": model_id, "emobot": {"camera": camera, "microphone": False}}}


def sensed(label, valence, t, modalities=("text",)):
    reading = {"sensing": "ok", "contributions": [{"modality": m, "label": label, "share": 1 / len(modalities)}
                                                  for m in modalities]}
    return [{"event": "slot", "name": "user_emotion", "value": label, "timestamp": t},
            {"event": "slot", "name": "emotion_valence", "value": valence, "timestamp": t},
            {"event": "slot", "name": "emotion_reading", "value": reading, "timestamp": t}]


def reply(action, t, policy="RulePolicy"):
    return [{"event": "action", "name": action, "policy": policy, "timestamp": t},
            {"event": "bot", "text": action, "metadata": {"utter_action": action}, "timestamp": t},
            {"event": "action", "name": "action_listen", "policy": policy, "timestamp": t}]


def furious(t, model_id="m1", accept=True):
    """Angry complaint, the policy offers a person, the person accepts and calms down."""
    events = [user("this is outrageous", "complaint", t, model_id, camera=True),
              *sensed("angry", -0.8, t, ("text", "face")), *reply("utter_complaint", t),
              *reply("utter_offer_human", t + 1, policy="policy_3_EmotionPolicy")]
    if accept:
        events += [user("yes please", "affirm", t + 10, model_id), *sensed("neutral", -0.1, t + 10),
                   *reply("utter_handoff", t + 10)]
    return events


def calm(t, model_id="m1"):
    """A polite question, then thanks: the order-status reply is followed by a happier turn."""
    return [user("where is my order?", "order_status", t, model_id), *sensed("neutral", 0.0, t),
            *reply("utter_order_status", t), user("great, thanks!", "thanks", t + 5, model_id),
            *sensed("happy", 0.8, t + 5), *reply("utter_thanks", t + 5)]


def make_store(path, conversations):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL,"
                       " intent_name TEXT, action_name TEXT, data TEXT)")
    for sender, events in conversations.items():
        for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            kind = "corrupt" if isinstance(event, str) else event["event"]
            timestamp = T0 if isinstance(event, str) else event["timestamp"]
            connection.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                               (sender, kind, timestamp, data))
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


@pytest.fixture
def store(tmp_path):
    conversations = {f"angry-{i}": furious(T0 + i * 100, accept=i % 3 != 0) for i in range(6)}
    conversations.update({f"calm-{i}": calm(T0 + DAY + i * 100, model_id="m2") for i in range(7)})
    return make_store(tmp_path / "t.db", conversations)


def test_the_figures_rank_what_upsets_and_what_calms(store):
    result = insights(store, Query(min_n=3))
    assert result["conversations"] == 13 and result["user_turns"] == 6 + 4 + 14
    intents = [row["intent"] for row in result["intents"]]
    assert intents[0] == "complaint" and intents[-1] == "thanks"
    complaint = result["intents"][0]
    assert complaint["counts"] == {"angry": 6} and complaint["valence"]["mean"] == -0.8 and complaint["valence"]["n"] == 6
    # utter_order_status is followed by +0.8; the complaint reply and the offer by +0.7 (people who accepted)
    better = {row["action"]: row["valence_change"] for row in result["actions"]["better"]}
    assert better["utter_order_status"]["mean"] == pytest.approx(0.8) and better["utter_order_status"]["n"] == 7
    assert better["utter_offer_human"]["n"] == 4 and better["utter_offer_human"]["ci95"] is not None
    assert result["policy"]["stepped_in"] == 6
    assert result["policy"]["after"] == {"accepted a person": 4, "left the conversation": 2}
    assert result["policy"]["valence_before"]["mean"] == -0.8 and result["policy"]["valence_after"]["mean"] == -0.1
    upset = [c["sender_id"] for c in result["ended_upset"]["conversations"]]
    assert sorted(upset) == ["angry-0", "angry-3"]  # the two who left angry
    assert result["ended_upset"]["conversations"][0]["replay"] == "/replay/angry-0"
    sources = {row["source"]: row["n"] for row in result["by_source"]}
    assert sources == {"camera": 6, "text only": 18}
    assert [row["bucket"] for row in result["over_time"]] == ["2025-12-01", "2025-12-02"]
    text = format_insights(result)
    assert "complaint" in text and "EmotionPolicy stepped in 6 times" in text and "emobot replay angry-0" in text


def test_an_intent_with_turns_read_unknown_says_of_how_many_its_valence_is(tmp_path):
    """Ratings clicked (unknown, no valence) beside ratings typed: the line read "valence +0.60 (n=2)"
    beside "unknown 60%", as if the mix were of two turns."""
    conversations = {}
    for i in range(5):
        t = T0 + i * 100
        typed = i < 2
        conversations[f"rate-{i}"] = [user("5 stars" if typed else "/rate", "rate", t),
                                      *sensed("happy" if typed else "unknown", 0.6 if typed else None, t),
                                      *reply("utter_thank_rating", t)]
    text = format_insights(insights(make_store(tmp_path / "rated.db", conversations), Query(min_n=5)))
    line = next(line for line in text.splitlines() if line.strip().startswith("rate "))
    assert "valence +0.60 (n=2 of 5)" in line and "unknown 60%" in line, line


def test_small_groups_are_left_out_and_counted(store):
    result = insights(store, Query(min_n=5))
    assert "utter_offer_human" not in {row["action"] for row in result["actions"]["all"]}  # n=4
    assert "affirm" not in {row["intent"] for row in result["intents"]}  # n=4
    assert result["left_out_below_min_n"]["intents"] >= 1


def test_a_section_with_every_group_left_out_says_so_and_how_to_show_them(store):
    text = format_insights(insights(store, Query(min_n=50)))
    intents = text.split("intents, most upset first\n")[1].splitlines()[0]
    assert intents == "  none with n >= 50 (4 intents with fewer turns left out; --min-n sets the threshold)"
    assert "by source\n  none with n >= 50 (2 sources" in text
    assert "replies followed by a drop in valence\n  none with n >= 50 (" in text


def test_a_model_id_and_a_time_range_narrow_it_down(store):
    assert insights(store, Query(model_id="m2", min_n=1))["conversations"] == 7
    assert insights(store, Query(since=T0 + DAY / 2, min_n=1))["conversations"] == 7
    assert insights(store, Query(until=T0 + DAY / 2, min_n=1))["conversations"] == 6
    with pytest.raises(InsightsError, match="no user turns with model id 'm9'; model ids in the store: m"):
        insights(store, Query(model_id="m9"))


def test_an_empty_store_says_so(tmp_path):
    with pytest.raises(EmptyStore):
        insights(f"sqlite:///{tmp_path / 'none.db'}")
    connection = sqlite3.connect(tmp_path / "empty.db")
    connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL,"
                       " intent_name TEXT, action_name TEXT, data TEXT)")
    connection.close()
    with pytest.raises(EmptyStore, match="empty"):
        insights(f"sqlite:///{tmp_path / 'empty.db'}")


def test_without_readings_the_intents_still_count_and_a_note_says_why(tmp_path):
    url = make_store(tmp_path / "t.db", {f"s{i}": [user("hi", "greet", T0 + i), *reply("utter_greet", T0 + i)]
                                         for i in range(5)})
    result = insights(url)
    assert result["sensed_turns"] == 0 and "sensing off" in result["notes"][0]
    assert result["intents"][0]["intent"] == "greet" and result["intents"][0]["counts"] == {"not sensed": 5}


def test_corrupt_events_are_counted_and_the_rest_is_read(tmp_path):
    events = calm(T0)
    url = make_store(tmp_path / "t.db", {"a": events[:3] + ["{not json"] + events[3:], **{f"c{i}": calm(T0 + i)
                                                                                         for i in range(5)}})
    result = insights(url, Query(min_n=1))
    assert result["conversations"] == 6 and "1 unreadable events skipped" in result["notes"][0]


def rated(stars, valence, label, t, slot="rating"):
    """A conversation of two sensed turns at ``valence`` then a rating click (its own turn not sensed)."""
    return [user("hello", "greet", t), *sensed(label, valence, t), *reply("utter_greet", t),
            user("it went so-so", "share_feeling", t + 5), *sensed(label, valence, t + 5), *reply("utter_feeling", t + 5),
            user(f'/rate{{"rating": "{stars}"}}', "rate", t + 9),
            {"event": "slot", "name": slot, "value": str(stars), "timestamp": t + 9},
            *reply("utter_thank_rating", t + 9)]


def test_ratings_are_set_beside_the_valence_sensed_before_them(tmp_path):
    conversations = {f"low-{i}": rated(1, -0.6, "angry", T0 + i) for i in range(3)}
    conversations.update({f"high-{i}": rated(5, 0.5 + 0.1 * i, "happy", T0 + 100 + i) for i in range(4)})
    conversations["unsensed"] = [user("/rate", "rate", T0 + 200),
                                 {"event": "slot", "name": "rating", "value": "4", "timestamp": T0 + 200}]
    conversations["plain"] = calm(T0 + 300)
    url = make_store(tmp_path / "t.db", conversations)
    ratings = insights(url, Query(min_n=3))["ratings"]
    assert ratings["slot"] == "rating" and ratings["n"] == 8 and ratings["without_sensed_turns"] == 1
    assert ratings["mean"] == pytest.approx((3 * 1 + 4 * 5 + 4) / 8)
    low, high = ratings["by_rating"]
    assert low["rating"] == 1 and low["n"] == 3 and low["valence_before"]["mean"] == pytest.approx(-0.6)
    assert low["mix_before"]["counts"] == {"angry": 6}  # the rating's own turn is not counted
    assert high["rating"] == 5 and high["valence_before"]["mean"] == pytest.approx(0.65)
    assert ratings["valence_correlation"]["n"] == 7 and ratings["valence_correlation"]["r"] > 0.95
    text = format_insights(insights(url, Query(min_n=3)))
    assert "ratings (slot 'rating'): 8 conversations rated, mean 3.38; 1 with no sensed turn before the rating" in text
    assert "  rated 1   n=3     valence before -0.60" in text and "angry 100%" in text
    assert "rating against the mean valence sensed before it: r = +" in text
    # groups under --min-n are left out and said so; another slot name is honoured
    assert "rated 1" not in format_insights(insights(url, Query(min_n=4)))
    other = make_store(tmp_path / "o.db", {f"s{i}": rated(2, -0.2, "sad", T0 + i, slot="stars") for i in range(3)})
    assert insights(other, Query(min_n=1))["ratings"]["n"] == 0
    assert "no conversation set the slot 'rating' to a rating (--rating-slot" in format_insights(insights(other, Query(min_n=1)))
    assert insights(other, Query(min_n=1, rating_slot="stars"))["ratings"]["by_rating"][0]["rating"] == 2
    from emotion_sensing.insights_report import to_html

    page = to_html(insights(url, Query(min_n=3)))
    assert "<tr><td>1</td><td>3</td><td>-0.60</td><td>angry 100%</td></tr>" in page and "r = +0.99 (n=7)" in page
    assert "no rating given in 9 or more conversations (fewer are left out)" in to_html(insights(url, Query(min_n=9)))


def test_a_rating_that_is_not_a_number_is_no_rating(tmp_path):
    events = rated(3, 0.1, "neutral", T0)
    for event in events:
        if event.get("name") == "rating":
            event["value"] = "great"
    result = insights(make_store(tmp_path / "t.db", {"a": events}), Query(min_n=1))
    assert result["ratings"]["n"] == 0 and result["ratings"]["valence_correlation"]["r"] is None


def test_times_are_read_as_users_write_them():
    assert parse_when("2025-12-01") == T0
    assert parse_when("2025-12-01T12:00") == T0 + DAY / 2
    assert parse_when("7d", now=T0 + 7 * DAY) == T0 and parse_when("2h", now=T0) == T0 - 7200
    assert parse_when(None) is None
    with pytest.raises(ValueError, match="cannot read the time"):
        parse_when("last tuesday")


def test_the_command_prints_json_and_writes_html(store, tmp_path):
    report = tmp_path / "insights.html"
    done = subprocess.run([sys.executable, "-m", "emobot", "insights", "--store", store, "--json", "--min-n", "3",
                           "--html", str(report)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["intents"][0]["intent"] == "complaint"
    page = report.read_text()
    assert page.count("<img src='data:image/png;base64,") >= 4 and "Conversations that ended upset" in page
    assert "No conversation set the slot <code>rating</code> to a rating." in page
    bad = subprocess.run([sys.executable, "-m", "emobot", "insights", "--store", store, "--model-id", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no user turns with model id 'nope'" in bad.stderr and "Traceback" not in bad.stderr


async def test_the_service_serves_the_same_figures(store, models_dir):
    server = TestServer(create_app(Settings(models_dir=models_dir, tracker_store_url=store)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
            async with http.get("/insights", params={"format": "json", "min_n": "3"}) as response:
                body = await response.json()
            assert response.status == 200 and body["intents"][0]["intent"] == "complaint"
            async with http.get("/insights", params={"min_n": "3"}) as response:
                page = await response.text()
            assert response.status == 200 and "href='/replay/angry-0'" in page
            async with http.get("/insights", params={"since": "yesterday"}) as response:
                assert response.status == 400
            async with http.get("/insights", params={"model_id": "nope", "format": "json"}) as response:
                assert response.status == 404 and "nope" in (await response.json())["error"]["message"]
    finally:
        await server.close()
