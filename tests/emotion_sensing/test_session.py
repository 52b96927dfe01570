from emotion_sensing.reading import Reading
from emotion_sensing.session import SessionStore, valid_session_id


def test_store_is_bounded_and_least_recently_used_goes_first():
    store = SessionStore(max_sessions=2, max_readings=3)
    store.get_or_create("a")
    store.get_or_create("b")
    store.get("a")
    store.get_or_create("c")
    assert set(store) == {"a", "c"}


def test_session_keeps_only_recent_readings():
    store = SessionStore(max_readings=3)
    session = store.get_or_create("s")
    for i in range(5):
        session.add(Reading("face", (1, 0, 0, 0, 0, 0, 0), 0.5, timestamp=float(i)))
    assert [r.timestamp for r in session.readings] == [2.0, 3.0, 4.0]
    assert session.counts() == {"face": 3}
    assert store.delete("s") and not store.delete("s")


def test_readings_older_than_the_window_are_not_kept():
    import time

    store = SessionStore(max_readings=512, max_age_s=20.0)
    session = store.get_or_create("s")
    now = time.time()
    for age in (60.0, 30.0, 21.0, 10.0, 0.0):
        session.add(Reading("face", (1, 0, 0, 0, 0, 0, 0), 0.5, timestamp=now - age))
    assert [round(now - r.timestamp) for r in session.readings] == [10, 0]


def test_session_ids():
    assert valid_session_id("chat-1a2b") and valid_session_id("user@example.com")
    for bad in ("", "a" * 129, "../etc/passwd", "id with space", "x\x00y", "<script>"):
        assert not valid_session_id(bad)
