"""`emobot add-to PROJECT`: make an existing Rasa 3.x assistant emotion-aware.

It plans every change first (as unified diffs), then writes them after a backup. Each
change is made only when missing, so a second run plans nothing. YAML is edited with
ruamel.yaml's round-trip mode, which keeps comments, key order and quoting.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
import io
import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from emobot.paths import split_domain
from emotion_sensing.labels import LABELS
from emotion_sensing.slots import (
    AROUSAL,
    CONFIDENCE,
    EMOTION_VALUES,
    READING,
    SENSE_ACTION,
    USER_EMOTION,
    VALENCE,
)

POLICY_NAME = "emobot.policy.EmotionPolicy"
OFFER_ACTION = "utter_offer_human"
OFFER_TEXT = "It sounds like this isn't going well. Would you like me to get a person to help you?"
ACTIONS_MODULE = "emobot_sensing.py"
DEFAULT_STUB_EMOTIONS = ("angry", "sad")
# Form prompts (utter_ask_<form>_<slot>, utter_ask_<slot>) ask for a value; their tone rarely
# needs to follow the person's mood, and stubbing them buries the replies that do.
FORM_PROMPTS = "utter_ask_*"
RULES_FILE = "emobot_rules.yml"
# In each backup folder: what add-to changed, created and wrote; and the mark of an undone one.
MANIFEST = "add-to.json"
UNDONE = "UNDONE"
# Where the slots, the action and the offer go in a domain split into a folder.
WIRING_FILE = "emobot.yml"
# Starts the comment on each stub's condition line, so the developer can find what to rewrite.
STUB_MARK = "emobot:"
# Rasa 3.6's default policies: written out when config.yml leaves `policies` empty,
# since naming any policy there turns Rasa's defaults off.
RASA_DEFAULT_POLICIES = [
    {"name": "MemoizationPolicy"},
    {"name": "RulePolicy"},
    {"name": "UnexpecTEDIntentPolicy", "max_history": 5, "epochs": 100},
    {"name": "TEDPolicy", "max_history": 5, "epochs": 100, "constrain_similarities": True},
]


class AddToError(Exception):
    """The project cannot be made emotion-aware automatically; the message says why."""


@dataclass
class Change:
    """One file's new content."""

    path: Path
    before: Optional[str]
    after: str
    summary: List[str]

    def diff(self, root: Path) -> str:
        name = str(self.path.relative_to(root))
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{name}" if self.before is not None else "/dev/null",
                tofile=f"b/{name}",
            )
        )


_KEY_THEN_DASH = re.compile(r"^( *)[^\s#-][^\n]*:[ \t]*\n(?:[ \t]*(?:#[^\n]*)?\n)*( *)- ", re.MULTILINE)


def _sequence_offset(text: str) -> int:
    """How far this file indents a list's dash under its key (0 or 2, as written)."""
    offsets = [len(dash) - len(key) for key, dash in _KEY_THEN_DASH.findall(text)]
    offsets = [o for o in offsets if o in (0, 2)]
    return max(set(offsets), key=offsets.count) if offsets else 2


def _yaml(offset: int = 2) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _load(path: Path) -> Any:
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except YAMLError as error:
        raise AddToError(f"{path.name} is not valid YAML: {error}") from None


_TOP_LEVEL_KEY = re.compile(r"^(?=[^\s#-])", re.MULTILINE)


_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_ESCAPE = re.compile(r"\\\\|\\U([0-9A-F]{8})")


def _unescape_astral(text: str, like: str) -> str:
    """Put back characters beyond U+FFFF (emoji) that ruamel.yaml writes as ``\\UXXXXXXXX`` in
    double-quoted text: a reply's 😊 stays 😊. Only characters the original file holds."""
    def put_back(match: re.Match) -> str:
        if match.group(1) is None:
            return match.group(0)  # an escaped backslash: what follows it is text
        char = chr(int(match.group(1), 16))
        return char if char in like else match.group(0)

    return _DOUBLE_QUOTED.sub(lambda quoted: _ESCAPE.sub(put_back, quoted.group(0)), text)


def _dump(data: Any, like: str = "") -> str:
    """YAML text of ``data``, indenting lists the way ``like`` (the original) does.

    ruamel.yaml writes one list style per document, where files mix them (``rasa init``'s
    domain: ``intents:`` then ``  - greet``, ``utter_greet:`` then ``- text``). So the
    document is written in both styles and each top-level section is taken from the one
    that keeps more of the original's lines as they were."""
    styles = []
    for offset in (_sequence_offset(like), 2 - _sequence_offset(like)):
        buffer = io.StringIO()
        _yaml(offset).dump(data, buffer)
        styles.append(_unescape_astral(buffer.getvalue(), like))
    if not like:
        return styles[0]
    original = set(like.splitlines())
    preferred, other = (_TOP_LEVEL_KEY.split(text) for text in styles)
    if len(preferred) != len(other):
        return styles[0]

    def kept(section: str) -> int:
        return sum(line in original for line in section.splitlines())

    return "".join(b if kept(b) > kept(a) else a for a, b in zip(preferred, other))


def _slot_definitions() -> Dict[str, Dict[str, Any]]:
    mapping = [{"type": "custom", "action": SENSE_ACTION}]
    return {
        # Not influencing the conversation: the project's stories were written without it,
        # and a featurized slot they never saw would throw memoization and TED off. Wording
        # (conditional variations) and the EmotionPolicy use it either way; switch it on
        # when writing stories that branch on emotion.
        USER_EMOTION: {"type": "categorical", "values": list(EMOTION_VALUES), "initial_value": "unknown",
                       "influence_conversation": False, "mappings": mapping},
        CONFIDENCE: {"type": "float", "min_value": 0.0, "max_value": 1.0, "initial_value": 0.0,
                     "influence_conversation": False, "mappings": mapping},
        VALENCE: {"type": "float", "min_value": -1.0, "max_value": 1.0,
                  "influence_conversation": False, "mappings": mapping},
        AROUSAL: {"type": "float", "min_value": 0.0, "max_value": 1.0,
                  "influence_conversation": False, "mappings": mapping},
        READING: {"type": "any", "influence_conversation": False, "mappings": mapping},
    }


def _cmap(data: Dict[str, Any]) -> CommentedMap:
    result = CommentedMap()
    for key, value in data.items():
        if isinstance(value, dict):
            value = _cmap(value)
        elif isinstance(value, list):
            seq = CommentedSeq(_cmap(v) if isinstance(v, dict) else v for v in value)
            if key == "values":
                seq.fa.set_flow_style()
            value = seq
        result[key] = value
    return result


def _has_emotion_condition(variation: Any) -> bool:
    conditions = variation.get("condition") if isinstance(variation, dict) else None
    return any(isinstance(c, dict) and c.get("name") == USER_EMOTION for c in conditions or [])


def responses_count(n: int) -> str:
    return f"{n} response" if n == 1 else f"{n} responses"


def stub_marker(emotion: str) -> str:
    """The comment on a stub's condition line: what is left for the developer to do."""
    return f"{STUB_MARK} a copy of the default, to rewrite for {USER_EMOTION} {emotion}"


def _content(variation: Any) -> Dict[str, Any]:
    return {k: v for k, v in variation.items() if k not in ("condition", "id")} if isinstance(variation, dict) else {}


def unwritten_stubs(responses: Dict[str, Any]) -> List[str]:
    """Responses with an emotion variation that still says exactly what their default says."""
    names = []
    for name, variations in responses.items():
        if not isinstance(variations, list):
            continue
        defaults = [_content(v) for v in variations if isinstance(v, dict) and not v.get("condition")]
        if any(_has_emotion_condition(v) and _content(v) in defaults for v in variations):
            names.append(str(name))
    return names


def _section(document: CommentedMap, key: str, kind: type, path: Path) -> Any:
    """``document[key]``, created empty when absent; AddToError when it is of another kind."""
    if document.get(key) is None:
        document[key] = kind()
    if not isinstance(document[key], dict if kind is CommentedMap else list):
        raise AddToError(f"`{key}` in {path.name} is not a {'mapping' if kind is CommentedMap else 'list'}")
    return document[key]


def stubbed(name: str, patterns: Optional[Sequence[str]]) -> bool:
    """Whether response ``name`` gets emotion stubs: it matches ``patterns`` (globs), or, without
    patterns, it is not a form prompt."""
    if patterns is None:
        return not fnmatch.fnmatchcase(name, FORM_PROMPTS)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _load_domain(path: Path) -> CommentedMap:
    domain = _load(path)
    if domain is None:
        domain = CommentedMap()
    if not isinstance(domain, dict):
        raise AddToError(f"{path.name} is not a mapping of Rasa domain keys")
    version = str(domain.get("version", ""))
    if version and not version.startswith("3"):
        raise AddToError(f"{path.name} has version {version!r}; emobot supports Rasa 3.x domains")
    return domain


def _add_wiring(domain: CommentedMap, path: Path, elsewhere: Dict[str, set]) -> List[str]:
    """Add the slots, the sensing action and the offer a person response that no domain file has."""
    summary = []
    definitions = _slot_definitions()
    missing = [n for n in definitions if n not in elsewhere["slots"] and n not in (domain.get("slots") or {})]
    if missing:
        slots = _section(domain, "slots", CommentedMap, path)
        for name in missing:
            slots[name] = _cmap(definitions[name])
            summary.append(f"slot {name}")
    if SENSE_ACTION not in elsewhere["actions"] and SENSE_ACTION not in (domain.get("actions") or []):
        _section(domain, "actions", CommentedSeq, path).append(SENSE_ACTION)
        summary.append(f"action {SENSE_ACTION}")
    if OFFER_ACTION not in elsewhere["responses"] and OFFER_ACTION not in (domain.get("responses") or {}):
        _section(domain, "responses", CommentedMap, path)[OFFER_ACTION] = CommentedSeq([_cmap({"text": OFFER_TEXT})])
        summary.append(f"response {OFFER_ACTION} (the EmotionPolicy's de-escalation)")
    return summary


def _add_stubs(responses: CommentedMap, emotions: Sequence[str], patterns: Optional[Sequence[str]],
               stubs: bool) -> Tuple[List[str], List[str]]:
    """Emotion variations for ``responses``: (the responses stubbed, those left without)."""
    stubbed_names: List[str] = []
    skipped: List[str] = []
    for name, variations in list(responses.items()):
        if not isinstance(variations, list) or any(_has_emotion_condition(v) for v in variations):
            continue
        if name == OFFER_ACTION and all(isinstance(v, dict) and v.get("text") == OFFER_TEXT for v in variations):
            continue  # ours, already written for an upset user
        defaults = [v for v in variations if isinstance(v, dict) and not v.get("condition")]
        if not defaults:
            continue
        if not stubs or not stubbed(str(name), patterns):
            skipped.append(str(name))
            continue
        # Stubs go first (order means nothing to Rasa: a matching condition wins), so the
        # file's blank line after the response stays where it was.
        for position, emotion in enumerate(emotions):
            stub = copy.deepcopy(dict(defaults[0]))
            stub.pop("id", None)
            variation = _cmap({"condition": [{"type": "slot", "name": USER_EMOTION, "value": emotion}], **stub})
            variation["condition"][0].fa.set_flow_style()
            variation["condition"].fa.set_flow_style()
            variation.yaml_add_eol_comment(stub_marker(emotion), "condition")
            variations.insert(position, variation)
        stubbed_names.append(str(name))
    return stubbed_names, skipped


def _stub_summary(stubbed_names: List[str], emotions: Sequence[str]) -> List[str]:
    if not stubbed_names:
        return []
    shown = ", ".join(stubbed_names[:8]) + (f" and {len(stubbed_names) - 8} more" if len(stubbed_names) > 8 else "")
    return [f"{'/'.join(emotions)} variations of {responses_count(len(stubbed_names))} ({shown}): copies of "
            "their text, to rewrite"]


_NOTHING_ELSEWHERE: Dict[str, set] = {"slots": set(), "actions": set(), "responses": set()}


def _plan_domain(path: Path, emotions: Sequence[str], patterns: Optional[Sequence[str]] = None,
                 stubs: bool = True) -> Tuple[Optional[Change], List[str], Dict[str, Any]]:
    """domain.yml's change, the responses left without stubs by the selection, and its responses."""
    domain = _load_domain(path)
    before = path.read_text(encoding="utf-8")
    summary = _add_wiring(domain, path, _NOTHING_ELSEWHERE)
    stubbed_names, skipped = _add_stubs(_section(domain, "responses", CommentedMap, path), emotions, patterns, stubs)
    summary += _stub_summary(stubbed_names, emotions)
    change = Change(path, before, _dump(domain, before), summary) if summary else None
    return change, skipped, dict(domain.get("responses") or {})


def _domain_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))


def _plan_split_domain(folder: Path, emotions: Sequence[str], patterns: Optional[Sequence[str]] = None,
                       stubs: bool = True) -> Tuple[List[Change], List[str], Dict[str, Any]]:
    """A domain split into files in ``folder`` (Rasa merges them): stubs go into the file that
    holds each response, and what no file has (slots, action, offer) into ``folder/emobot.yml``."""
    files = _domain_files(folder)
    if not files:
        raise AddToError(f"{folder} holds no domain files (*.yml)")
    changes: List[Change] = []
    skipped: List[str] = []
    responses: Dict[str, Any] = {}
    elsewhere: Dict[str, set] = {"slots": set(), "actions": set(), "responses": set()}
    documents = {}
    for path in files:
        domain = documents[path] = _load_domain(path)
        for key in elsewhere:
            elsewhere[key].update(str(k) for k in (domain.get(key) or []) if isinstance(k, str))
    wiring = folder / WIRING_FILE
    for path in files:
        domain = documents[path]
        summary = []
        if isinstance(domain.get("responses"), dict):
            stubbed_names, left = _add_stubs(domain["responses"], emotions, patterns, stubs)
            summary += _stub_summary(stubbed_names, emotions)
            skipped += left
            responses.update(domain["responses"])
        if path == wiring:
            summary += _add_wiring(domain, path, elsewhere)
        if summary:
            before = path.read_text(encoding="utf-8")
            changes.append(Change(path, before, _dump(domain, before), summary))
    if wiring not in documents:
        header = ("# Added by emobot add-to: the emotion slots (filled by action_sense_emotion on every user turn),\n"
                  "# the sensing action and the EmotionPolicy's offer of a person. Rasa merges it with the\n"
                  "# other files of this folder.\n")
        domain = _cmap({"version": DoubleQuotedScalarString("3.1")})
        summary = _add_wiring(domain, wiring, elsewhere)
        if summary:
            like = files[0].read_text(encoding="utf-8")
            changes.append(Change(wiring, None, header + _dump(domain, like), summary))
            responses.update(domain.get("responses") or {})
    return changes, skipped, responses


def _story_files(project: Path) -> List[Path]:
    data = project / "data"
    return sorted(p for p in data.rglob("*.yml") if p.is_file()) if data.is_dir() else []


def _steps(project: Path) -> List[List[Dict[str, Any]]]:
    """The steps of every story and rule under data/ (files that are not YAML are skipped)."""
    found = []
    for path in _story_files(project):
        try:
            document = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        except (YAMLError, OSError):
            continue
        if not isinstance(document, dict):
            continue
        for key in ("stories", "rules"):
            for item in document.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("steps"), list):
                    found.append([s for s in item["steps"] if isinstance(s, dict)])
    return found


def replies_after_user_turns(project: Path) -> List[Tuple[str, int]]:
    """Responses that come right after a user message in the project's stories and rules, most
    often first: where the bot answers the person, and tone matters most."""
    counts: Counter = Counter()
    for steps in _steps(Path(project)):
        for previous, step in zip(steps, steps[1:]):
            action = step.get("action")
            if ("intent" in previous or "user" in previous or "or" in previous) and isinstance(action, str) \
                    and action.startswith("utter_"):
                counts[action] += 1
    return counts.most_common()


def _plan_rules(project: Path) -> Optional[Change]:
    """A rule naming utter_offer_human, when no story or rule does: the EmotionPolicy predicts
    it, which `rasa data validate` cannot know, so it would warn that the response is unused.
    The rule only says what happens anyway after it: the assistant listens."""
    if any(step.get("action") == OFFER_ACTION for steps in _steps(project) for step in steps):
        return None
    target = project / "data" / RULES_FILE
    if target.exists():
        return None
    text = (
        "# Added by emobot add-to. The EmotionPolicy (config.yml) offers a person when negative feeling\n"
        "# persists; this rule names its response so `rasa data validate` knows it is used.\n"
        'version: "3.1"\n\nrules:\n'
        f"- rule: emobot - after offering a person, listen\n  steps:\n  - action: {OFFER_ACTION}\n"
        "  - action: action_listen\n"
    )
    return Change(target, None, text, [f"a rule naming {OFFER_ACTION}, so rasa data validate knows it is used"])


def _plan_config(path: Path) -> Optional[Change]:
    config = _load(path)
    if not isinstance(config, dict):
        raise AddToError(f"{path.name} is not a mapping of Rasa config keys")
    policies = config.get("policies")
    if policies is not None and not isinstance(policies, list):
        raise AddToError(f"`policies` in {path.name} is not a list")
    if policies and any(isinstance(p, dict) and p.get("name") == POLICY_NAME for p in policies):
        return None
    summary = []
    if not policies:
        config["policies"] = policies = CommentedSeq(_cmap(p) for p in RASA_DEFAULT_POLICIES)
        summary.append("Rasa's default policies, written out")
    policies.append(_cmap({"name": POLICY_NAME, "negative_valence": -0.3, "turns": 2,
                           "action": OFFER_ACTION, "cooldown_turns": 5, "priority": 7}))
    summary.append(f"policy {POLICY_NAME}")
    before = path.read_text(encoding="utf-8")
    return Change(path, before, _dump(config, before), summary)


def _plan_endpoints(path: Path, actions_url: str, service_url: str) -> Optional[Change]:
    before = path.read_text(encoding="utf-8") if path.exists() else None
    endpoints = _load(path) if before is not None else None
    if endpoints is not None and not isinstance(endpoints, dict):
        raise AddToError(f"{path.name} is not a mapping")
    wanted = {
        "action_endpoint": {"url": actions_url},
        "emotion_service": {"url": service_url, "time_budget_ms": 300},
    }
    missing = {key: value for key, value in wanted.items() if not (endpoints or {}).get(key)}
    if not missing:
        return None
    if endpoints and any(key in endpoints for key in missing):
        # A key written but left empty: edit in place.
        for key, value in missing.items():
            endpoints[key] = _cmap(value)
        after = _dump(endpoints, before)
    else:
        # Absent keys (rasa init leaves them commented out): append, keeping the file as is.
        block = _dump(_cmap(missing))
        after = (before.rstrip("\n") + "\n\n" if before else "") + "# Added by emobot add-to.\n" + block
    return Change(path, before, after, list(missing))


_IMPORT_LINE = "from emobot.actions import ActionSenseEmotion  # noqa: F401"


def _plan_actions(project: Path) -> List[Change]:
    """Have `rasa run actions` serve the sensing action: a module importing it in the actions
    package, or one import line in a project's single actions.py module."""
    package, module = project / "actions", project / "actions.py"
    target = package / ACTIONS_MODULE
    if target.exists():
        return []
    if module.is_file() and not (package / "__init__.py").exists():
        # Python imports actions.py before a folder without __init__.py: the line goes there.
        before = module.read_text(encoding="utf-8")
        if "emobot.actions" in before:
            return []
        after = before.rstrip("\n") + ("\n\n" if before.strip() else "") + \
            f"# Emotion sensing (added by `emobot add-to`): `rasa run actions` serves it from here.\n{_IMPORT_LINE}\n"
        return [Change(module, before, after, ["an import of the sensing action, so `rasa run actions` serves it"])]
    if package.exists() and not (package / "__init__.py").exists():
        raise AddToError(f"{package} is not a Python package (no __init__.py)")
    for existing in package.glob("*.py") if package.exists() else []:
        if "emobot.actions" in existing.read_text(encoding="utf-8", errors="replace"):
            return []
    text = (
        '"""Emotion sensing for this assistant (added by `emobot add-to`).\n\n'
        "`rasa run actions` serves every Action imported into the actions package.\n"
        f'"""\n{_IMPORT_LINE}\n'
    )
    changes = [Change(target, None, text, ["a module importing the sensing action, so `rasa run actions` serves it"])]
    if not package.exists():
        changes.insert(0, Change(package / "__init__.py", None, "", ["the actions package (the project had none)"]))
    return changes


@dataclass
class Plan:
    """What add-to would do, and what it left alone."""

    changes: List[Change]
    skipped_responses: List[str]
    suggestions: List[Tuple[str, int]]
    # Responses whose emotion variations still copy the default (after the changes are applied).
    unwritten: List[str] = field(default_factory=list)
    # Where the domain is: domain.yml, or a folder of files Rasa merges (domain/).
    domain: str = "domain.yml"


def plan(
    project: Path,
    emotions: Sequence[str] = DEFAULT_STUB_EMOTIONS,
    actions_url: str = "http://localhost:5055/webhook",
    service_url: str = "http://127.0.0.1:5006",
    responses: Optional[Sequence[str]] = None,
    stubs: bool = True,
) -> Plan:
    """Every change that would make ``project`` emotion-aware (none when it already is).

    ``responses``: globs of the responses that get emotion stubs (default: all but form prompts);
    ``stubs=False`` adds only the wiring (slots, action, policy, endpoints, the offer)."""
    project = Path(project)
    for what, url in (("action server", actions_url), ("emotion service", service_url)):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AddToError(f"{url!r} is not a URL for the {what} (http://host:port...)")
    unknown = [e for e in emotions if e not in LABELS]
    if unknown:
        raise AddToError(f"unknown emotions {unknown}; choose from {', '.join(LABELS)}")
    if not project.is_dir():
        raise AddToError(f"{project} is not a folder")
    domain = project / "domain.yml"
    split = split_domain(project)
    for required in (project / "domain" if split else domain, project / "config.yml"):
        if not required.exists():
            raise AddToError(f"{project} does not look like a Rasa 3 project: {required.name} is missing")
    if split:
        domain_changes, skipped, written = _plan_split_domain(project / "domain", emotions, responses, stubs)
    else:
        domain_change, skipped, written = _plan_domain(domain, emotions, responses, stubs)
        domain_changes = [domain_change]
    changes = [
        *domain_changes,
        _plan_config(project / "config.yml"),
        _plan_endpoints(project / "endpoints.yml", actions_url, service_url),
        *_plan_actions(project),
        _plan_rules(project),
    ]
    return Plan([c for c in changes if c is not None], skipped, replies_after_user_turns(project),
                unwritten_stubs(written), "domain/" if split else "domain.yml")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new_folder(parent: Path, prefix: str) -> Path:
    """``parent/prefix-<time>``, made; a second one within the same second gets ``-2``, ``-3``..."""
    stamp = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder, n = parent / stamp, 1
    while folder.exists():
        n += 1
        folder = parent / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def apply(project: Path, changes: List[Change]) -> Optional[Path]:
    """Back up every file about to change, then write the changes. Returns the backup folder,
    which also records what was created and what was written (for ``--undo``)."""
    if not changes:
        return None
    project = Path(project)
    backup = _new_folder(project / ".emobot", "backup")
    for change in changes:
        if change.before is not None:
            target = backup / change.path.relative_to(project)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(change.path, target)
    folders = sorted({folder for c in changes for folder in c.path.relative_to(project).parents
                      if str(folder) != "." and not (project / folder).exists()}, key=lambda f: len(f.parts))
    for change in changes:
        change.path.parent.mkdir(parents=True, exist_ok=True)
        change.path.write_text(change.after, encoding="utf-8")
    manifest = {
        "changed": [str(c.path.relative_to(project)) for c in changes if c.before is not None],
        "created": [str(c.path.relative_to(project)) for c in changes if c.before is None],
        "created_folders": [str(f) for f in folders],
        "written": {str(c.path.relative_to(project)): _digest(c.path) for c in changes},
    }
    (backup / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return backup


@dataclass
class Undo:
    """What ``--undo`` would do: the backup it restores from, and the files it touches."""

    backup: Path
    restore: List[str]
    remove: List[str]
    # Files changed since add-to wrote them (rewritten stubs, say): kept in the undone folder.
    edited: List[str]
    # Folders add-to made (actions/ in a project without one): removed when left empty.
    folders: List[str] = field(default_factory=list)


def plan_undo(project: Path) -> Undo:
    """Undo the latest add-to that is not undone yet; AddToError when there is none."""
    project = Path(project)
    folder = project / ".emobot"
    backups = sorted(p for p in folder.glob("backup-*") if (p / MANIFEST).is_file() and not (p / UNDONE).exists())
    if not backups:
        older = [p.name for p in folder.glob("backup-*") if p.is_dir() and not (p / MANIFEST).exists()]
        raise AddToError(f"nothing to undo in {project}: no add-to backup in {folder}"
                         + (f" that records what it did ({', '.join(sorted(older))} predate --undo: copy their "
                            "files back by hand)" if older else ""))
    backup = backups[-1]
    try:
        manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
        written = dict(manifest["written"])
        restore, remove = list(manifest["changed"]), list(manifest["created"])
    except (ValueError, KeyError, TypeError):
        raise AddToError(f"{backup / MANIFEST} is not add-to's record; copy the files back by hand") from None
    missing = [name for name in restore if not (backup / name).is_file()]
    if missing:
        raise AddToError(f"{backup} lacks {', '.join(missing)}; copy what is there back by hand")
    edited = [name for name, digest in written.items()
              if (project / name).is_file() and _digest(project / name) != digest]
    return Undo(backup, restore, [name for name in remove if (project / name).exists()], edited,
                list(manifest.get("created_folders", [])))


def undo(project: Path, planned: Undo) -> Path:
    """Put the backed-up files back and remove the created ones; the files as they were before
    the undo go to ``.emobot/undone-<time>/`` (returned), so nothing is lost."""
    project = Path(project)
    kept = _new_folder(project / ".emobot", "undone")
    for name in planned.restore + planned.remove:
        if (project / name).is_file():
            (kept / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / name, kept / name)
    for name in planned.restore:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(planned.backup / name, project / name)
    for name in planned.remove:
        (project / name).unlink()
    for name in reversed(planned.folders):  # the deepest first; only where add-to made it and left it empty
        folder = project / name
        if folder.is_dir() and not any(p for p in folder.iterdir() if p.name != "__pycache__"):
            shutil.rmtree(folder)
    (planned.backup / UNDONE).write_text(f"undone; the files as they were then are in {kept}\n", encoding="utf-8")
    return kept
