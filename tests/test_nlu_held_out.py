"""The demo's NLU on messages it was never trained on (tests/nlu/held_out.yml): how it understands
what people actually type, beyond the phrasings of data/nlu.yml."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import yaml

from emobot.paths import latest_rasa_model

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "tests" / "nlu" / "held_out.yml"
# Measured 52 of 64 (0.81) on 7 December (AMD EPYC, AVX-512), with the payment intent; then 67 of 82
# (0.82) with refund_info, how_long, account_help, bot_frustration, cancel_order and 18 more messages.
# Retraining on slightly changed data moves it by 2-3 messages either way (that day: 52 to 54 of the
# 61 messages before the payment ones over six trainings, then 54 and 52 of 64, and 60 to 62 of 77 over
# four), so the bar leaves room for that and for other CPUs.
MIN_ACCURACY = 0.78
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def examples(path: Path) -> list:
    """(intent, text) of each intent example, entity annotations taken out ("[4](rating) stars" is
    "4 stars"); regex and synonym blocks are not examples."""
    data = yaml.safe_load(path.read_text())["nlu"]
    return [(block["intent"], ANNOTATION.sub(r"\1", line.strip()[2:].strip())) for block in data
            if "intent" in block and "examples" in block
            for line in block["examples"].splitlines() if line.strip().startswith("- ")]


def test_no_held_out_message_is_in_the_training_data():
    trained = {text.lower() for _, text in examples(ROOT / "data" / "nlu.yml")}
    held_out = examples(HELD_OUT)
    assert len(held_out) >= 50
    assert [text for _, text in held_out if text.lower() in trained] == []


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    try:
        model = latest_rasa_model(ROOT)
    except FileNotFoundError as error:
        pytest.fail(str(error))
    return Agent.load(str(model))


@pytest.mark.integration
def test_the_demo_understands_messages_it_was_not_trained_on(agent):
    async def parse_all():
        return [(intent, text, (await agent.parse_message(text))["intent"]["name"])
                for intent, text in examples(HELD_OUT)]

    parsed = asyncio.run(parse_all())
    misses = [f"{text!r}: {intent} read as {got}" for intent, text, got in parsed if got != intent]
    accuracy = 1 - len(misses) / len(parsed)
    assert accuracy >= MIN_ACCURACY, f"{accuracy:.3f}:\n" + "\n".join(misses)
    # The worst answers a person could get: sadness thanked as praise, or taken for an order question.
    misread = [f"{text!r} read as {got}" for intent, text, got in parsed
               if intent == "share_feeling" and got in ("praise", "order_status")]
    assert misread == []


def entity_values(agent, texts: list, entity: str) -> list:
    """Each text's values of one entity, as the trained model's NLU gives them."""
    async def parse_all():
        return [[e["value"] for e in (await agent.parse_message(text))["entities"] if e["entity"] == entity]
                for text in texts]

    return asyncio.run(parse_all())


# (message, the order number the reply should name, or None): none of them in data/nlu.yml.
ORDER_NUMBERS = [
    ("order 51234, where is it?", "51234"),
    ("could you check on order #88001 please", "88001"),
    ("77341", "77341"),
    ("#40912", "40912"),
    ("my order number is 300512 and it never came", "300512"),
    ("Order 66120 still hasn't arrived", "66120"),
    ("my account number is 4471", None),
    ("customer number 60018, where's my parcel?", None),
    ("I'd give you a 4 for that", None),
    ("I ordered 2 jackets last week", None),
]


@pytest.mark.integration
def test_an_order_number_is_taken_from_the_message_and_nothing_else_is(agent):
    """The reply to an order question names the order given (utter_order_checked); an account or
    customer number, a rating or a quantity must not be taken for one."""
    trained = {text.lower() for _, text in examples(ROOT / "data" / "nlu.yml")}
    assert [text for text, _ in ORDER_NUMBERS if text.lower() in trained] == []
    wrong = [f"{text!r}: {got} (want {want})" for (text, want), got in
             zip(ORDER_NUMBERS, entity_values(agent, [text for text, _ in ORDER_NUMBERS], "order_number"))
             if got != ([want] if want else [])]
    assert wrong == []


# (message, the stars it gives): marks out of ten are halved and rounded up ("10/10" is 5).
RATINGS = [("I'd rate it 4/10", "2"), ("solid 8/10", "4"), ("9/10 would chat again", "5"), ("1/10", "1"),
           ("I'd give it a 3", "3"), ("5 stars", "5")]


@pytest.mark.integration
def test_a_rating_out_of_ten_is_kept_as_stars_out_of_five(agent):
    wrong = [f"{text!r}: {got} (want {want})" for (text, want), got in
             zip(RATINGS, entity_values(agent, [text for text, _ in RATINGS], "rating")) if got != [want]]
    assert wrong == []
