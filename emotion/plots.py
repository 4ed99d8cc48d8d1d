"""The app's pictures of a clip: waveform, MFCC, mel spectrogram and the emotion timeline, as RGB images.

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot: nothing is kept in
pyplot's global registry, so there is no figure to leak or close, and two requests can draw at once.
Every emotion is drawn in its labels.COLOURS colour, the same as everywhere else in the project.
"""

from collections.abc import Sequence
from functools import cache

import librosa
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from emotion.audio import SAMPLE_RATE
from emotion.features import FEATURE_NAMES, HOP_LENGTH, N_FFT, N_MELS, N_MFCC, extract_features
from emotion.labels import CHINESE_NAMES, COLOURS, EMOTIONS

FIGURE_SIZE = (8.0, 2.6)  # inches; at DPI this is 800 px wide, the width of the app's output column
DPI = 100
# A waveform of ten minutes has 9.6 M samples; its outline (min and max per column) looks the same.
WAVEFORM_COLUMNS = 2000
# Families that can draw Chinese, in order of preference; without one, plots name emotions in English only.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
)
# MFCC 0 is the frame's loudness (the waveform shows it) and spans ten times the range of the others: drawn
# with them, it would leave every other coefficient one flat colour.
_MFCC_COLUMNS = [FEATURE_NAMES.index(f"mfcc_{i}") for i in range(1, N_MFCC)]
_MEL_COLUMNS = [FEATURE_NAMES.index(f"mel_{i}") for i in range(N_MELS)]


@cache
def cjk_font() -> str | None:
    """The first installed font family that has Chinese glyphs, or None."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FONTS if family in installed), None)


def emotion_name(label: str) -> str:
    """'愤怒 angry' where a Chinese font is installed, else 'angry' (never a row of empty boxes)."""
    return f"{CHINESE_NAMES[label]} {label}" if cjk_font() and label in CHINESE_NAMES else label


# Fixed margins, room on the right for a legend or a colour bar: matplotlib's constrained layout looked the
# same here and took about half of all the drawing time.
MARGINS = {"left": 0.08, "right": 0.84, "bottom": 0.17, "top": 0.89}


def _figure(size: tuple[float, float] = FIGURE_SIZE) -> Figure:
    figure = Figure(figsize=size, dpi=DPI)
    figure.subplots_adjust(**MARGINS)
    FigureCanvasAgg(figure)
    return figure


def to_image(figure: Figure) -> np.ndarray:
    """Render a figure to an (height, width, 3) uint8 RGB array."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _font_kwargs() -> dict:
    family = cjk_font()
    return {"fontfamily": [family, "DejaVu Sans"]} if family else {}


def _legend(axes, labels: Sequence[str]) -> None:
    handles = [Patch(color=COLOURS[label], label=emotion_name(label)) for label in labels]
    font = {"family": [cjk_font(), "DejaVu Sans"]} if cjk_font() else None
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8, prop=font
    )


def waveform_image(audio: np.ndarray, spans: Sequence[tuple[float, float, str]] = ()) -> np.ndarray:
    """The clip's amplitude over time; each (start_s, end_s, emotion) span shaded in its emotion's colour."""
    figure = _figure()
    axes = figure.add_subplot()
    times, low, high = _outline(audio)
    axes.fill_between(times, low, high, color="#333333", linewidth=0.5)
    for start, end, label in spans:
        axes.axvspan(start, end, color=COLOURS[label], alpha=0.25, linewidth=0)
    if spans:
        _legend(axes, list(dict.fromkeys(label for _, _, label in spans)))
    axes.set(
        title="Waveform",
        xlabel="time (s)",
        ylabel="amplitude (full scale)",
        xlim=(0, audio.size / SAMPLE_RATE),
        ylim=(-1.05, 1.05) if np.max(np.abs(audio)) > 0.5 else None,
    )
    return to_image(figure)


def _outline(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time, minimum and maximum per column: the shape of the waveform at any length, in bounded size."""
    per_column = max(1, audio.size // WAVEFORM_COLUMNS)
    usable = audio[: audio.size // per_column * per_column].reshape(-1, per_column)
    times = (np.arange(usable.shape[0]) + 0.5) * per_column / SAMPLE_RATE
    return times, usable.min(axis=1), usable.max(axis=1)


def feature_images(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(MFCC image, mel-spectrogram image), from the very features the speech model reads."""
    features = extract_features(audio)
    return mfcc_image(features[:, _MFCC_COLUMNS]), mel_image(features[:, _MEL_COLUMNS])


def _extent(n_frames: int, top: float) -> tuple[float, float, float, float]:
    return (0.0, n_frames * HOP_LENGTH / SAMPLE_RATE, 0.0, top)


def mfcc_image(mfcc: np.ndarray) -> np.ndarray:
    """(frames, coefficients 1 to N_MFCC - 1) -> image: coefficients over time, zero in the middle colour."""
    figure = _figure()
    axes = figure.add_subplot()
    limit = float(np.percentile(np.abs(mfcc), 99)) or 1.0
    shown = axes.imshow(
        mfcc.T,
        origin="lower",
        aspect="auto",
        cmap="coolwarm",
        vmin=-limit,
        vmax=limit,
        extent=(*_extent(len(mfcc), 0)[:2], 0.5, mfcc.shape[1] + 0.5),
    )
    figure.colorbar(shown, ax=axes, label="value (dB-scaled)", pad=0.01)
    axes.set(
        title=f"MFCC 1-{mfcc.shape[1]} (0, the loudness, left out)", xlabel="time (s)", ylabel="coefficient"
    )
    return to_image(figure)


def mel_image(log_mel: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) in dB -> image with the bands' centre frequencies on the y axis."""
    figure = _figure()
    axes = figure.add_subplot()
    shown = axes.imshow(
        log_mel.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=_extent(len(log_mel), log_mel.shape[1]),
        vmin=float(np.max(log_mel)) - 80.0,  # an 80-dB range, as librosa shows it: below is only noise
    )
    figure.colorbar(shown, ax=axes, label="power (dB)", pad=0.01)
    frequencies = librosa.mel_frequencies(n_mels=N_MELS, fmax=SAMPLE_RATE / 2)
    ticks = np.linspace(0, N_MELS - 1, 5).round().astype(int)
    axes.set_yticks(ticks + 0.5, [f"{frequencies[i] / 1000:.1f}" for i in ticks])
    axes.set(
        title=f"Mel spectrogram ({N_MELS} bands, {N_FFT}-point FFT)",
        xlabel="time (s)",
        ylabel="frequency (kHz)",
    )
    return to_image(figure)


def timeline_image(segments: Sequence[dict]) -> np.ndarray:
    """The fused emotion of each segment over time, as stacked probability bars, top emotion named above."""
    figure = _figure((FIGURE_SIZE[0], 3.0))
    axes = figure.add_subplot()
    starts = np.array([segment["start_s"] for segment in segments], dtype=float)
    widths = np.array([segment["end_s"] - segment["start_s"] for segment in segments], dtype=float)
    bottom = np.zeros(len(segments))
    for label in EMOTIONS:
        heights = np.array([segment["fused"]["scores"].get(label, 0.0) for segment in segments])
        axes.bar(starts, heights, widths, bottom, align="edge", color=COLOURS[label], edgecolor="white")
        bottom += heights
    for start, width, segment in zip(starts, widths, segments, strict=True):
        axes.text(
            start + width / 2, 1.02, emotion_name(segment["fused"]["label"]), ha="center", va="bottom",
            fontsize=8, **_font_kwargs(),
        )  # fmt: skip
    _legend(axes, EMOTIONS)
    axes.set(
        title="Emotion over time (fused)",
        xlabel="time (s)",
        ylabel="probability",
        xlim=(0, float(starts[-1] + widths[-1])),
        ylim=(0, 1.12),
    )
    return to_image(figure)
