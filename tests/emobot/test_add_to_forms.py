"""`emobot add-to` on an assistant with a form, as real assistants have: which responses get
emotion stubs (marked, and named again while they copy their default), the suggestion of where tone
matters, a clean `rasa data validate`, the file's own style kept, the other layouts (a domain/
folder, a single actions.py), --undo, and servers named elsewhere."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from emobot.installer import plan

RASA = str(Path(sys.executable).parent / "rasa")

DOMAIN = """version: "3.1"
intents: [greet, order_status, complaint, affirm, deny, goodbye, inform]
entities: [order_number, email]
slots:
  order_number:
    type: text
    mappings:
    - type: from_entity
      entity: order_number
  email:
    type: text
    mappings:
    - type: from_entity
      entity: email
forms:
  order_form:
    required_slots: [order_number, email]
responses:
  utter_greet:
  - text: "Hello! How can I help?"
  utter_order_status:
  - text: "Your order {order_number} is on its way."
  utter_complaint:
  - text: "I'm sorry to hear that. I've logged your complaint."
  utter_goodbye:
  - text: "Goodbye!"
  utter_ask_order_form_order_number:
  - text: "What is your order number?"
  utter_ask_email:
  - text: "What is your email address?"
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - good morning
- intent: order_status
  examples: |
    - where is my order?
    - track my parcel
    - when will my order arrive?
- intent: complaint
  examples: |
    - this is terrible
    - I want to complain
    - the item arrived broken
- intent: affirm
  examples: |
    - yes
    - sure
    - yes please
- intent: deny
  examples: |
    - no
    - no thanks
    - not now
- intent: goodbye
  examples: |
    - bye
    - see you
    - goodbye
- intent: inform
  examples: |
    - my order is [12345](order_number)
    - it's [99881](order_number)
    - [jane@example.com](email)
"""
STORIES = """version: "3.1"
stories:
- story: track an order
  steps:
  - intent: greet
  - action: utter_greet
  - intent: order_status
  - action: order_form
  - active_loop: order_form
  - active_loop: null
  - action: utter_order_status
"""
RULES = """version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: complain
  steps:
  - intent: complaint
  - action: utter_complaint
- rule: bye
  steps:
  - intent: goodbye
  - action: utter_goodbye
- rule: greet again
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_greet
- rule: ask for the order
  steps:
  - intent: order_status
  - action: order_form
  - active_loop: order_form
- rule: order form done
  condition:
  - active_loop: order_form
  steps:
  - action: order_form
  - active_loop: null
  - action: utter_order_status
"""
CONFIG = """recipe: default.v1
assistant_id: forms-fixture
language: en
pipeline:
- name: WhitespaceTokenizer
- name: CountVectorsFeaturizer
- name: DIETClassifier
  epochs: 20
policies:
- name: RulePolicy
"""


@pytest.fixture
def assistant(tmp_path) -> Path:
    project = tmp_path / "shop"
    (project / "data").mkdir(parents=True)
    (project / "domain.yml").write_text(DOMAIN)
    (project / "config.yml").write_text(CONFIG)
    (project / "data" / "nlu.yml").write_text(NLU)
    (project / "data" / "stories.yml").write_text(STORIES)
    (project / "data" / "rules.yml").write_text(RULES)
    return project


def _stubbed(project: Path) -> set:
    domain = YAML(typ="safe").load((project / "domain.yml").read_text())
    return {name for name, variations in domain["responses"].items()
            if any(v.get("condition") for v in variations)}


def _add_to(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emobot", "add-to", str(project), "--yes", *args],
                          capture_output=True, text=True, timeout=120)


def test_form_prompts_get_no_stubs_by_default_and_the_summary_says_so(assistant):
    done = _add_to(assistant)
    assert done.returncode == 0, done.stderr
    assert _stubbed(assistant) == {"utter_greet", "utter_order_status", "utter_complaint", "utter_goodbye"}
    assert "left without emotion variations: 2 responses, 2 of them form prompts (form prompts (utter_ask_*)" in done.stdout
    # Where tone matters most: replies that answer a user message in the stories and rules.
    assert "utter_greet (3), utter_complaint (1), utter_goodbye (1)" in done.stdout
    again = _add_to(assistant)
    assert "already emotion-aware" in again.stdout


def test_responses_chooses_which_get_stubs(assistant):
    done = _add_to(assistant, "--responses", "utter_complaint,utter_order_*")
    assert done.returncode == 0, done.stderr
    assert _stubbed(assistant) == {"utter_complaint", "utter_order_status"}
    assert "left without emotion variations: 4 responses (not matched by --responses" in done.stdout


def test_no_stubs_adds_only_the_wiring(assistant):
    done = _add_to(assistant, "--no-stubs")
    assert done.returncode == 0, done.stderr
    assert _stubbed(assistant) == set()
    domain = YAML(typ="safe").load((assistant / "domain.yml").read_text())
    assert "user_emotion" in domain["slots"] and "action_sense_emotion" in domain["actions"]
    assert "utter_offer_human" in domain["responses"]


def test_each_stub_is_marked_and_a_rerun_names_the_responses_still_to_rewrite(assistant):
    done = _add_to(assistant)
    assert done.returncode == 0, done.stderr
    assert "rewrite the emotion variations marked '# emobot:' in domain.yml (4 responses)" in done.stdout
    text = (assistant / "domain.yml").read_text()
    marked = [line for line in text.splitlines() if "# emobot: a copy of the default" in line]
    assert len(marked) == 8 and all(line.lstrip().startswith("- condition:") for line in marked)
    assert sum("user_emotion angry" in line for line in marked) == 4

    again = _add_to(assistant)
    assert "already emotion-aware" in again.stdout
    assert ("4 responses have emotion variations that still copy their default text "
            "(utter_greet, utter_order_status, utter_complaint, utter_goodbye)") in again.stdout

    # The developer rewrites both of utter_complaint's variations: it is no longer named.
    yaml = YAML(typ="rt")
    domain = yaml.load(text)
    for variation in domain["responses"]["utter_complaint"]:
        if variation.get("condition"):
            variation["text"] = "I'm sorry. I've logged it and someone will look at it today."
    with (assistant / "domain.yml").open("w") as handle:
        yaml.dump(domain, handle)
    again = _add_to(assistant)
    assert "3 responses have emotion variations that still copy" in again.stdout
    assert "utter_complaint" not in again.stdout


def test_emoji_in_replies_stay_as_written(assistant):
    """ruamel.yaml writes 😊 in double quotes as \U0001F60A: the diff rewrote every emoji of the demo.
    A written-out backslash before such letters (\\U0001F60A in the file) stays text."""
    domain = assistant / "domain.yml"
    reply = r'"Goodbye! 😊 Not an emoji: \\U0001F60A"'
    domain.write_text(DOMAIN.replace('"Goodbye!"', reply))
    change = next(c for c in plan(assistant).changes if c.path == domain)
    assert change.after.count(f"text: {reply}") == 3  # the reply and its two stubs
    loaded = YAML(typ="safe").load(change.after)["responses"]["utter_goodbye"]
    assert {v["text"] for v in loaded} == {"Goodbye! 😊 Not an emoji: \\U0001F60A"}
    assert not [line for line in change.diff(assistant).splitlines() if line.startswith("-") and not line.startswith("---")]


def test_a_domain_mixing_list_styles_keeps_each_sections_style(assistant):
    domain = assistant / "domain.yml"
    intents = "intents:\n  - greet\n  - order_status\n  - complaint\n  - affirm\n  - deny\n  - goodbye\n  - inform\n"
    domain.write_text(DOMAIN.replace("intents: [greet, order_status, complaint, affirm, deny, goodbye, inform]\n",
                                     intents))
    change = next(c for c in plan(assistant).changes if c.path == domain)
    assert intents in change.after  # dashes indented under their key, as written
    assert '  utter_greet:\n  - condition: [{type: slot, name: user_emotion, value: angry}]' in change.after
    assert not [line for line in change.diff(assistant).splitlines()
                if line.startswith("-") and not line.startswith("---")], "only additions"


def test_the_plan_names_utter_offer_human_in_a_rule_only_when_nothing_does(assistant):
    planned = plan(assistant)
    assert any(c.path.name == "emobot_rules.yml" for c in planned.changes)
    (assistant / "data" / "rules.yml").write_text(RULES + "- rule: offer\n  steps:\n  - intent: deny\n"
                                                  "  - action: utter_offer_human\n")
    assert not any(c.path.name == "emobot_rules.yml" for c in plan(assistant).changes)


def test_rasa_data_validate_has_no_new_warning(assistant):
    done = _add_to(assistant)
    assert done.returncode == 0, done.stderr
    validated = subprocess.run([RASA, "data", "validate", "--fail-on-warnings"], cwd=assistant,
                               capture_output=True, text=True, timeout=600)
    output = validated.stdout + validated.stderr
    assert "utter_offer_human" not in output, output[-3000:]
    assert validated.returncode == 0, output[-3000:]


def _split_domain(project: Path) -> Path:
    """The fixture's domain as three files of a domain/ folder, as larger assistants keep it."""
    yaml = YAML(typ="rt")
    whole = yaml.load(DOMAIN)
    folder = project / "domain"
    folder.mkdir()
    parts = {"nlu.yml": ["intents", "entities"], "forms.yml": ["slots", "forms"],
             "responses.yml": ["responses", "session_config"]}
    for name, keys in parts.items():
        with (folder / name).open("w") as handle:
            yaml.dump({"version": "3.1", **{key: whole[key] for key in keys}}, handle)
    (project / "domain.yml").unlink()
    return folder


def test_a_domain_split_into_a_folder_gets_its_wiring_in_a_file_of_its_own(assistant):
    from rasa.shared.core.domain import Domain

    folder = _split_domain(assistant)
    untouched = {name: (folder / name).read_text() for name in ("nlu.yml", "forms.yml")}
    done = _add_to(assistant)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "domain/emobot.yml: add slot user_emotion" in done.stdout
    assert "domain/responses.yml: add angry/sad variations of 4 responses" in done.stdout
    assert "marked '# emobot:' in domain/ (4 responses), then `rasa train --domain domain`" in done.stdout
    assert {name: (folder / name).read_text() for name in untouched} == untouched  # nothing to add there

    domain = Domain.load(str(folder))  # Rasa merges the folder's files
    user_emotion = next(s for s in domain.slots if s.name == "user_emotion")
    assert [m.get("action") for m in user_emotion.mappings] == ["action_sense_emotion"]
    assert "action_sense_emotion" in domain.user_actions and "utter_offer_human" in domain.responses
    assert {"order_number", "email"} <= {s.name for s in domain.slots}
    conditions = [v.get("condition") for v in domain.responses["utter_complaint"]]
    assert [c[0]["value"] for c in conditions if c] == ["angry", "sad"]

    again = _add_to(assistant)
    assert "already emotion-aware" in again.stdout
    assert "(marked '# emobot:' in domain/)" in again.stdout
    validated = subprocess.run([RASA, "data", "validate", "--domain", "domain", "--fail-on-warnings"], cwd=assistant,
                               capture_output=True, text=True, timeout=600)
    assert validated.returncode == 0, (validated.stdout + validated.stderr)[-3000:]


def test_the_tools_take_a_folder_with_a_split_domain_for_an_assistant(assistant, monkeypatch):
    from emobot.paths import DEMO_DIR, assistant_dir

    monkeypatch.chdir(assistant)
    assert assistant_dir() == assistant.resolve()
    _split_domain(assistant)
    assert assistant_dir() == assistant.resolve(), "emobot run here would have run the demo"
    (assistant / "config.yml").unlink()
    assert assistant_dir() == DEMO_DIR


def test_an_untrained_assistant_is_told_how_to_train_it(assistant):
    from emobot.paths import latest_rasa_model

    with pytest.raises(FileNotFoundError, match=r"train one with `rasa train` in its folder"):
        latest_rasa_model(assistant)
    _split_domain(assistant)
    with pytest.raises(FileNotFoundError, match=r"`rasa train --domain domain`"):
        latest_rasa_model(assistant)


def _files(project: Path) -> dict:
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(project.rglob("*"))
            if p.is_file() and ".emobot" not in p.parts}


def test_undo_puts_back_each_add_to_latest_first_and_loses_nothing(assistant):
    original = _files(assistant)
    assert _add_to(assistant, "--no-stubs").returncode == 0
    wired = _files(assistant)
    done = _add_to(assistant, "--responses", "utter_complaint")  # a second run: stubs for one response
    assert done.returncode == 0 and "--undo` puts them back" in done.stdout
    assert _files(assistant) != wired

    # The developer rewrites the stubs, then changes their mind: the rewrite is kept aside, not lost.
    domain = assistant / "domain.yml"
    rewritten = domain.read_text().replace('- condition: [{type: slot, name: user_emotion, value: angry}]  '
                                           '# emobot: a copy of the default, to rewrite for user_emotion angry\n'
                                           '    text: "I\'m sorry to hear that. I\'ve logged your complaint."',
                                           '- condition: [{type: slot, name: user_emotion, value: angry}]\n'
                                           '    text: "I am so sorry. It is logged as urgent."')
    assert rewritten != domain.read_text()
    domain.write_text(rewritten)
    shown = _add_to(assistant, "--undo", "--dry-run")
    assert shown.returncode == 0 and "  - restore domain.yml" in shown.stdout
    assert "changed since add-to wrote them: domain.yml" in shown.stdout and "(dry run: nothing written)" in shown.stdout
    assert domain.read_text() == rewritten
    refused = subprocess.run([sys.executable, "-m", "emobot", "add-to", str(assistant), "--undo"],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert refused.returncode == 2 and "--yes" in refused.stderr and domain.read_text() == rewritten

    undone = _add_to(assistant, "--undo")
    assert undone.returncode == 0, undone.stderr
    assert _files(assistant) == wired
    [kept] = (assistant / ".emobot").glob("undone-*")
    assert (kept / "domain.yml").read_text() == rewritten

    undone = _add_to(assistant, "--undo")  # the first run: slots, policy, endpoints, created files
    assert undone.returncode == 0, undone.stderr
    assert "remove actions/emobot_sensing.py (add-to created it)" in undone.stdout
    assert _files(assistant) == original
    assert not (assistant / "actions").exists(), "the folder add-to made for its action stays behind"
    again = _add_to(assistant, "--undo")
    assert again.returncode == 2 and "nothing to undo" in again.stderr and "Traceback" not in again.stderr


def test_undo_of_a_backup_made_before_undo_existed_says_what_to_do(assistant):
    old = assistant / ".emobot" / "backup-20261201-120000"
    old.mkdir(parents=True)
    (old / "domain.yml").write_text(DOMAIN)
    result = _add_to(assistant, "--undo")
    assert result.returncode == 2
    assert "backup-20261201-120000 predate --undo: copy their files back by hand" in result.stderr


def test_the_endpoints_can_name_servers_elsewhere(assistant):
    done = _add_to(assistant, "--actions-url", "http://actions:5055/webhook", "--service-url", "http://emotion:5006")
    assert done.returncode == 0, done.stderr
    endpoints = YAML(typ="safe").load((assistant / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["url"] == "http://actions:5055/webhook"
    assert endpoints["emotion_service"]["url"] == "http://emotion:5006"
    wrong = _add_to(assistant, "--service-url", "emotion:5006")
    assert wrong.returncode == 2 and "'emotion:5006' is not a URL for the emotion service" in wrong.stderr


def _served_actions(project: Path) -> list:
    """The actions `rasa run actions` would serve from the project's `actions` (rasa_sdk's own loader)."""
    probe = ("import sys; sys.path.insert(0, '.'); from rasa_sdk.executor import ActionExecutor; "
             "e = ActionExecutor(); e.register_package('actions'); print(' '.join(sorted(e.actions)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


@pytest.mark.parametrize("layout", ["none", "actions.py"])
def test_rasa_run_actions_serves_the_sensing_action_in_either_layout(assistant, layout):
    """A project without actions gets a package; one with a single actions.py module (which Python
    imports before a folder without __init__.py, where a new module would never load) gets an import."""
    module = assistant / "actions.py"
    if layout == "actions.py":
        module.write_text("from rasa_sdk import Action\n\n\nclass ActionHello(Action):\n"
                          "    def name(self):\n        return 'action_hello'\n\n"
                          "    def run(self, dispatcher, tracker, domain):\n        return []\n")
    done = _add_to(assistant)
    assert done.returncode == 0, done.stderr
    served = _served_actions(assistant)
    assert "action_sense_emotion" in served
    if layout == "actions.py":
        assert "action_hello" in served and not (assistant / "actions").exists()
        assert module.read_text().endswith("from emobot.actions import ActionSenseEmotion  # noqa: F401\n")
    else:
        assert (assistant / "actions" / "__init__.py").is_file()
    assert "already emotion-aware" in _add_to(assistant).stdout
    assert _add_to(assistant, "--undo").returncode == 0
    assert "action_sense_emotion" not in (_served_actions(assistant) if module.exists() else [])
