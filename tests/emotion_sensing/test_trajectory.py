from emotion_sensing.trajectory import TrajectoryRule, should_step_in


def test_persistent_negative_valence_steps_in():
    assert should_step_in([0.1, -0.5, -0.6]) is not None
    assert "for 2 turns" in should_step_in([-0.4, -0.4])


def test_one_bad_turn_or_recovery_does_not():
    assert should_step_in([-0.8]) is None
    assert should_step_in([-0.8, 0.2]) is None
    assert should_step_in([None, -0.8]) is None


def test_escalation_steps_in_before_the_threshold_is_held():
    rule = TrajectoryRule(negative_valence=-0.4, turns=2)
    assert "falling" in should_step_in([0.3, -0.1, -0.25], rule)
    assert should_step_in([0.3, -0.1, 0.0], rule) is None


def test_unsensed_turns_are_skipped_not_counted_as_calm():
    assert should_step_in([-0.5, None, -0.6]) is not None
