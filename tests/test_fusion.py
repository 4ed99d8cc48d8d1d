import pytest
from hypothesis import given
from hypothesis import strategies as st

from emotion.fusion import fuse, text_valence
from emotion.labels import EMOTIONS, VALENCE

probabilities = st.lists(st.floats(0, 1), min_size=len(EMOTIONS), max_size=len(EMOTIONS)).filter(
    lambda values: sum(values) > 1e-6
)


def as_distribution(values: list[float]) -> dict[str, float]:
    return {e: v / sum(values) for e, v in zip(EMOTIONS, values, strict=True)}


@given(probabilities, st.floats(0, 1), st.floats(0, 1))
def test_fused_is_a_distribution(values, positive, text_weight):
    fused = fuse(as_distribution(values), {"positive": positive, "negative": 1 - positive}, text_weight)
    assert set(fused) == set(EMOTIONS)
    assert sum(fused.values()) == pytest.approx(1.0)
    assert min(fused.values()) >= 0.0


@given(probabilities)
def test_without_text_the_voice_answers(values):
    speech = as_distribution(values)
    assert fuse(speech, None, 0.3) == pytest.approx(speech)
    assert fuse(speech, {"positive": 0.9, "negative": 0.1}, 0.0) == pytest.approx(speech)


def test_text_valence_sums_to_one():
    assert text_valence({"positive": 0.8, "negative": 0.2}) == pytest.approx(
        {"positive": 0.6, "negative": 0.0, "neutral": 0.4}
    )


def test_worked_example_from_the_readme():
    speech = {"neutral": 0.10, "calm": 0.05, "happy": 0.20, "sad": 0.40,
              "angry": 0.10, "fearful": 0.05, "disgust": 0.05, "surprised": 0.05}  # fmt: skip
    fused = fuse(speech, {"positive": 0.9, "negative": 0.1}, text_weight=0.3)
    # valence: positive 0.8, negative 0, neutral 0.2; happy gets 0.7*0.20 + 0.3*0.8*0.20/0.25
    assert fused["happy"] == pytest.approx(0.14 + 0.192)
    assert fused["sad"] == pytest.approx(0.28)
    assert fused["neutral"] == pytest.approx(0.07 + 0.3 * 0.2 * 0.10 / 0.15)
    assert max(fused, key=fused.get) == "happy"


def test_text_weight_one_gives_the_text_its_groups():
    speech = {e: 1 / len(EMOTIONS) for e in EMOTIONS}
    fused = fuse(speech, {"positive": 0.0, "negative": 1.0}, 1.0)
    negative = sum(p for e, p in fused.items() if VALENCE[e] == "negative")
    assert negative == pytest.approx(1.0)


def test_a_group_the_voice_ignores_is_shared_evenly():
    speech = {e: (1.0 if e == "sad" else 0.0) for e in EMOTIONS}
    fused = fuse(speech, {"positive": 1.0, "negative": 0.0}, 0.5)
    assert fused["happy"] == pytest.approx(0.25)
    assert fused["surprised"] == pytest.approx(0.25)
    assert fused["sad"] == pytest.approx(0.5)


def test_weight_out_of_range():
    with pytest.raises(ValueError):
        fuse({e: 1 / 8 for e in EMOTIONS}, None, 1.5)
