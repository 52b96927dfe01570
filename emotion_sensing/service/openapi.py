"""The service API as an OpenAPI 3 document, served at ``GET /openapi.json``.

One description per route, kept beside the code: a route added to the service without an
entry here fails tests/emotion_sensing/test_openapi.py. Load it into any OpenAPI tool
(Swagger UI, schemathesis, a client generator) from a running service.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

from aiohttp import web

from emotion_sensing import __version__
from emotion_sensing.config import Settings
from emotion_sensing.labels import LABELS

Schema = Dict[str, Any]

_REF = "#/components/schemas/"


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _probs(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {label: {"type": "number", "minimum": 0, "maximum": 1} for label in LABELS},
        "additionalProperties": False,
    }


SCHEMAS: Dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "machine-readable, e.g. malformed_json, rate_limited"},
                    "message": {"type": "string", "description": "what is wrong and how to fix it"},
                },
            }
        },
    },
    "Reading": {
        "type": "object",
        "description": "One recognizer's estimate of one moment.",
        "required": ["modality", "label", "probs", "confidence", "valence", "arousal", "timestamp"],
        "properties": {
            "modality": {"type": "string", "enum": ["text", "face", "voice"]},
            "label": {"type": "string", "enum": list(LABELS)},
            "probs": _probs("probability per label; they sum to 1"),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "valence": {"type": "number", "minimum": -1, "maximum": 1},
            "arousal": {"type": "number", "minimum": 0, "maximum": 1},
            "timestamp": {"type": "number", "description": "Unix time, seconds"},
            "extras": {"type": "object", "description": "recognizer-specific details (never raw input)"},
        },
    },
    "FusedState": {
        "type": "object",
        "description": "The session's fused emotional state; label 'unknown' when nothing is known.",
        "required": ["label", "probs", "confidence", "valence", "arousal", "contributions", "timestamp"],
        "properties": {
            "label": {"type": "string", "enum": [*LABELS, "unknown"]},
            "probs": _probs("fused probability per label"),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "valence": {"type": "number"},
            "arousal": {"type": "number"},
            "contributions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "modality": {"type": "string"},
                        "share": {"type": "number"},
                        "label": {"type": "string"},
                        "confidence": {"type": "number"},
                        "probs": _probs("this modality's probabilities"),
                        "n_readings": {"type": "integer"},
                    },
                },
            },
            "mood_share": {"type": "number", "minimum": 0, "maximum": 1,
                           "description": "how much of the decision the previous turn's state made (the mood)"},
            "timestamp": {"type": "number"},
        },
    },
    "Text": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1, "description": "at most EMOBOT_MAX_TEXT_CHARS characters"}},
    },
    "SensorReading": {
        "type": "object",
        "required": ["modality", "probs", "confidence"],
        "additionalProperties": False,
        "properties": {
            "modality": {"type": "string", "enum": ["face", "voice"]},
            "probs": _probs("probabilities over the labels, summing to 1 (missing labels count as 0)"),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
    "Queued": {
        "type": "object",
        "required": ["session_id", "queued"],
        "properties": {"session_id": {"type": "string"}, "queued": {"type": "boolean"}},
    },
    "TurnAnswer": {
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "turn": {"type": "integer"},
            "reading": {"oneOf": [_ref("Reading"), {"type": "null"}],
                        "description": "null where the text is an intent payload (/intent{...}, a button's): no words to read"},
            "state": _ref("FusedState"),
        },
    },
    "ReadingAnswer": {
        "type": "object",
        "properties": {"session_id": {"type": "string"}, "reading": _ref("Reading"), "state": _ref("FusedState")},
    },
    "FaceAnalysis": {
        "type": "object",
        "properties": {
            "faces": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "box": {
                            "type": "object",
                            "required": ["x", "y", "w", "h"],
                            "properties": {
                                "x": {"type": "integer"}, "y": {"type": "integer"},
                                "w": {"type": "integer"}, "h": {"type": "integer"},
                                "score": {"type": "number", "description": "the detector's confidence (CenterFace)"},
                                "landmarks": {
                                    "type": "array", "minItems": 5, "maxItems": 5,
                                    "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                                    "description": "(x, y) of the image-left eye, the other eye, the nose tip and "
                                                   "the mouth's corners (CenterFace)",
                                },
                            },
                        },
                        "label": {"type": "string"},
                        "probs": _probs("this face's probabilities"),
                    },
                },
            },
            "primary": {"type": ["integer", "null"], "description": "index of the face used for a reading"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "detect_ms": {"type": "number"},
            "classify_ms": {"type": "number"},
        },
    },
    "FrameEvent": {
        "type": "object",
        "description": "type 'reading' (with reading and state) or 'no_face' (with analysis)",
        "properties": {
            "session_id": {"type": "string"},
            "type": {"type": "string", "enum": ["reading", "no_face"]},
            "reading": _ref("Reading"),
            "state": _ref("FusedState"),
            "analysis": _ref("FaceAnalysis"),
            "faces": {"type": "integer"},
        },
    },
    "SpeechAnswer": {
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "reading": _ref("Reading"),
            "state": _ref("FusedState"),
            "transcript": {"type": "object", "description": "with ?transcribe=1: text, engine, seconds"},
        },
    },
}

SESSION_ID = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "description": "the conversation's Rasa sender id",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.:@+\-]{1,128}$"},
}
SENDER_ID = {**SESSION_ID, "name": "sender_id"}

_ERRORS = {
    "400": "malformed or empty body, bad session id",
    "401": "missing or wrong bearer token (when the service requires one)",
    "404": "unknown session",
    "409": "the modality is switched off",
    "413": "body, text or audio too large",
    "415": "wrong content type",
    "422": "a field is invalid",
    "429": "this session sends too fast (rate limit) or the recognizer is busy (the sensing worker dropped it)",
    "503": "a part it needs is unavailable (a recognizer's model, the sensing worker while it restarts, the tracker store)",
}


def _errors(*statuses: int) -> Dict[str, Schema]:
    return {
        str(s): {"description": _ERRORS.get(str(s), "error"), "content": {"application/json": {"schema": _ref("Error")}}}
        for s in statuses
    }


def _json(schema_name: str, description: str = "OK") -> Dict[str, Schema]:
    return {"200": {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}}


def _json_body(schema_name: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_BODY = {
    "required": True,
    "description": "the image file's bytes (JPEG or PNG); never stored",
    "content": {t: _BINARY for t in ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")},
}
AUDIO_BODY = {
    "required": True,
    "description": "a WAV/FLAC/OGG file, or raw 16-bit mono PCM as audio/L16; rate=16000; decoded in memory, never stored",
    "content": {t: _BINARY for t in ("audio/wav", "audio/flac", "audio/ogg", "audio/L16", "application/octet-stream")},
}
AUDIO_QUERY = [
    {"name": "transcribe", "in": "query", "schema": {"type": "string", "enum": ["1", "true", "yes"]},
     "description": "add an offline transcript"},
    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["pcm16"]},
     "description": "the body is raw PCM16 (instead of Content-Type audio/L16)"},
    {"name": "rate", "in": "query", "schema": {"type": "integer", "minimum": 4000, "maximum": 192000}},
]

PATHS: Dict[str, Dict[str, Schema]] = {
    "/health": {
        "get": {
            "summary": "liveness, the process id, loaded recognizers, the session count and the sensing worker's "
                       "load (analysed, dropped, CPU per job, how often each streaming session is read) "
                       "(open without a token)",
            "security": [],
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "this document",
            "responses": {"200": {"description": "OpenAPI 3 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
    "/v1/text": {
        "post": {
            "summary": "one-off text reading, no session",
            "requestBody": _json_body("Text"),
            "responses": {**_json("ReadingAnswer"), **_errors(400, 401, 413, 415, 422)},
        }
    },
    "/v1/sessions/{session_id}/texts": {
        "post": {
            "summary": "a message's text as it reaches Rasa: its reading starts now, and the turn with the same "
                       "text collects it (Rasa's side does this by itself, see emobot/rasa_patches.py)",
            "parameters": [SESSION_ID],
            "requestBody": _json_body("Text"),
            "responses": {"202": {"description": "queued", "content": {"application/json": {"schema": _ref("Queued")}}},
                          **_errors(400, 401, 413, 415, 422, 429)},
        }
    },
    "/v1/sessions/{session_id}/turns": {
        "post": {
            "summary": "a user turn's text: adds a text reading (none for an intent payload such as a button's "
                       "/rate{...}) and returns the fused state",
            "parameters": [SESSION_ID],
            "requestBody": _json_body("Text"),
            "responses": {**_json("TurnAnswer"), **_errors(400, 401, 413, 415, 422, 429)},
        }
    },
    "/v1/sessions/{session_id}/readings": {
        "post": {
            "summary": "a face or voice reading from an outside sensor",
            "parameters": [SESSION_ID],
            "requestBody": _json_body("SensorReading"),
            "responses": {**_json("ReadingAnswer"), **_errors(400, 401, 409, 413, 415, 422, 429)},
        }
    },
    "/v1/sessions/{session_id}": {
        "get": {
            "summary": "the session's latest state and recent readings",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "session_id": {"type": "string"},
                        "turns": {"type": "integer"},
                        "state": _ref("FusedState"),
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "readings": {"type": "array", "items": _ref("Reading")},
                    },
                }}}},
                **_errors(400, 401, 404, 429),
            },
        },
        "delete": {
            "summary": "forget the session's readings (emobot forget SENDER_ID)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {"description": "deleted", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"session_id": {"type": "string"}, "deleted": {"type": "boolean"}},
                }}}},
                **_errors(400, 401, 404),
            },
        },
    },
    "/v1/face": {
        "post": {
            "summary": "every face of one image with its probabilities, no session",
            "requestBody": IMAGE_BODY,
            "responses": {**_json("FaceAnalysis"), **_errors(400, 401, 409, 413, 415, 422, 429, 503)},
        }
    },
    "/v1/sessions/{session_id}/frames": {
        "post": {
            "summary": "one camera frame: the primary face becomes a face reading",
            "parameters": [SESSION_ID],
            "requestBody": IMAGE_BODY,
            "responses": {**_json("FrameEvent"), **_errors(400, 401, 409, 413, 415, 422, 429, 503)},
        }
    },
    "/v1/speech": {
        "post": {
            "summary": "one-off voice reading of an utterance, no session",
            "parameters": AUDIO_QUERY,
            "requestBody": AUDIO_BODY,
            "responses": {**_json("SpeechAnswer"), **_errors(400, 401, 409, 413, 415, 422, 429, 503)},
        }
    },
    "/v1/sessions/{session_id}/audio": {
        "post": {
            "summary": "an utterance of the session's speaker: adds a voice reading",
            "parameters": [SESSION_ID, *AUDIO_QUERY],
            "requestBody": AUDIO_BODY,
            "responses": {**_json("SpeechAnswer"), **_errors(400, 401, 409, 413, 415, 422, 429, 503)},
        }
    },
    "/v1/sessions/{session_id}/stream": {
        "get": {
            "summary": "WebSocket: frames and audio in, readings out",
            "description": (
                "Upgrade to a WebSocket. Binary messages are one type byte then the payload: 0x01 a JPEG/PNG "
                "frame, 0x02 a chunk of 16 kHz mono PCM16 LE audio. Text messages are JSON {\"type\": \"ping\"} "
                "or {\"type\": \"state\"}. The service answers JSON events: reading, state, no_face, dropped, "
                "pong, error (with code and message); garbage never closes the socket."
            ),
            "parameters": [SESSION_ID],
            "responses": {"101": {"description": "switching to the WebSocket protocol"}, **_errors(400, 401)},
        }
    },
    "/": {"get": {"summary": "redirects to the chat page", "security": [],
                  "responses": {"302": {"description": "to /chat"}}}},
    "/chat": {"get": {"summary": "the chat page with its live emotion panel (web_routes.py)", "security": [],
                      "parameters": [{"name": "session", "in": "query", "schema": {"type": "string"}}],
                      "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/chat/config.json": {"get": {"summary": "where the page finds Rasa", "security": [],
                                  "responses": {"200": {"description": "OK", "content": {"application/json": {
                                      "schema": {"type": "object"}}}}}}},
    "/vendor/socket.io.min.js": {"get": {"summary": "the socket.io client the page uses", "security": [],
                                         "responses": {"200": {"description": "JavaScript"}, **_errors(404)}}},
    "/static/emobot-sensing.js": {"get": {"summary": "the sensing script: one script tag adds camera and microphone "
                                                      "sensing to any page with a chat widget", "security": [],
                                           "responses": {"200": {"description": "JavaScript"}}}},
    "/web/{path}": {"get": {"summary": "the page's scripts and styles", "security": [],
                            "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
                            "responses": {"200": {"description": "the file"}, **_errors(404)}}},
    "/replay": {
        "get": {
            "summary": "the stored conversations of the tracker store, newest first",
            "parameters": [{"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json"]}}],
            "responses": {
                "200": {"description": "HTML page, or JSON with ?format=json",
                        "content": {"text/html": {"schema": {"type": "string"}},
                                    "application/json": {"schema": {"type": "object"}}}},
                **_errors(401, 503),
            },
        }
    },
    "/insights": {
        "get": {
            "summary": "emotion across the tracker store's conversations (as `emobot insights`): mix over time and "
                       "by source, per intent, replies followed by falling or rising valence, the EmotionPolicy, "
                       "conversations that ended upset",
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "string"},
                 "description": "2026-12-01, 2026-12-01T14:30 (UTC), or 7d / 24h / 90m ago"},
                {"name": "until", "in": "query", "schema": {"type": "string"}},
                {"name": "model_id", "in": "query", "schema": {"type": "string"}},
                {"name": "min_n", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "upset", "in": "query", "schema": {"type": "number"}},
                {"name": "by", "in": "query", "schema": {"type": "string", "enum": ["day", "hour"]}},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json"]}},
            ],
            "responses": {
                "200": {"description": "HTML report with charts, or JSON with ?format=json",
                        "content": {"text/html": {"schema": {"type": "string"}},
                                    "application/json": {"schema": {"type": "object"}}}},
                **_errors(400, 401, 404, 503),
            },
        }
    },
    "/replay/{sender_id}": {
        "get": {
            "summary": "one conversation's replay report with its emotion timeline",
            "parameters": [SENDER_ID],
            "responses": {
                "200": {"description": "HTML report", "content": {"text/html": {"schema": {"type": "string"}}}},
                **_errors(400, 401, 404, 503),
            },
        }
    },
}


def document(settings: Settings) -> Dict[str, Any]:
    """The OpenAPI 3 document of a service run with ``settings``."""
    doc: Dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "emobot emotion service",
            "version": __version__,
            "description": (
                "Text, face and voice emotion recognizers, per-session state and fusion. Errors are JSON "
                "{\"error\": {\"code\", \"message\"}} with a 4xx status. Only derived readings are kept, "
                "never raw frames or audio."
            ),
        },
        "servers": [{"url": settings.service_url}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "EMOBOT_SERVICE_TOKEN; required off loopback"}},
        },
    }
    if settings.service_token:
        doc["security"] = [{"bearer": []}]
    return doc


def setup(app: web.Application, settings: Settings) -> None:
    """Serve the document at GET /openapi.json."""
    body = document(settings)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get("/openapi.json", openapi)
