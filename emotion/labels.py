"""Every label name, translation and colour the project uses, in one place."""

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

# RAVDESS names its emotions by a two-digit code in the file name, in the order of EMOTIONS.
RAVDESS_CODES = {f"{i:02d}": emotion for i, emotion in enumerate(EMOTIONS, start=1)}

CREMA_D_CODES = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

SENTIMENTS = ("positive", "negative")

# The languages of the transcripts and the text models; "auto" lets Whisper choose between them.
LANGUAGES = ("zh", "en")

# Valence groups used to fuse text sentiment (positive/negative) with the eight speech emotions.
VALENCE = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "positive",
    "surprised": "positive",
    "sad": "negative",
    "angry": "negative",
    "fearful": "negative",
    "disgust": "negative",
}

CHINESE_NAMES = {
    "neutral": "中性",
    "calm": "平静",
    "happy": "快乐",
    "sad": "悲伤",
    "angry": "愤怒",
    "fearful": "恐惧",
    "disgust": "厌恶",
    "surprised": "惊讶",
    "positive": "正面",
    "negative": "负面",
}

# One colour per emotion, used by every plot so that a reader learns them once.
COLOURS = {
    "neutral": "#8c8c8c",
    "calm": "#6baed6",
    "happy": "#f2b705",
    "sad": "#3b5ba5",
    "angry": "#d62728",
    "fearful": "#9467bd",
    "disgust": "#2ca02c",
    "surprised": "#ff7f0e",
    "positive": "#f2b705",
    "negative": "#3b5ba5",
}


def bilingual(label: str) -> str:
    """'angry' -> '愤怒 angry', for the places where the UI names an emotion or a sentiment."""
    return f"{CHINESE_NAMES[label]} {label}"
