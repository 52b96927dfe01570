"""`emobot`: one command for running, chatting, replaying, sensing, training, evaluating
and benchmarking. `emobot COMMAND --help` explains each."""
from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from emotion_sensing.config import Settings, is_loopback


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_run(args) -> int:
    from emobot.paths import assistant_dir
    from emobot.stack import Stack, StackError
    from emotion_sensing.service.web_routes import page_url

    tracker_db = os.environ.get("EMOBOT_TRACKER_DB")
    run_dir = os.environ.get("EMOBOT_RUN_DIR")
    stack = Stack(
        run_dir=Path(run_dir) if run_dir else None,
        project=assistant_dir(args.project),
        tracker_db=Path(tracker_db) if tracker_db else None,
    )
    print(f"assistant: {stack.project}", flush=True)
    s = stack.settings
    workers = f"{s.rasa_workers} Rasa processes" if s.rasa_workers > 1 else "Rasa"
    print(f"starting the emotion service, the action server and {workers} (Rasa takes ~30 s to load)...", flush=True)
    try:
        stack.start(progress=lambda m: print(f"  ✓ {m}", flush=True))
    except (StackError, FileNotFoundError) as error:
        print(f"could not start the stack: {error}", file=sys.stderr)
        return 1
    rasa_line = (f"  Rasa REST:       {s.rasa_url}/webhooks/rest/webhook\n" if is_loopback(s.host) else
                 f"  Rasa socket.io:  {s.rasa_url}/socket.io (clients present a JWT; the REST channel is off)\n")
    print(
        f"\nready.\n{rasa_line}"
        f"  chat page:       {page_url(s)}\n"
        f"  emotion service: {s.service_listen_url}/health\n  action server:   {s.actions_url}/health\n"
        f"  logs:            {stack.run_dir}/\n\nChat in another terminal: emobot chat   (Ctrl-C here stops all three)",
        flush=True,
    )
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Ctrl-C stops the stack even where SIGINT came ignored from the parent (a script's background job,
    # some test runners): Python raises KeyboardInterrupt only where it found SIGINT at its default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while not stopping:
            dead = [p for p in stack.processes if not p.alive()]
            if dead:
                print(f"{dead[0].name} stopped unexpectedly:\n{dead[0].log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
        print(f"stopped. Logs are in {stack.run_dir}", flush=True)
    return 0


def cmd_serve(args) -> int:
    from dataclasses import replace

    from emotion_sensing.service.app import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    serve(replace(settings, host=args.host or settings.host, service_port=args.port or settings.service_port))
    return 0


def cmd_chat(args) -> int:
    from emobot.chat import chat

    camera = args.video if args.video is not None else args.camera
    return chat(args.url or Settings.from_env().rasa_url, sender_id=args.sender, mic=args.mic, camera=camera,
                audio=args.audio)


def _tracker_url(args) -> str:
    import yaml

    from emobot.paths import assistant_dir
    from emotion_sensing.replay import ReplayError, store_url

    if args.store:
        return args.store
    project = assistant_dir(args.project)
    path = Path(args.endpoints) if args.endpoints else project / "endpoints.yml"
    if not path.exists():
        raise ReplayError(f"{path} not found; give the tracker store with --store URL")
    endpoints = yaml.safe_load(path.read_text()) or {}
    return store_url(endpoints.get("tracker_store") or {}, project)


def cmd_replay(args) -> int:
    from emotion_sensing.replay import ReplayError, TrackerReader, format_turns, replay

    try:
        url = _tracker_url(args)
        if args.list or not args.sender_id:
            conversations = TrackerReader(url).conversations()
            if args.json:
                _print_json(conversations)
            elif not conversations:
                print("no conversations in the tracker store yet")
            else:
                for c in conversations:
                    last = time.strftime("%Y-%m-%d %H:%M", time.localtime(c["last"]))
                    turns = "turn " if c["user_turns"] == 1 else "turns"
                    print(f"{c['sender_id']:<40} {c['user_turns']:>4} {turns}  last {last}")
            return 0
        turns = replay(args.sender_id, url)
    except ReplayError as error:
        print(f"emobot replay: {error}", file=sys.stderr)
        return 2
    if args.html or args.csv:
        from emotion_sensing.report import to_csv, to_html

        for path, render in ((args.html, lambda: to_html(args.sender_id, turns)), (args.csv, lambda: to_csv(turns))):
            if path:
                Path(path).write_text(render(), encoding="utf-8")
                print(f"wrote {path}", file=sys.stderr)
    if args.json:
        _print_json({"sender_id": args.sender_id, "turns": [t.to_dict() for t in turns]})
    elif not (args.html or args.csv):
        print(format_turns(args.sender_id, turns))
    return 0


def cmd_insights(args) -> int:
    from emotion_sensing.insights import Query, format_insights, insights, parse_when
    from emotion_sensing.replay import ReplayError

    try:
        query = Query(since=parse_when(args.since), until=parse_when(args.until), model_id=args.model_id,
                      min_n=args.min_n, upset_valence=args.upset, bucket=args.by,
                      rating_slot=args.rating_slot)
        result = insights(_tracker_url(args), query)
    except (ReplayError, ValueError) as error:
        print(f"emobot insights: {error}", file=sys.stderr)
        return 2
    if args.html:
        from emotion_sensing.insights_report import to_html

        Path(args.html).write_text(to_html(result, base_url=args.replay_base), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        _print_json(result)
    elif not args.html:
        print(format_insights(result))
    return 0


def cmd_forget(args) -> int:
    from emobot.forget import ForgetError, forget
    from emotion_sensing.replay import ReplayError

    try:
        store = _tracker_url(args) if args.tracker else None
        done = forget(args.sender_id, Settings.from_env(), store)
    except (ForgetError, ReplayError) as error:
        print(f"emobot forget: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json({"sender_id": done.sender_id, "readings_deleted": done.readings,
                     "tracker_events_deleted": done.tracker_events})
        return 0
    print(f"{done.sender_id}: " + ("emotion readings deleted" if done.readings else "the emotion service held no readings"))
    if done.tracker_events is not None:
        print(f"{done.sender_id}: {done.tracker_events} events deleted from the tracker store")
    else:
        print("the conversation itself stays in Rasa's tracker store (add --tracker to delete it too)")
    return 0


# Face and speech commands live in their own modules; each exposes
# add_arguments(command, parser) and sense/train/eval/bench(args) -> exit code.
MODALITY_MODULES = {"text": "emobot.cli_text", "face": "emobot.cli_face", "speech": "emobot.cli_speech",
                    "fusion": "emobot.cli_fusion"}


def _modality_module(name: str):
    import importlib

    return importlib.import_module(MODALITY_MODULES[name])


# Options a modality's module adds that another modality reads as well; every other option a
# module adds is its own, and given to another modality it is refused rather than ignored.
SHARED_OPTIONS = {"no_export": {"text"}, "cross": {"fusion"}, "folders": {"speech"}}
# command -> option dest -> (the modalities that read it, its flag, its default); filled by build_parser.
MODALITY_OPTIONS: Dict[str, Dict[str, Tuple[Set[str], str, Any]]] = {}


def _foreign_option(command: str, modality: str, args) -> Optional[str]:
    """The first option given that ``modality`` does not read, said as an error; None when all apply."""
    for dest, (owners, flag, default) in MODALITY_OPTIONS.get(command, {}).items():
        if modality not in owners and getattr(args, dest, default) != default:
            return f"emobot {command} {modality}: {flag} is for {' and '.join(sorted(owners))}, not {modality}"
    return None


def _dispatch(command: str, args) -> Optional[int]:
    """Run a modality's subcommand; None when the command is not a modality's (bench turn, ...)."""
    modality = getattr(args, "modality", None) or getattr(args, "what", None)
    if modality not in MODALITY_MODULES:
        return None
    problem = _foreign_option(command, modality, args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return getattr(_modality_module(modality), command)(args)


def cmd_sense(args) -> int:
    return _dispatch("sense", args)


TRAIN_NICE = 19


def _as_background_work() -> None:
    """Training is batch work: it runs at the lowest priority (nice 19; EMOBOT_TRAIN_NICE sets another),
    so that a stack running beside it keeps its CPU. Its sensing worker runs niced and in the idle
    class itself, and a training run at normal priority starved it: its face recognizer took 146 s to load
    instead of 7 beside one. Threads started later (TensorFlow's, ONNX Runtime's) inherit it."""
    raw = os.environ.get("EMOBOT_TRAIN_NICE", str(TRAIN_NICE))
    try:
        wanted = int(raw)
    except ValueError:
        print(f"emobot train: EMOBOT_TRAIN_NICE={raw!r} is not a niceness (0-19); keeping {TRAIN_NICE}", file=sys.stderr)
        wanted = TRAIN_NICE
    try:
        now = os.nice(0)
        if wanted > now:
            os.nice(min(wanted, 19) - now)
    except OSError:  # not on this platform, or not allowed: training goes on as it is
        pass


def cmd_train(args) -> int:
    if getattr(args, "teacher", None) and args.modality not in ("text", "face"):
        print(f"emobot train {args.modality}: --teacher is for text and face (knowledge distillation)", file=sys.stderr)
        return 2
    if getattr(args, "modality", None) in MODALITY_MODULES:
        _as_background_work()
    return _dispatch("train", args)


def cmd_eval(args) -> int:
    return _dispatch("eval", args)


def cmd_bench(args) -> int:
    if (code := _dispatch("bench", args)) is not None:
        return code
    from emobot.bench import bench_replay, bench_turn

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.what == "load":
        return _bench_load(args, log)
    if args.what == "insights":
        from emobot.insights_bench import bench_insights

        try:
            result = bench_insights(int(args.conversations or 10_000), store=args.store, log=log)
        except (RuntimeError, ValueError) as error:
            print(f"emobot bench insights: {error}", file=sys.stderr)
            return 2
        if args.json:
            _print_json(result)
        else:
            print(f"{result['conversations']:,} conversations ({result['events']:,} events, {result['store']}): "
                  f"emobot insights took {result['insights_s']:.1f} s, peak memory {result['peak_rss_mb']:.0f} MB")
        return 0
    if args.what == "replay":
        result = bench_replay(turns=args.turns, log=log)
        if args.json:
            _print_json(result)
        else:
            for name, r in result.items():
                if isinstance(r, dict):
                    print(f"{name:<17} p50 {r['p50_ms']:.1f} ms  max {r['max_ms']:.1f} ms  (n={r['n']})")
        return 0
    result = bench_turn(turns=args.turns, log=log)
    if args.json:
        _print_json(result)
    else:
        for name in ("with_sensing", "without_sensing"):
            r = result[name]
            print(f"{name:<16} p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  (n={r['n']})")
        print(f"sensing adds {result['sensing_overhead_p50_ms']:.1f} ms at p50, {result['sensing_overhead_p95_ms']:.1f} ms at p95")
    return 0


def _bench_load(args, log) -> int:
    from emobot.load import LoadError, bench_load
    from emobot.stack import StackError

    try:
        counts = [int(n) for n in (args.conversations or "50").split(",") if n.strip()]
        result = bench_load(counts, seconds=args.seconds, fps=args.fps, message_every_s=args.message_every,
                            frame=Path(args.frame) if args.frame else None, p95_limit_ms=args.p95_limit, log=log,
                            sensing=not args.no_sensing, frames_on_clock=args.frames_on_clock,
                            rasa_workers=args.rasa_workers)
    except (LoadError, StackError, ValueError) as error:
        print(f"emobot bench load: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(result)
        return 0
    for run in result["runs"]:
        t, f, m = run["turns"], run["frames"], run["service_rss_mb"]
        print(f"N={run['conversations']:<4} turns {t['answered']}/{t['sent']}  p50 {t['p50_ms']} ms  p95 {t['p95_ms']} ms  "
              f"sensed unknown {t['sensed_unknown']}/{t['sensed']} ({t['sensed_unknown_not_sensed']} not answered in time)  failed {run['failed_requests']}  "
              f"frames {f['analysed']} analysed / {f['dropped_by_service']} dropped of {f['sent']}  "
              f"voice readings {run['audio']['voice_readings']}  service RSS {m['start']} -> {m['end']} MB")
        cpu = run["cpu"]
        print("       CPU share of the machine: " + ", ".join(
            f"{name} {v['share_of_machine']:.0%}" for name, v in
            [("load generator", cpu["load_generator"]), *cpu["processes"].items()]))
    machine = result["machine"]
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; Rasa processes: {result['rasa_workers']}")
    print(f"largest N with p95 under {args.p95_limit:g} ms: {result['largest_conversations_under_p95_limit']}")
    return 0


def cmd_add_to(args) -> int:
    from emobot.installer import FORM_PROMPTS, STUB_MARK, AddToError, apply, plan, responses_count
    from emobot.paths import train_command

    project = Path(args.project_dir).resolve()
    if args.undo:
        return _undo_add_to(project, args)
    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()]
    patterns = [p.strip() for p in args.responses.split(",") if p.strip()] if args.responses else None
    try:
        urls = {key: value for key, value in (("actions_url", args.actions_url), ("service_url", args.service_url))
                if value}
        planned = plan(project, emotions=emotions, responses=patterns, stubs=not args.no_stubs, **urls)
    except AddToError as error:
        print(f"emobot add-to: {error}", file=sys.stderr)
        return 2
    changes = planned.changes
    if not changes:
        print(f"{project} is already emotion-aware: nothing to change.")
        if planned.unwritten:
            print(_unwritten_line(planned.unwritten, planned.domain))
        return 0
    for change in changes:
        print(change.diff(project), end="")
    print("\nemobot add-to will:")
    for change in changes:
        for item in change.summary:
            print(f"  - {change.path.relative_to(project)}: add {item}")
    if planned.skipped_responses:
        forms = [n for n in planned.skipped_responses if fnmatch.fnmatchcase(n, FORM_PROMPTS)]
        why = ("--no-stubs" if args.no_stubs else f"not matched by --responses {args.responses}" if patterns
               else f"form prompts ({FORM_PROMPTS}); --responses 'utter_*' includes them")
        print(f"  - left without emotion variations: {responses_count(len(planned.skipped_responses))}"
              + (f", {len(forms)} of them form prompts" if forms and not patterns and not args.no_stubs else "")
              + f" ({why})")
    if planned.suggestions:
        top = ", ".join(f"{name} ({n})" for name, n in planned.suggestions[:6])
        print(f"\nWhere tone matters most, the responses that most often answer a user message in your stories "
              f"and rules: {top}.\nRewrite their variations first (or stub only them: --responses "
              f"{','.join(name for name, _ in planned.suggestions[:3])}).")
    stop = _go_ahead(args, "Apply these changes?")
    if stop is not None:
        return stop
    backup = apply(project, changes)
    print(f"done. Originals backed up in {backup} (`emobot add-to {shlex.quote(args.project_dir)} --undo` puts "
          "them back)")
    first = (f"rewrite the emotion variations marked '# {STUB_MARK}' in {planned.domain} "
             f"({responses_count(len(planned.unwritten))}), then " if planned.unwritten else "")
    train = f"`{train_command(project)}`"
    print(f"Next: {first}{train},\nand run the stack with `emobot run --project {project}`.")
    return 0


def _go_ahead(args, question: str) -> Optional[int]:
    """None to write; else the exit status: 0 after --dry-run, 2 off a terminal without --yes, 1 when
    the person says no (not asked where --yes)."""
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    if args.yes:
        return None
    if not sys.stdin.isatty():
        print("not a terminal: re-run with --yes to apply, or --dry-run to only show the diff", file=sys.stderr)
        return 2
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing written")
        return 1
    return None


def _undo_add_to(project: Path, args) -> int:
    from emobot.installer import AddToError, plan_undo, undo
    from emobot.paths import train_command

    try:
        planned = plan_undo(project)
    except AddToError as error:
        print(f"emobot add-to --undo: {error}", file=sys.stderr)
        return 2
    print(f"emobot add-to --undo will put back what {planned.backup.relative_to(project)} holds:")
    for name in planned.restore:
        print(f"  - restore {name}")
    for name in planned.remove:
        print(f"  - remove {name} (add-to created it)")
    if planned.edited:
        print(f"  changed since add-to wrote them: {', '.join(planned.edited)}; their current text is kept "
              "in .emobot/undone-<time>/ (rewritten stubs, say, to copy back)")
    stop = _go_ahead(args, "Undo these changes?")
    if stop is not None:
        return stop
    kept = undo(project, planned)
    print(f"done. The files as they were are in {kept}; retrain with `{train_command(project)}`.")
    return 0


def _unwritten_line(names, domain: str) -> str:
    from emobot.installer import STUB_MARK, responses_count

    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (f"{responses_count(len(names))} {'has' if len(names) == 1 else 'have'} emotion variations that still "
            f"copy their default text ({shown}): "
            f"rewrite them (marked '# {STUB_MARK}' in {domain}), or an upset user hears the same words.")


def version_line() -> str:
    """``emobot 0.1.0 (Rasa 3.6.21, Python 3.10.13)``: what a bug report needs first."""
    import platform
    from importlib import metadata

    from emotion_sensing import __version__

    try:
        rasa = f"Rasa {metadata.version('rasa')}"
    except metadata.PackageNotFoundError:
        rasa = "Rasa not installed"
    return f"emobot {__version__} ({rasa}, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emobot", description="Emotion-aware Rasa assistant: run, chat, replay, sense, train, eval, bench.")
    parser.add_argument("--version", action="version", version=version_line(),
                        help="emobot's version, and the Rasa and Python it runs with (for a bug report)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="start Rasa, the action server and the emotion service")
    p.add_argument("--project", help="Rasa project folder (default: the current folder if it is one, else the demo)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "add-to", help="make an existing Rasa 3 project emotion-aware",
        description="Add the emotion slots, the sensing action, the EmotionPolicy, the endpoints and emotion "
                    "variations of your responses to a Rasa 3 project. Shows the diff first, asks, and backs "
                    "up every file it changes to .emobot/backup-<time>/; running it again changes nothing; "
                    "--undo puts the files back.")
    p.add_argument("project_dir", help="the project's folder (config.yml beside domain.yml or a domain/ folder)")
    p.add_argument("--yes", action="store_true", help="apply without asking")
    p.add_argument("--dry-run", action="store_true", help="only print the diff")
    p.add_argument("--emotions", default="angry,sad", help="emotions to stub variations for (default angry,sad)")
    p.add_argument("--responses", metavar="GLOB[,GLOB]",
                   help="which responses get emotion variations (e.g. 'utter_greet,utter_*refund*'; default: every "
                        "response but form prompts, utter_ask_*)")
    p.add_argument("--no-stubs", action="store_true", help="add only the wiring: no emotion variations")
    p.add_argument("--actions-url", metavar="URL",
                   help="the action server's webhook, for endpoints.yml where it has no action_endpoint "
                        "(default: the one emobot run starts, on this machine)")
    p.add_argument("--service-url", metavar="URL",
                   help="where the action server finds the emotion service, for endpoints.yml "
                        "(default: the one emobot run starts, on this machine)")
    p.add_argument("--undo", action="store_true",
                   help="put back the files of the latest add-to's backup and remove the files it created "
                        "(the current ones are kept in .emobot/undone-<time>/)")
    p.set_defaults(func=cmd_add_to)

    p = sub.add_parser("serve", help="start only the emotion service",
                       description="The emotion service alone (what the action server and the chat page call), "
                                   "configured by the EMOBOT_* variables (README, 'Configuration').")
    p.add_argument("--host", help=f"address to listen on (default EMOBOT_HOST, else {Settings.host}; off loopback "
                                  "it needs EMOBOT_SERVICE_TOKEN)")
    p.add_argument("--port", type=int, help=f"port (default EMOBOT_SERVICE_PORT, else {Settings.service_port})")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("chat", help="chat with the assistant in the terminal")
    p.add_argument("--url", help="Rasa server URL (default from EMOBOT_HOST/EMOBOT_RASA_PORT)")
    p.add_argument("--sender", help="conversation id (default: a new random one)")
    p.add_argument("--mic", action="store_true", help="speak instead of typing (offline transcripts)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, metavar="N", help="sense your face with camera N (0 is the first)")
    source.add_argument("--video", metavar="FILE", help="a video file as the camera (looped), for demos and tests")
    p.add_argument("--audio", metavar="FILE", help="a sound file as the microphone: its utterances are the messages")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("replay", help="a stored conversation with its emotion annotations")
    p.add_argument("sender_id", nargs="?", help="the conversation's sender id (see --list)")
    p.add_argument("--list", action="store_true", help="list stored conversations")
    p.add_argument("--json", action="store_true", help="the turns as one JSON object")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with a timeline")
    p.add_argument("--csv", metavar="FILE", help="write one CSV row per user turn")
    p.add_argument("--store", help="SQLAlchemy URL of the tracker store (default: from endpoints.yml)")
    p.add_argument("--endpoints", help="endpoints.yml to read the tracker store from")
    p.add_argument("--project", help="Rasa project whose endpoints.yml to read (default as for run)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("insights", help="emotion across conversations: upset intents, replies that make things "
                                        "worse or better, the EmotionPolicy, conversations that ended upset")
    p.add_argument("--since", help="from this time: 2026-12-01, 2026-12-01T14:30 (UTC), or 7d / 24h ago")
    p.add_argument("--until", help="up to this time (same forms)")
    p.add_argument("--model-id", help="only the turns answered by this Rasa model (events' metadata model_id)")
    p.add_argument("--min-n", type=int, default=5, help="leave out groups with fewer user turns (default 5)")
    p.add_argument("--upset", type=float, default=-0.3, metavar="VALENCE",
                   help="a conversation whose last sensed valence is at or below this ended upset (default -0.3)")
    p.add_argument("--by", choices=["day", "hour"], default="day", help="time buckets of the emotion mix")
    p.add_argument("--rating-slot", default="rating", metavar="SLOT",
                   help="the slot holding the rating people give the chat, a number (default rating)")
    p.add_argument("--json", action="store_true", help="one JSON object (schema in README, 'Insights')")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    p.add_argument("--replay-base", metavar="URL", help="make conversation ids in the HTML links to this "
                                                       "service's /replay pages (e.g. http://127.0.0.1:5006)")
    p.add_argument("--store", help="SQLAlchemy URL of the tracker store (default: from endpoints.yml)")
    p.add_argument("--endpoints", help="endpoints.yml to read the tracker store from")
    p.add_argument("--project", help="Rasa project whose endpoints.yml to read (default as for run)")
    p.set_defaults(func=cmd_insights)

    p = sub.add_parser("forget", help="delete a conversation's emotion readings (and with --tracker its events)")
    p.add_argument("sender_id", help="the conversation's sender id")
    p.add_argument("--tracker", action="store_true", help="also delete its events from the SQL tracker store")
    p.add_argument("--store", help="SQLAlchemy URL of the tracker store (default: from endpoints.yml)")
    p.add_argument("--endpoints", help="endpoints.yml to read the tracker store from")
    p.add_argument("--project", help="Rasa project whose endpoints.yml to read (default as for run)")
    p.add_argument("--json", action="store_true", help="what was deleted, as one JSON object")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("sense", help="one-off emotion analysis")
    p.add_argument("modality", choices=["text", "face", "speech"],
                   help="what to read: text (words), face (a photo, video or camera), speech (a sound file)")
    p.add_argument("text", nargs="*", help="the text (or stdin); its words are one message (see --lines)")
    p.add_argument("--json", action="store_true", help="the reading as JSON")
    p.add_argument("--model", help="model file (default: the shipped one)")
    p.set_defaults(func=cmd_sense)

    p = sub.add_parser("train", help="reproduce a shipped emotion model (fusion: refit how the modalities combine)")
    p.add_argument("modality", choices=["text", "face", "speech", "fusion"],
                   help="which model to retrain (fusion: how the modalities combine)")
    p.add_argument("--data", help="datasets folder (default ../shared/datasets or EMOBOT_DATASETS)")
    p.add_argument("--out", help="models folder to write (default models/)")
    p.add_argument("--work", help="text, face: checkpoint folder; re-running the command resumes from it "
                                  "(default .emobot/train/text, .emobot/train/face-ARCH-SIZE)")
    p.add_argument("--max-minutes", type=float, help="text, face: stop cleanly after this long (resume later)")
    p.add_argument("--teacher", metavar="MODEL",
                   help="text, face: knowledge distillation, soft targets from a trained model. face: a run (its folder "
                        "or best.keras), its mirror-averaged probabilities, e.g. ms_model_M from the vgg8 run. text: a "
                        "text model file (e.g. an ensemble from --seeds or --combine) trained on the same corpora; "
                        "checkpoints in WORK-distilled")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="measure a model on a dataset (fusion: the paired fusion benchmark)")
    p.add_argument("modality", choices=["text", "face", "speech", "fusion"],
                   help="which model to measure (fusion: the paired fusion benchmark)")
    p.add_argument("--data", help="datasets folder (default ../shared/datasets or EMOBOT_DATASETS)")
    p.add_argument("--manifest", metavar="CSV",
                   help="your own labelled data instead: text: text,label rows; speech: file,label[,speaker]; "
                        "face: file,label (photos); files relative to the CSV; a header may name the columns")
    p.add_argument("--model", help="model file (default: the shipped one, e.g. models/text_emotion.npz)")
    p.add_argument("--json", action="store_true", help="the figures as one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="speed figures")
    p.add_argument("what", choices=["turn", "replay", "load", "insights", "text", "face", "speech"],
                   help="what to time: a chat turn, replay, load, insights, or one recognizer")
    p.add_argument("--turns", type=int, default=200, help="turns to time (turn) or in the replayed conversation (replay)")
    load = p.add_argument_group("load (many conversations at once against a fresh stack on loopback)")
    load.add_argument("--conversations", metavar="N[,N...]",
                      help="load: concurrent conversations; several (10,25,50) run one after the other (default 50); "
                           "insights: conversations in the generated store (default 10000)")
    p.add_argument("--store", help="insights: write the generated store here (a PostgreSQL URL; its events table is "
                                   "replaced) instead of a temporary SQLite file")
    load.add_argument("--seconds", type=float, default=120.0, help="length of each run (default 120)")
    load.add_argument("--fps", type=float, default=5.0, help="camera frames per second per conversation (default 5)")
    load.add_argument("--message-every", type=float, default=5.0, metavar="S",
                      help="seconds between one conversation's messages (default 5)")
    load.add_argument("--frame", metavar="FILE", help="photo to send as the camera (default: scikit-image's astronaut)")
    load.add_argument("--p95-limit", type=float, default=500.0, metavar="MS",
                      help="turn latency the largest-N figure is held to (default 500)")
    load.add_argument("--frames-on-clock", action="store_true",
                      help="send every frame on the camera's clock, answered or not (default: as the chat page, "
                           "the next frame once the last is answered)")
    load.add_argument("--no-sensing", action="store_true",
                      help="face and voice switched off, no frames or audio sent: what the chat alone costs")
    load.add_argument("--rasa-workers", metavar="N|auto",
                      help="Rasa processes the stack starts: a count or auto, one per core (default: EMOBOT_RASA_WORKERS, else auto)")
    p.add_argument("--json", action="store_true", help="the figures as one JSON object")
    p.add_argument("--model", help="model file to benchmark (text, face, speech; default: the shipped one)")
    p.set_defaults(func=cmd_bench)

    for command, subparser in (("sense", sub.choices["sense"]), ("train", sub.choices["train"]),
                               ("eval", sub.choices["eval"]), ("bench", sub.choices["bench"])):
        for module in MODALITY_MODULES:
            before = {action.dest for action in subparser._actions}
            _modality_module(module).add_arguments(command, subparser)
            for action in subparser._actions:
                if action.dest not in before:
                    owners = {module} | SHARED_OPTIONS.get(action.dest, set())
                    MODALITY_OPTIONS.setdefault(command, {})[action.dest] = (owners, action.option_strings[0],
                                                                             action.default)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # `emobot ... | head` ends quietly, as Unix tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # TensorFlow's start-up lines (no CUDA, no TensorRT, which CPU instructions it was built for)
    # say nothing a user can act on; its errors still show. Set the variable to see them all.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "sense" and not any(e.startswith("-") for e in extra):
        args.text = list(args.text or []) + extra  # `sense text --json some words`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
