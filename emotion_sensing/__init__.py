"""emotion_sensing: recognizers, fusion and the emotion service. Importable without Rasa."""
__version__ = "0.1.0"
