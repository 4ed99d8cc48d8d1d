"""Fuse the text's sentiment (positive/negative) with the voice's eight emotions into one distribution.

    text valence:  positive = max(p_pos - p_neg, 0), negative = max(p_neg - p_pos, 0),
                   neutral = 1 - |p_pos - p_neg|                      (sums to 1)
    fused(e) = w_speech * speech(e) + w_text * valence(group(e)) * speech(e) / speech(group(e))

The text moves probability between valence groups; inside a group it follows the voice
(uniformly where the voice gives the group nothing). Both terms sum to one, so the fused one does too.
"""

from emotion.labels import EMOTIONS, VALENCE


def text_valence(sentiment: dict[str, float]) -> dict[str, float]:
    difference = sentiment["positive"] - sentiment["negative"]
    return {
        "positive": max(difference, 0.0),
        "negative": max(-difference, 0.0),
        "neutral": 1.0 - abs(difference),
    }


def fuse(
    speech: dict[str, float], sentiment: dict[str, float] | None, text_weight: float
) -> dict[str, float]:
    """The fused distribution over EMOTIONS; with no text, the voice's own distribution."""
    if not 0.0 <= text_weight <= 1.0:
        raise ValueError(f"text_weight must lie between 0 and 1, not {text_weight}")
    if sentiment is None:
        return {e: float(speech[e]) for e in EMOTIONS}
    valence = text_valence(sentiment)
    group_mass = {group: 0.0 for group in valence}
    group_size = {group: 0 for group in valence}
    for emotion in EMOTIONS:
        group_mass[VALENCE[emotion]] += speech[emotion]
        group_size[VALENCE[emotion]] += 1
    fused = {}
    for emotion in EMOTIONS:
        group = VALENCE[emotion]
        share = speech[emotion] / group_mass[group] if group_mass[group] > 0 else 1.0 / group_size[group]
        fused[emotion] = (1.0 - text_weight) * speech[emotion] + text_weight * valence[group] * share
    return fused


def top_label(scores: dict[str, float]) -> str:
    return max(scores, key=scores.get)
