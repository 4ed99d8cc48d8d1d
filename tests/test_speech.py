import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from emotion.audio import SAMPLE_RATE, load_audio
from emotion.ensemble import Ensemble
from emotion.errors import EmotionError
from emotion.features import N_FEATURES
from emotion.labels import EMOTIONS
from emotion.speech import (
    ENCODER,
    LayerProbe,
    SpeechCNN,
    SpeechInput,
    SpeechModel,
    checkpoint_path,
    layer_index,
    layer_statistics,
    load_speech_model,
    pad_frames,
    save_speech_model,
    stack_frames,
)
from tests.conftest import DATA_DIR
from train.corpora import find_clips, parse_clip
from train.encoder_frames import load_augmented_copies, load_encoder_frames

needs_corpora = pytest.mark.skipif(not (DATA_DIR / "speech").is_dir(), reason="../shared/data is not here")


def test_network_shapes_for_a_ragged_batch():
    network = SpeechCNN(N_FEATURES).eval()
    frames, lengths = pad_frames([np.random.randn(n, N_FEATURES).astype(np.float32) for n in (7, 120, 33)])
    assert frames.shape == (3, 120, N_FEATURES)
    assert network(frames, lengths).shape == (3, len(EMOTIONS))


@pytest.mark.parametrize("attention_pooling", [False, True])
def test_padding_does_not_change_the_answer(attention_pooling):
    torch.manual_seed(0)
    network = SpeechCNN(N_FEATURES, attention_pooling=attention_pooling).eval()
    short = np.random.randn(41, N_FEATURES).astype(np.float32)
    alone = network(*pad_frames([short]))
    beside_a_long_one = network(*pad_frames([short, np.random.randn(300, N_FEATURES).astype(np.float32)]))
    torch.testing.assert_close(alone[0], beside_a_long_one[0], atol=1e-4, rtol=1e-4)


def test_the_encoder_model_reads_features_and_encoder_frames_side_by_side():
    torch.manual_seed(0)
    network = SpeechCNN(N_FEATURES, encoder_dims=512, utterance_norm=True).eval()
    acoustic = [np.random.randn(n, N_FEATURES).astype(np.float32) for n in (51, 200)]
    encoded = [np.random.randn(n, 512).astype(np.float32) for n in (50, 201)]
    stacked = [stack_frames(a, e) for a, e in zip(acoustic, encoded, strict=True)]
    assert [s.shape for s in stacked] == [(50, N_FEATURES + 512), (200, N_FEATURES + 512)]
    np.testing.assert_array_equal(stacked[1][:, N_FEATURES:], encoded[1][:200])
    logits = network(*pad_frames(stacked))
    assert logits.shape == (2, len(EMOTIONS))
    torch.testing.assert_close(network(*pad_frames(stacked[:1]))[0], logits[0], atol=1e-4, rtol=1e-4)
    # The encoder's part changes the answer: it is read, not ignored.
    changed = stacked[0].copy()
    changed[:, N_FEATURES:] += 1.0
    assert not torch.allclose(network(*pad_frames([changed]))[0], logits[0], atol=1e-3)


def test_utterance_std_makes_the_answer_blind_to_each_clips_scale_and_offset_of_its_acoustic_features():
    torch.manual_seed(0)
    stacked = np.random.randn(80, N_FEATURES + 16).astype(np.float32)
    # A recording that spreads every acoustic number 3 times as wide and shifts it (another channel).
    rescaled = stacked.copy()
    rescaled[:, :N_FEATURES] = 3.0 * rescaled[:, :N_FEATURES] + np.random.randn(N_FEATURES).astype(np.float32)
    for utterance_std, blind in ((True, True), (False, False)):
        network = SpeechCNN(
            N_FEATURES, encoder_dims=16, utterance_norm=True, utterance_std=utterance_std
        ).eval()
        same = torch.allclose(network(*pad_frames([stacked])), network(*pad_frames([rescaled])), atol=1e-4)
        assert same is blind


def test_corpus_names_give_labels_and_speakers(tmp_path):
    ravdess = parse_clip(tmp_path / "Actor_17" / "03-01-05-02-01-02-17.wav")
    crema = parse_clip(tmp_path / "AudioWAV" / "1040_ITH_SAD_X.wav")
    assert (ravdess.corpus, ravdess.speaker, ravdess.emotion) == ("ravdess", "ravdess-17", "angry")
    assert (crema.corpus, crema.speaker, crema.emotion) == ("crema-d", "crema-d-1040", "sad")
    assert parse_clip(tmp_path / "03-02-05-02-01-02-17.wav") is None  # song, not speech
    assert parse_clip(tmp_path / "readme.wav") is None


@needs_corpora
def test_the_acoustic_model_beats_chance_on_speakers_it_never_heard():
    model = load_speech_model("acoustic")
    path = checkpoint_path("acoustic")
    held_out = set(json.loads(path.with_suffix(".json").read_text())["validation_speakers"])
    clips = [c for c in find_clips(DATA_DIR / "speech") if c.speaker in held_out]
    sample = [clips[i] for i in np.random.default_rng(0).choice(len(clips), size=48, replace=False)]
    results = model.predict([load_audio(c.path) for c in sample])
    accuracy = np.mean([r.label == c.emotion for r, c in zip(results, sample, strict=True)])
    assert path.stat().st_size < 5_000_000
    assert accuracy > 2 / len(EMOTIONS)  # chance is 1/8


@needs_corpora
def test_the_whisper_model_beats_the_acoustic_one_on_speakers_both_trained_on():
    # The shipped whisper weights were trained on every speaker in shared/ (their recipe was validated on
    # held-out speakers: reports/speech), so no clip here is new to them. Compared on the acoustic model's
    # training speakers, both models have heard every voice: this checks that the weights, the features and
    # the encoder frames fit together as in training, not how well the model generalises.
    whisper, acoustic = load_speech_model("whisper"), load_speech_model("acoustic")
    assert whisper.encoder is not None and acoustic.encoder is None
    assert whisper.probe is not None and 0 < whisper.probe.share < 1
    path = checkpoint_path("whisper")
    assert len(whisper.network.members) == json.loads(path.with_suffix(".json").read_text())["members"]
    trained_on = set(
        json.loads(checkpoint_path("acoustic").with_suffix(".json").read_text())["training_speakers"]
    )
    clips = [c for c in find_clips(DATA_DIR / "speech") if c.speaker in trained_on]
    sample = [clips[i] for i in np.random.default_rng(1).choice(len(clips), size=64, replace=False)]
    audios = [load_audio(c.path) for c in sample]
    scores = {}
    for model in (whisper, acoustic):
        results = model.predict(audios)
        scores[model.name] = np.mean([r.label == c.emotion for r, c in zip(results, sample, strict=True)])
    assert path.stat().st_size < 6_000_000  # a few MB: the three CNNs 4.98, the layer probe 0.3
    assert scores["whisper"] > scores["acoustic"], scores


def test_a_saved_ensemble_loads_and_averages_its_members(tmp_path):
    torch.manual_seed(0)
    members = [SpeechCNN(N_FEATURES, utterance_norm=True).eval() for _ in range(2)]
    save_speech_model(Ensemble(members), "pair", {"labels": list(EMOTIONS)}, tmp_path)
    loaded = load_speech_model("pair", tmp_path)
    frames = [np.random.randn(n, N_FEATURES).astype(np.float32) for n in (60, 140)]
    expected = torch.stack([torch.softmax(m(*pad_frames(frames)), dim=-1) for m in members]).mean(0)
    results = loaded.predict_inputs([SpeechInput(f) for f in frames])
    for result, row in zip(results, expected, strict=True):
        np.testing.assert_allclose(
            [result.scores[label] for label in EMOTIONS], row.detach().numpy(), atol=1e-5
        )
    assert len(loaded.network.members) == 2 and loaded.encoder is None


def test_augmented_copies_are_encoded_once_each_with_the_features_of_the_same_audio(tmp_path, speech_wav):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(speech_wav, tmp_path / folder / "clip.wav")
    shutil.copy(speech_wav, tmp_path / "a" / "other.wav")
    paths = [tmp_path / "a" / "clip.wav", tmp_path / "b" / "clip.wav", tmp_path / "a" / "other.wav"]
    cache = tmp_path / "cache"
    copies = load_augmented_copies(paths, 2, seed=0, cache_dir=cache, workers=1)
    assert [len(c) for c in copies] == [2, 2, 2]
    seconds = len(load_audio(speech_wav)) / SAMPLE_RATE
    for acoustic, frames, statistics in copies[0]:
        assert acoustic.shape[1] == N_FEATURES and frames.shape[1] == 512
        assert abs(len(acoustic) - len(frames)) <= 2  # one augmented audio, read both ways
        assert 0.85 * seconds * 50 < len(frames) < 1.15 * seconds * 50  # speed and shift change it a little
        # The layer probe reads the copies too: every layer's statistics, the CNN's block among them.
        assert statistics.shape == (7 * 2 * 512,)
        block_mean = statistics.reshape(7, 2, 512)[layer_index(ENCODER["layer"]), 0]
        np.testing.assert_allclose(block_mean, frames.astype(np.float32).mean(0), atol=0.02)
    # A copy is drawn from the clip's name, its number and the seed: where the file lies does not matter.
    for versions in zip(copies[0], copies[1], strict=True):
        for array, same in zip(*versions, strict=True):
            np.testing.assert_array_equal(array, same)
    first, second = copies[0][0][1], copies[0][1][1]
    assert first.shape != second.shape or not np.array_equal(first, second)
    own, statistics = load_encoder_frames(paths[:1], cache, workers=1)[0]
    assert own.dtype == np.float16 and own.shape[1] == 512 and statistics.shape == (7 * 2 * 512,)
    assert first.shape != own.shape or not np.allclose(first, own, atol=0.1)
    assert not np.allclose(copies[0][0][2], statistics, atol=0.01)
    # Encoded once: a second call reads the cache and writes nothing.
    written = {p: p.stat().st_mtime_ns for p in cache.rglob("*-*.npz")}
    assert len(written) == 6
    again = load_augmented_copies(paths, 2, seed=0, cache_dir=cache, workers=1)
    np.testing.assert_array_equal(again[2][1][1], copies[2][1][1])
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*-*.npz")} == written


@needs_corpora
@pytest.mark.parametrize("model", ["acoustic", "whisper"])
def test_training_smoke_splits_by_speaker(tmp_path, model):
    command = [sys.executable, "-m", "train.speech", "--model", model, "--limit", "24", "--epochs", "1",
               "--copies", "1", "--workers", "1", "--weights-dir", str(tmp_path / "w"),
               "--reports-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
               "--encoder-cache-dir", str(tmp_path / "e"), "--name", "smoke"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    trained = load_speech_model("smoke", tmp_path / "w")
    assert trained.labels == EMOTIONS
    assert (trained.encoder is not None) == (model == "whisper")
    assert (trained.probe is not None) == (model == "whisper")
    metrics = json.loads((tmp_path / "r" / "smoke_metrics.json").read_text())
    if model == "whisper":  # the CNNs and the layer probe are each scored alone too
        assert set(metrics["validation_ua_by_part"]) == {"cnn", "layer_probe"}
        assert trained.probe.coef.shape[1] == 7 * 2 * 512
    assert metrics["validation_speakers"]
    assert not set(metrics["validation_speakers"]) & set(metrics["training_speakers"])
    assert metrics["training_inputs"] == 2 * metrics["training_clips"]  # each clip and its one copy
    for figure in ("smoke_confusion.png", "smoke_curves.png"):
        assert (tmp_path / "r" / figure).stat().st_size > 10_000


@needs_corpora
def test_training_on_all_speakers_keeps_every_member_and_side_by_side_trains_the_same_members(tmp_path):
    def train(name: str, processes: str) -> SpeechModel:
        command = [sys.executable, "-m", "train.speech", "--model", "acoustic", "--limit", "24", "--epochs",
                   "1", "--members", "2", "--all-speakers", "--workers", processes, "--threads", processes,
                   "--weights-dir", str(tmp_path / "w"), "--reports-dir", str(tmp_path / "r"),
                   "--cache-dir", str(tmp_path / "c"), "--name", name]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        return load_speech_model(name, tmp_path / "w")

    trained = train("all", "1")
    assert len(trained.network.members) == 2
    side_by_side = train("side-by-side", "2").network.state_dict()  # two processes of one thread each
    for name, tensor in trained.network.state_dict().items():
        torch.testing.assert_close(side_by_side[name], tensor, rtol=0, atol=0)
    metrics = json.loads((tmp_path / "r" / "all_metrics.json").read_text())
    assert metrics["validation"] is None and not metrics["validation_speakers"]
    assert metrics["training_clips"] == 24  # every clip of the sample trains
    assert sorted({h["seed"] for h in metrics["history"]}) == [0, 1]
    assert (tmp_path / "r" / "all_curves.png").stat().st_size > 10_000
    assert not (tmp_path / "r" / "all_confusion.png").exists()


@needs_corpora
def test_an_ensemble_run_reports_what_each_member_added(tmp_path):
    command = [sys.executable, "-m", "train.speech", "--model", "acoustic", "--limit", "24", "--epochs", "1",
               "--members", "2", "--copies", "0", "--workers", "1", "--weights-dir", str(tmp_path / "w"),
               "--reports-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
               "--name", "pair"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    metrics = json.loads((tmp_path / "r" / "pair_metrics.json").read_text())
    first, both = metrics["validation_ua_by_members"]
    seed_0_last_epoch = [h for h in metrics["history"] if h["seed"] == 0][-1]
    for corpus, scores in metrics["validation"].items():
        assert first[corpus] == seed_0_last_epoch[f"{corpus}_ua"]  # the first member alone
        assert both[corpus] == scores["ua"]  # both: the validation figure


@needs_corpora
def test_weight_averaging_averages_every_step_from_its_epoch_and_ships_the_average(tmp_path):
    def train(name: str, *extra: str) -> dict:
        command = [sys.executable, "-m", "train.speech", "--model", "acoustic", "--limit", "24",
                   "--epochs", "3", "--batch-size", "4", "--copies", "0", "--all-speakers", "--workers", "1",
                   "--weights-dir", str(tmp_path / "w"), "--reports-dir", str(tmp_path / "r"),
                   "--cache-dir", str(tmp_path / "c"), "--name", name, *extra]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        return json.loads((tmp_path / "r" / f"{name}_metrics.json").read_text())

    averaged = train("averaged", "--average-from", "2")
    steps = 24 // 4  # an epoch's
    assert [h.get("averaged_steps") for h in averaged["history"]] == [None, steps, 2 * steps]
    last = train("last")
    assert all("averaged_steps" not in h for h in last["history"])
    # The same seed and batches: the runs part only in which weights are kept.
    assert averaged["history"][0]["train_loss"] == last["history"][0]["train_loss"]
    weights = [load_speech_model(name, tmp_path / "w").network.state_dict() for name in ("averaged", "last")]
    assert not torch.equal(weights[0]["members.0.head.3.weight"], weights[1]["members.0.head.3.weight"])


def test_older_weights_read_the_last_layer_and_a_block_the_encoder_lacks_is_refused(tmp_path):
    member = SpeechCNN(N_FEATURES, encoder_dims=512, utterance_norm=True).eval()
    older = {"engine": ENCODER["engine"], "model": ENCODER["model"]}  # before the block was recorded
    save_speech_model(Ensemble([member]), "older", {"labels": list(EMOTIONS)}, tmp_path, encoder=older)
    loaded = load_speech_model("older", tmp_path)
    audio = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    encoded = loaded.encoder.encode(audio)
    np.testing.assert_array_equal(loaded.inputs(audio, encoded).frames[:, N_FEATURES:], encoded[:, -1])
    save_speech_model(Ensemble([member]), "deep", {"labels": list(EMOTIONS)}, tmp_path, older | {"layer": 9})
    with pytest.raises(EmotionError, match="block 9's frames; the transcriber's encoder has 6 blocks"):
        load_speech_model("deep", tmp_path)


def test_the_layer_probe_takes_its_share_of_the_answer_and_travels_with_the_weights(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    encoded = [rng.standard_normal((n, 7, 512)).astype(np.float32) for n in (40, 90)]
    statistics = np.stack([layer_statistics(e) for e in encoded])
    assert statistics.shape == (2, 7 * 2 * 512)
    np.testing.assert_allclose(statistics[0][512:1024], encoded[0][:, 0].std(axis=0), rtol=1e-5)
    # Trained on six of the eight labels (one corpus): the other two get nothing from it.
    classes = np.array([0, 2, 3, 4, 5, 6])
    coef = rng.standard_normal((6, statistics.shape[1]))
    probe = LayerProbe(statistics.mean(0), statistics.std(0) + 1, coef, rng.standard_normal(6), classes, 0.4)
    own = probe.probabilities(statistics, len(EMOTIONS))
    np.testing.assert_allclose(own.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(own[:, [1, 7]] == 0)
    member = SpeechCNN(N_FEATURES, utterance_norm=True).eval()
    save_speech_model(Ensemble([member]), "probed", {"labels": list(EMOTIONS)}, tmp_path, probe=probe)
    loaded = load_speech_model("probed", tmp_path)
    frames = [rng.standard_normal((n, N_FEATURES)).astype(np.float32) for n in (40, 90)]
    cnn = torch.softmax(member(*pad_frames(frames)), dim=-1).detach().numpy()
    results = loaded.predict_inputs([SpeechInput(f, s) for f, s in zip(frames, statistics, strict=True)])
    for result, expected in zip(results, 0.6 * cnn + 0.4 * own, strict=True):
        np.testing.assert_allclose([result.scores[label] for label in EMOTIONS], expected, atol=1e-5)
