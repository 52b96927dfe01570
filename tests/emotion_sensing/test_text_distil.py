"""Knowledge distillation in the text fine-tuning: a teacher's probabilities are learnt, not ignored."""
from __future__ import annotations

import numpy as np
import pytest

from emotion_sensing.text import encoder, finetune
from emotion_sensing.text.train import TEXT_LABELS

LABELS = list(TEXT_LABELS)
TEXTS = ["the parcel never came and nobody answers", "i cried all night", "the invoice is on the table",
         "this is an outrage", "my dog died today", "i ordered a blender yesterday"]
GIVEN = ["angry", "sad", "neutral", "angry", "sad", "neutral"]  # no row is labelled happy


def _corpus(tok, soft=None):
    ids = finetune.tokenise(tok, TEXTS, 32)
    flipped = finetune.tokenise(tok, [encoder.flip_ending(t) for t in TEXTS], 32)
    return finetune.Corpus("tiny", ids, np.array([LABELS.index(label) for label in GIVEN]), flipped=flipped,
                           soft=soft, soft_flipped=soft)


@pytest.fixture(scope="module")
def base_and_tokenizer():
    try:
        return encoder.base_weights(), encoder.tokenizer()
    except encoder.EncoderMissing as error:
        pytest.skip(f"the base encoder is not installed: {error}")


def test_a_student_learns_what_its_teacher_says_over_the_labels(base_and_tokenizer, tmp_path):
    base, tok = base_and_tokenizer
    happy = np.zeros((len(TEXTS), len(LABELS)), np.float32)
    happy[:, LABELS.index("happy")] = 1.0  # a teacher that reads every text as happy
    recipe = finetune.Recipe(epochs=4, batch_size=2, learning_rate=2e-3, warmup=0.1, distil=1.0)
    model, finished = finetune.train([_corpus(tok, happy)], LABELS, tmp_path / "work", recipe, base, log=lambda _: None)
    assert finished
    logits = finetune.predict_logits(model, finetune.tokenise(tok, TEXTS, 32))
    assert [LABELS[i] for i in logits.argmax(axis=1)] == ["happy"] * len(TEXTS)


def test_distillation_without_the_teachers_probabilities_is_refused(base_and_tokenizer, tmp_path):
    base, tok = base_and_tokenizer
    with pytest.raises(ValueError, match="teacher's probabilities"):
        finetune.train([_corpus(tok)], LABELS, tmp_path / "work", finetune.Recipe(distil=0.5), base)
