from emotion_sensing.evaluation import evaluate, format_report


def test_metrics_and_confusion():
    truth = ["angry", "angry", "happy", "sad"]
    predicted = ["angry", "happy", "happy", "sad"]
    result = evaluate(truth, predicted)
    assert result["accuracy"] == 0.75
    assert result["per_class"]["angry"]["recall"] == 0.5
    assert result["per_class"]["happy"]["precision"] == 0.5
    assert result["per_class"]["fear"]["support"] == 0
    # macro-F1 averages the three labels present: (0.667 + 0.667 + 1.0) / 3
    assert abs(result["macro_f1"] - 0.7778) < 1e-3
    assert result["confusion"][0][3] == 1
    assert "accuracy=0.75" in format_report(result)
