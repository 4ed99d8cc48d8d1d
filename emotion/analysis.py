"""The whole analysis of a clip from one call: transcript, text sentiment, voice emotion, fused emotion.

    from emotion import Analyzer
    analyzer = Analyzer()                       # loads every model once
    result = analyzer.analyze("clip.wav", language="auto", text_weight=0.3)
    print(result.to_json())

Clips longer than SEGMENT_SECONDS are cut into segments at quiet moments; each segment gets its own
answer (a timeline) and the clip gets an overall one, fused by the same rule from the overall voice
emotion (segments weighted by duration) and the sentiment of the whole transcript.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotion import settings
from emotion.audio import SAMPLE_RATE, check_audio, load_audio, split_points
from emotion.errors import EmotionError
from emotion.fusion import fuse, top_label
from emotion.labels import EMOTIONS, LANGUAGES
from emotion.speech import SpeechEmotion, SpeechModel, load_speech_model

# Whisper reads 30-s windows; longer clips are cut a little before that, at the quietest moment.
SEGMENT_SECONDS = 30.0
LANGUAGE_OPTIONS = ("auto", *LANGUAGES)


@dataclass
class Judgement:
    label: str
    scores: dict[str, float]

    def to_json(self) -> dict:
        return {"label": self.label, "scores": self.scores}


@dataclass
class Segment:
    start_s: float
    end_s: float
    transcript: str
    language: str | None
    speech: SpeechEmotion
    text: Judgement | None
    fused: Judgement

    def to_json(self) -> dict:
        return {
            "start_s": round(self.start_s, 2),
            "end_s": round(self.end_s, 2),
            "transcript": self.transcript,
            "language": self.language,
            "speech": self.speech.to_json(),
            "text": self.text.to_json() if self.text else None,
            "fused": self.fused.to_json(),
        }


@dataclass
class Analysis:
    path: str
    duration_s: float
    speech: SpeechEmotion
    transcript: str | None = None  # None when transcription was switched off
    language: str | None = None
    text: Judgement | None = None
    fused: Judgement | None = None
    segments: list[Segment] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        record = {"path": self.path, "duration_s": round(self.duration_s, 3), "speech": self.speech.to_json()}
        if self.transcript is not None:
            record |= {
                "transcript": self.transcript,
                "language": self.language,
                "text": self.text.to_json() if self.text else None,
                "fused": self.fused.to_json() if self.fused else None,
                "segments": [segment.to_json() for segment in self.segments],
            }
        record["timings_ms"] = {stage: round(ms, 1) for stage, ms in self.timings_ms.items()}
        return record


class Analyzer:
    """Loads the models once; `analyze` then answers clip after clip."""

    def __init__(
        self,
        transcribe: bool = True,
        speech_model: str = settings.SPEECH_MODEL,
        asr_engine: str | None = None,
        asr_model: str | None = None,
    ) -> None:
        self.speech_model: SpeechModel = load_speech_model(speech_model)
        self.transcriber = None
        self.sentiment_model = None
        if transcribe:
            from emotion.asr import load_transcriber
            from emotion.text import load_sentiment_model

            self.transcriber = load_transcriber(
                asr_engine or settings.ASR_ENGINE, asr_model or settings.ASR_MODEL
            )
            self.sentiment_model = load_sentiment_model()

    def analyze(
        self,
        source: str | Path | np.ndarray,
        language: str = "auto",
        text_weight: float = settings.TEXT_WEIGHT,
        progress: Callable[[float, str], None] | None = None,
    ) -> Analysis:
        """Analyse a file, or a 16 kHz mono float32 array. Raises EmotionError for unusable input."""
        if language not in LANGUAGE_OPTIONS:
            raise EmotionError(f"Unknown language {language!r}; choose one of {', '.join(LANGUAGE_OPTIONS)}.")
        if not 0.0 <= text_weight <= 1.0:
            raise EmotionError(f"The text weight must lie between 0 and 1, not {text_weight}.")
        timings: dict[str, float] = {}
        with _timed(timings, "decode"):
            if isinstance(source, np.ndarray):
                audio, path = check_audio(source, max_seconds=settings.MAX_CLIP_SECONDS), "<array>"
            else:
                audio, path = load_audio(source, max_seconds=settings.MAX_CLIP_SECONDS), str(source)
        bounds = split_points(audio, SEGMENT_SECONDS)
        segments = []
        for number, (start, end) in enumerate(bounds):
            if progress and len(bounds) > 1:
                progress(number / len(bounds), f"segment {number + 1} of {len(bounds)}")
            segments.append(self._analyze_segment(audio[start:end], start, language, text_weight, timings))

        duration = audio.size / SAMPLE_RATE
        if len(segments) == 1:
            only = segments[0]
            analysis = Analysis(
                path, duration, only.speech, only.transcript, only.language, only.text, only.fused
            )
        else:
            analysis = self._combine(path, duration, segments, language, text_weight, timings)
        analysis.timings_ms = timings
        if self.transcriber is None:
            analysis.transcript = analysis.text = analysis.fused = None
            analysis.segments = []
        return analysis

    def analyze_many(self, paths: list[str], **options) -> Iterator[Analysis | EmotionError]:
        """Each path's analysis, or the error that stopped it, in input order; one bad file stops nothing."""
        for path in paths:
            try:
                yield self.analyze(path, **options)
            except EmotionError as error:
                yield error

    def _analyze_segment(
        self, audio: np.ndarray, start: int, language: str, text_weight: float, timings: dict[str, float]
    ) -> Segment:
        transcript, detected, text, encoded = "", None, None, None
        if self.transcriber is not None:
            with _timed(timings, "transcription"):
                heard = self.transcriber.transcribe(audio, language=language)
            transcript, detected = heard.text, heard.language
            text = self._sentiment(transcript, language, detected, timings)
            if self.transcriber is self.speech_model.encoder:
                encoded = heard.encoder_frames  # the window is encoded once, for both branches
        if self.speech_model.encoder is not None and encoded is None:
            with _timed(timings, "encoder"):
                encoded = self.speech_model.encoder.encode(audio)
        with _timed(timings, "features"):
            inputs = self.speech_model.inputs(audio, encoded)
        with _timed(timings, "speech_model"):
            speech = self.speech_model.predict_inputs([inputs])[0]
        with _timed(timings, "fusion"):
            fused = _fused(speech.scores, text, text_weight)
        end = start + audio.size
        return Segment(start / SAMPLE_RATE, end / SAMPLE_RATE, transcript, detected, speech, text, fused)

    def _sentiment(
        self, transcript: str, language: str, detected: str | None, timings: dict[str, float]
    ) -> Judgement | None:
        with _timed(timings, "text"):
            forced = None if language == "auto" else language
            result = self.sentiment_model.predict(
                [transcript], language=forced or "auto", asr_language=detected
            )[0]
        return Judgement(result.label, result.scores) if result else None

    def _combine(
        self,
        path: str,
        duration: float,
        segments: list[Segment],
        language: str,
        text_weight: float,
        timings: dict[str, float],
    ) -> Analysis:
        lengths = np.array([s.end_s - s.start_s for s in segments])
        weights = lengths / lengths.sum()
        scores = {
            e: float(sum(w * s.speech.scores[e] for w, s in zip(weights, segments, strict=True)))
            for e in EMOTIONS
        }
        speech = SpeechEmotion(segments[0].speech.model, top_label(scores), scores)
        transcript = " ".join(s.transcript for s in segments if s.transcript).strip()
        languages = [s.language for s in segments if s.language]
        detected = max(set(languages), key=languages.count) if languages else None
        text = self._sentiment(transcript, language, detected, timings) if self.transcriber else None
        return Analysis(
            path,
            duration,
            speech,
            transcript,
            detected,
            text,
            _fused(speech.scores, text, text_weight),
            segments,
        )


def _fused(speech_scores: dict[str, float], text: Judgement | None, text_weight: float) -> Judgement:
    scores = fuse(speech_scores, text.scores if text else None, text_weight)
    return Judgement(top_label(scores), scores)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - started) * 1000
