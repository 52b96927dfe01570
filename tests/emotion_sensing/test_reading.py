import pytest

from emotion_sensing.reading import Reading


def test_reading_normalises_and_summarises():
    reading = Reading("text", (2, 0, 0, 0, 0, 0, 2), confidence=1.4, timestamp=10.0)
    assert reading.probs[0] == pytest.approx(0.5)
    assert reading.confidence == 1.0
    assert reading.label == "angry"
    assert reading.valence < 0


def test_reading_round_trips_through_json_form():
    reading = Reading("face", (0.1, 0, 0, 0.7, 0.1, 0, 0.1), confidence=0.8, timestamp=5.0, extras={"box": [1, 2, 3, 4]})
    again = Reading.from_dict(reading.to_dict())
    assert again.label == "happy"
    assert again.extras == {"box": [1, 2, 3, 4]}
    assert again.probs == pytest.approx(reading.probs, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modality": "smell", "probs": (1, 0, 0, 0, 0, 0, 0)},
        {"modality": "text", "probs": (1, 0, 0)},
        {"modality": "text", "probs": (0,) * 7},
        {"modality": "text", "probs": (-1, 2, 0, 0, 0, 0, 0)},
    ],
)
def test_bad_readings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Reading(confidence=1.0, **kwargs)
