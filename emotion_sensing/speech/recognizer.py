"""VoiceRecognizer: an utterance's audio -> a voice Reading, standardised per speaker.

The caller owns the speaker state: it asks :meth:`VoiceRecognizer.new_speaker` for a
:class:`~emotion_sensing.speech.speaker.SpeakerStats` once per speaker (the service keeps
one per session in ``Session.extras``) and passes it to every :meth:`VoiceRecognizer.read`,
which adds the utterance to the statistics and standardises it with them. Without one,
the utterance is standardised with the population prior alone (about 10 points less
accurate on unseen speakers; see models/speech_emotion.md).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np

from emotion_sensing.labels import LABELS
from emotion_sensing.reading import Reading
from emotion_sensing.speech.audio import SAMPLE_RATE
from emotion_sensing.speech.features import HOP, FrameFeatures
from emotion_sensing.speech.model import VoiceModel
from emotion_sensing.speech.speaker import SpeakerStats
from emotion_sensing.speech.vector import Featuriser, Utterance

logger = logging.getLogger(__name__)

NO_SPEECH = "no speech"


def no_speech_reading(frames: Optional[FrameFeatures] = None, timestamp: Optional[float] = None) -> Reading:
    """A reading that says nothing was heard: confidence 0, so fusion gives it no weight."""
    probs = tuple(1.0 if label == "neutral" else 0.0 for label in LABELS)
    extras = {"speech": False, "status": NO_SPEECH}
    if frames is not None:
        extras.update(duration_s=round(frames.duration_s, 3), level_db=round(frames.peak_db, 1))
    return Reading("voice", probs, 0.0, timestamp=time.time() if timestamp is None else timestamp, extras=extras)


class VoiceRecognizer:
    """Loads models/speech_emotion.joblib and reads utterances."""

    def __init__(self, model_path: Path) -> None:
        self.model_path = Path(model_path)
        self.model = VoiceModel.load(self.model_path)
        self.featuriser = Featuriser(self.model.blocks)

    def new_speaker(self) -> SpeakerStats:
        """Fresh per-speaker statistics (one per session), starting from the population prior."""
        return SpeakerStats(self.model.prior)

    def warm_up(self) -> None:
        """Compile librosa's numba code, load openSMILE and the Whisper encoder and touch the
        classifier (the first call takes ~20 s)."""
        rng = np.random.default_rng(0)
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        tone = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        self.read(tone + 0.01 * rng.standard_normal(tone.size).astype(np.float32))

    def read(
        self,
        samples: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        speaker: Optional[SpeakerStats] = None,
        timestamp: Optional[float] = None,
    ) -> Reading:
        """A voice Reading for one utterance (any rate, channels, dtype).

        ``speaker`` is updated with the utterance before it is standardised. Silence or a
        steady noise gives :func:`no_speech_reading` and leaves ``speaker`` unchanged.
        """
        return self.read_utterance(self.featuriser(samples, sample_rate), speaker, timestamp)

    def read_utterance(
        self, utterance: Utterance, speaker: Optional[SpeakerStats] = None, timestamp: Optional[float] = None
    ) -> Reading:
        """As :meth:`read`, from features already computed (``self.featuriser(samples)``)."""
        frames, vector = utterance.frames, utterance.vector
        if vector is None:
            return no_speech_reading(frames, timestamp)
        stats = speaker if speaker is not None else self.new_speaker()
        stats.update(vector)
        probs = self.model.probabilities(stats.standardise(vector))[0]
        return Reading(
            "voice",
            tuple(float(p) for p in probs),
            float(probs.max()),
            timestamp=time.time() if timestamp is None else timestamp,
            extras={
                "speech": True,
                "duration_s": round(frames.duration_s, 3),
                "voiced_s": round(float(frames.voiced.sum()) * HOP / SAMPLE_RATE, 3),
                "level_db": round(frames.peak_db, 1),
                # How many of this speaker's utterances the standardisation has seen.
                "speaker_utterances": stats.count if speaker is not None else 0,
            },
        )
