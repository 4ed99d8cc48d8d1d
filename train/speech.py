"""Train the speech-emotion models on RAVDESS and CREMA-D, validated on speakers they never hear.

    python -m train.speech                                   # one whisper network on the split (replaces
                                                             #   weights/speech_whisper.pt)
    python -m train.speech --model acoustic                  # acoustic features only: speech_acoustic.pt
    python -m train.speech --model probe                     # baselines, reported only: a linear probe on
    python -m train.speech --model pooled                    #   the encoder, the original pooled-feature CNN
    python -m train.speech --members 3 --all-speakers        # the shipped weights (see reports/speech)
    python -m train.speech --hold-out-corpus ravdess --name loco-ravdess   # leave-one-corpus-out check
    python -m train.speech --limit 48 --epochs 1 --weights-dir /tmp/w --reports-dir /tmp/r   # smoke test

Models: "whisper" reads the acoustic features and the transcriber's Whisper-encoder frames side by side,
"acoustic" the features alone (both a CNN over time); "probe" is a linear layer on the mean and standard
deviation of the encoder frames, "pooled" the original 1-D CNN over time-averaged features. The "whisper"
model also fits a layer probe (a logistic regression on every encoder layer's mean and standard deviation,
the training clips and their copies) whose probabilities are averaged with the CNNs'.
Read top to bottom: settings, the speaker split, inputs (cached), the training loop, the report.
"""

import argparse
import hashlib
import json
import time
from multiprocessing import Pool, get_context
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from emotion import features, settings
from emotion.audio import SAMPLE_RATE, load_audio
from emotion.ensemble import Ensemble
from emotion.errors import EmotionError
from emotion.labels import EMOTIONS
from emotion.speech import (
    ENCODER,
    LayerProbe,
    SpeechCNN,
    frame_mask,
    mean_and_std,
    pad_frames,
    save_speech_model,
    stack_frames,
)
from train import augment, encoder_frames
from train.corpora import Clip, find_clips
from train.metrics import corpus_metrics, plot_confusions, plot_curves

# -------------------------------------------------------------------------------------------------
# settings
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument(
    "--data",
    type=Path,
    nargs="+",
    default=[settings.DATA_DIR / "speech"],
    help="folders holding RAVDESS and/or CREMA-D clips (FLAC or the original WAV layout)",
)
parser.add_argument("--model", choices=("whisper", "acoustic", "probe", "pooled"), default="whisper")
parser.add_argument("--name", help="weights/speech_NAME.pt and the reports' names (default: the model)")
parser.add_argument("--weights-dir", type=Path, default=settings.WEIGHTS_DIR)
parser.add_argument("--reports-dir", type=Path, default=Path("reports/speech"))
parser.add_argument("--cache-dir", type=Path, default=settings.CACHE_DIR / "speech-features")
parser.add_argument("--encoder-cache-dir", type=Path, default=encoder_frames.CACHE_DIR)
parser.add_argument("--val-ravdess-actors", default="17,18,19,20", help="RAVDESS actors held out")
parser.add_argument(
    "--val-crema-speakers", type=int, default=12, help="CREMA-D actors held out, drawn by --split-seed"
)
parser.add_argument("--split-seed", type=int, default=0, help="draws the held-out CREMA-D actors")
parser.add_argument(
    "--utterance-norm",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="subtract each clip's mean frame (default; --no-utterance-norm to keep it)",
)
parser.add_argument(
    "--utterance-std",
    action=argparse.BooleanOptionalAction,
    help="with --utterance-norm, divide by each clip's standard deviation too (default for whisper)",
)
parser.add_argument(
    "--hold-out-corpus",
    choices=("ravdess", "crema-d"),
    help="validate on every speaker of this corpus (its emotions that the other has), train on the other",
)
parser.add_argument(
    "--copies",
    type=int,
    default=1,
    help="augmented copies of each training clip (for the models that read the encoder, each copy is "
    "encoded once and cached beside the clips' frames)",
)
parser.add_argument(
    "--time-mask",
    type=float,
    default=0.0,
    help="SpecAugment's time masking: up to this share of each training clip's frames hidden in one span",
)
parser.add_argument(
    "--attention-pooling",
    action="store_true",
    help="pool over time with learned weights per frame and channel (attentive statistics pooling)",
)
parser.add_argument(
    "--all-speakers",
    action="store_true",
    help="train on every speaker, validate on none: the shipped weights, once the split chose the recipe",
)
parser.add_argument("--members", type=int, default=1, help="networks trained with seeds SEED, SEED+1, ...")
parser.add_argument(
    "--epochs",
    type=int,
    help="passes over the training clips and their copies (default: 10 whisper, 20 others)",
)
parser.add_argument(
    "--average-from",
    type=int,
    default=0,
    help="keep the average of the weights after every step from this epoch on (default 0: the last weights)",
)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument(
    "--crop-frames",
    type=int,
    default=150,
    help="each epoch, a training input longer than this many frames is cut to a random stretch of it "
    "(0: whole inputs); a random batch then pads to 3 s, not to its longest clip",
)
parser.add_argument(
    "--bfloat16",
    action=argparse.BooleanOptionalAction,
    default=True,
    help="train under bfloat16 autocast (the saved weights, validation and the analyser stay float32)",
)
parser.add_argument(
    "--layer-probe-share",
    type=float,
    default=0.4,
    help="whisper model: the layer probe's share of the answer (0: no probe)",
)
parser.add_argument(
    "--layer-probe-c",
    type=float,
    default=0.003,
    help="the layer probe's inverse L2 strength (chosen by speaker-grouped cross-validation, docs/speech.md)",
)
parser.add_argument("--lr", type=float, default=2e-3)
parser.add_argument("--weight-decay", type=float, default=1e-2)
parser.add_argument("--label-smoothing", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0, help="weights, batch order, augmentation")
parser.add_argument(
    "--workers",
    type=int,
    default=2,
    help="processes that compute inputs; above 1, the members also train side by side, one process each",
)
parser.add_argument("--threads", type=int, default=2, help="torch threads, shared among those processes")
parser.add_argument("--limit", type=int, default=0, help="use only this many clips (smoke tests)")
args = parser.parse_args()
args.name = args.name or args.model
if args.utterance_std is None:  # measured for the whisper model; the shipped acoustic model predates it
    args.utterance_std = args.model == "whisper"
if args.epochs is None:  # measured for the whisper model, whose copies make each epoch twice as long
    args.epochs = 10 if args.model == "whisper" else 20
reads_encoder = args.model in ("whisper", "probe")

torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)
started = time.time()


# -------------------------------------------------------------------------------------------------
# the split: by speaker, so that no voice, and no augmented copy of a clip, is on both sides
def split_by_speaker(clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    if args.all_speakers:
        return clips, []
    if args.hold_out_corpus:
        train = [c for c in clips if c.corpus != args.hold_out_corpus]
        known = {c.emotion for c in train}
        return train, [c for c in clips if c.corpus == args.hold_out_corpus and c.emotion in known]
    ravdess_held_out = {f"ravdess-{int(actor):02d}" for actor in args.val_ravdess_actors.split(",")}
    crema_speakers = sorted({c.speaker for c in clips if c.corpus == "crema-d"})
    rng = np.random.default_rng(args.split_seed)
    count = min(args.val_crema_speakers, len(crema_speakers) // 2)
    held_out = ravdess_held_out | set(rng.choice(crema_speakers, size=count, replace=False).tolist())
    return [c for c in clips if c.speaker not in held_out], [c for c in clips if c.speaker in held_out]


clips = find_clips(*args.data)
if args.limit:
    clips = [clips[i] for i in np.random.default_rng(args.seed).permutation(len(clips))[: args.limit]]
train_clips, val_clips = split_by_speaker(clips)
print(
    f"{len(train_clips)} training clips, {len(val_clips)} validation clips "
    f"from {len({c.speaker for c in val_clips})} held-out speakers"
)


# -------------------------------------------------------------------------------------------------
# features, cached: the key covers the files, the feature settings and the augmentation settings
def clip_features(job: tuple[str, int, int]) -> list[np.ndarray]:
    """Features of a clip and its augmented copies; none for an unusable clip (CREMA-D has a silent one)."""
    path, copies, seed = job
    try:
        audio = load_audio(path)
    except EmotionError as error:
        tqdm.write(f"skipped: {error}")
        return []
    rng = np.random.default_rng(seed)
    versions = [audio] + [augment.augment(audio, rng) for _ in range(copies)]
    return [features.extract_features(v).astype(np.float16) for v in versions]


def load_features(clips: list[Clip], copies: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Feature sequences of each clip and its augmented copies, and the index of the clip each came from."""
    settings_used = [*features.CACHE_KEY, copies, args.seed, *augment.CACHE_KEY]
    files = [(str(c.path.resolve()), c.path.stat().st_size) for c in clips]
    key = hashlib.sha1(json.dumps([settings_used, files]).encode()).hexdigest()[:16]
    cache = args.cache_dir / f"{key}.npz"
    if cache.is_file():
        stored = np.load(cache)
        sequences = np.split(stored["frames"], np.cumsum(stored["lengths"])[:-1])
        return sequences, stored["origin"]
    jobs = [(str(c.path), copies, args.seed * 1_000_003 + i) for i, c in enumerate(clips)]
    with Pool(args.workers) as pool:
        per_clip = list(tqdm(pool.imap(clip_features, jobs, chunksize=8), total=len(jobs), desc="features"))
    sequences = [s for versions in per_clip for s in versions]
    origin = np.repeat(np.arange(len(clips)), [len(versions) for versions in per_clip])
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, frames=np.concatenate(sequences), lengths=[len(s) for s in sequences], origin=origin)
    return sequences, origin


def load_inputs(clips: list[Clip], copies: int) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """The model's input sequences, the index of the clip each came from, and each input's encoder layer
    statistics (for the layer probe; none for the models that do not read the encoder)."""
    if not clips:  # no validation speakers with --all-speakers
        return [], np.zeros(0, dtype=int), []
    if not reads_encoder:
        return *load_features(clips, copies), []
    paths = [c.path for c in clips]
    loaded = encoder_frames.load_encoder_frames(paths, args.encoder_cache_dir, args.workers)
    acoustic = {}  # the probe reads the encoder frames alone: no acoustic features to compute
    if args.model == "whisper":
        sequences, origin = load_features(clips, 0)
        acoustic = dict(zip(origin.tolist(), sequences, strict=True))
    versions = [[] if item is None else [(acoustic.get(i), *item)] for i, item in enumerate(loaded)]
    if copies:  # augmented copies come from the encoder's cache: features, frames and statistics of one audio
        augmented = encoder_frames.load_augmented_copies(
            paths, copies, args.seed, args.encoder_cache_dir, args.workers
        )
        for clip_versions, clip_copies in zip(versions, augmented, strict=True):
            clip_versions.extend(clip_copies)
    inputs = [
        frames if args.model == "probe" else stack_frames(acoustic_part, frames).astype(np.float16)
        for clip_versions in versions
        for acoustic_part, frames, _ in clip_versions
    ]
    statistics = [layers for clip_versions in versions for _, _, layers in clip_versions]
    return inputs, np.repeat(np.arange(len(clips)), [len(v) for v in versions]), statistics


train_x, train_origin, train_statistics = load_inputs(train_clips, args.copies)
val_x, val_origin, val_statistics = load_inputs(val_clips, 0)
val_clips = [val_clips[i] for i in val_origin]
label_index = {label: i for i, label in enumerate(EMOTIONS)}
train_y = np.array([label_index[train_clips[i].emotion] for i in train_origin])
val_y = np.array([label_index[c.emotion] for c in val_clips])
print(f"inputs ready after {time.time() - started:.0f} s")


# -------------------------------------------------------------------------------------------------
# the model
class PooledFeatureCNN(nn.Module):
    """The original design: features averaged over time, then a 1-D CNN along the feature vector."""

    def __init__(self, n_features: int, n_classes: int = len(EMOTIONS), channels: int = 64) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.convs = nn.Sequential(
            nn.Conv1d(1, channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Dropout(0.3),
        )
        self.head = nn.Linear(channels * (n_features // 4), n_classes)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(frames.shape[1]) < lengths.unsqueeze(-1)).unsqueeze(-1).float()
        pooled = (frames * mask).sum(dim=1) / lengths.unsqueeze(-1)
        x = ((pooled - self.feature_mean) / self.feature_std).unsqueeze(1)
        return self.head(self.convs(x).flatten(1))


class LinearProbe(nn.Module):
    """The baseline for the encoder: a linear layer on the mean and standard deviation of its frames."""

    def __init__(self, n_features: int, n_classes: int = len(EMOTIONS)) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.linear = nn.Linear(2 * n_features, n_classes)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = ((frames - self.feature_mean) / self.feature_std).transpose(1, 2)
        return self.linear(mean_and_std(x, frame_mask(lengths, x.shape[-1])))


encoder_dims = train_x[0].shape[1] - features.N_FEATURES if args.model == "whisper" else 0


def new_network() -> nn.Module:
    if args.model in ("whisper", "acoustic"):
        return SpeechCNN(
            features.N_FEATURES,
            utterance_norm=args.utterance_norm,
            encoder_dims=encoder_dims,
            utterance_std=args.utterance_std,
            attention_pooling=args.attention_pooling,
        )
    if args.model == "probe":
        return LinearProbe(train_x[0].shape[1])
    return PooledFeatureCNN(features.N_FEATURES)


# Mean and standard deviation of every input number over the training frames, summed clip by clip.
totals = np.zeros((2, train_x[0].shape[1]))
for sequence in train_x:
    sequence = sequence.astype(np.float64)
    totals += [sequence.sum(axis=0), np.square(sequence).sum(axis=0)]
frame_count = sum(len(s) for s in train_x)
mean, mean_square = totals / frame_count
frame_mean = torch.from_numpy(mean).float()
frame_std = torch.from_numpy(np.sqrt(mean_square - mean**2) + 1e-5).float()

# Calm and surprised exist only in RAVDESS, so classes are far from balanced: weight by inverse frequency.
# A class with no training clip (calm and surprised, trained on CREMA-D alone) weighs nothing: label
# smoothing weights its share by the class weight, and a large one would pull every answer towards it.
class_counts = np.bincount(train_y, minlength=len(EMOTIONS)).astype(np.float64)
present = class_counts > 0
class_weights = np.where(present, class_counts.sum() / np.maximum(class_counts, 1) / present.sum(), 0.0)
class_weights = torch.tensor(class_weights).float()
loss_function = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=args.label_smoothing)


def predict(model: nn.Module, sequences: list[np.ndarray]) -> np.ndarray:
    """Probabilities for many sequences, in eval mode, in batches of similar length (less padding)."""
    model.eval()
    order = np.argsort([len(s) for s in sequences], kind="stable")
    probabilities = np.zeros((len(sequences), len(EMOTIONS)), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            logits = model(*pad_frames([sequences[i] for i in rows]))
            probabilities[rows] = logits.softmax(dim=-1).numpy()
    model.train()
    return probabilities


def crop(sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of --crop-frames frames of a longer input; a shorter one whole."""
    if not args.crop_frames or len(sequence) <= args.crop_frames:
        return sequence
    start = int(rng.integers(0, len(sequence) - args.crop_frames + 1))
    return sequence[start : start + args.crop_frames]


def mask_time(frames: torch.Tensor, lengths: torch.Tensor, rng: np.random.Generator) -> None:
    """Hide one random span of each clip (up to --time-mask of it) behind the training mean, in place."""
    for row, length in enumerate(lengths.tolist()):
        width = int(rng.integers(0, int(args.time_mask * length) + 1))
        start = int(rng.integers(0, length - width + 1))
        frames[row, start : start + width] = frame_mean


# -------------------------------------------------------------------------------------------------
# the training loop, once per member: member k is what a run with --seed SEED+k --members 1 trains
def train_member(seed: int, history: list[dict]) -> nn.Module:
    torch.manual_seed(seed)
    model = new_network()
    model.feature_mean.copy_(frame_mean)
    model.feature_std.copy_(frame_std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = int(np.ceil(len(train_x) / args.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    rng = np.random.default_rng(seed)
    # Batch-norm statistics are averaged with the weights, so the average needs no pass of its own.
    averaged = AveragedModel(model, use_buffers=True)
    for epoch in range(1, args.epochs + 1):
        averaging = 0 < args.average_from <= epoch
        order = rng.permutation(len(train_x))
        losses, correct = [], 0
        for start in tqdm(
            range(0, len(order), args.batch_size),
            desc=f"seed {seed} epoch {epoch}/{args.epochs}",
            leave=False,
        ):
            batch = order[start : start + args.batch_size]
            frames, lengths = pad_frames([crop(train_x[i], rng) for i in batch])
            if args.time_mask:
                mask_time(frames, lengths, rng)
            targets = torch.from_numpy(train_y[batch])
            with torch.autocast("cpu", torch.bfloat16, enabled=args.bfloat16):
                logits = model(frames, lengths).float()
            loss = loss_function(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if averaging:
                averaged.update_parameters(model)
            losses.append(loss.item())
            correct += int((logits.argmax(dim=-1) == targets).sum())
        entry = {
            "seed": seed,
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "train_accuracy": correct / len(order),
        }
        if averaging:
            entry["averaged_steps"] = int(averaged.n_averaged)
        scored = averaged.module if averaging else model
        if val_x:
            probabilities = predict(scored, val_x)
            # The loss function reads logits; the log of probabilities is one of them.
            entry["val_loss"] = float(
                loss_function(torch.from_numpy(probabilities).log(), torch.from_numpy(val_y))
            )
            scores = corpus_metrics(val_clips, val_y, probabilities.argmax(axis=1))
            entry |= {f"{c}_ua": m["ua"] for c, m in scores.items()}
        history.append(entry)
        print(json.dumps(entry))
    return scored


def train_member_alone(seed: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    """train_member in a worker process: its weights as arrays (they pickle), and its history."""
    torch.set_num_threads(max(1, args.threads // args.members))
    history: list[dict] = []
    state = train_member(seed, history).state_dict()
    return {name: tensor.numpy() for name, tensor in state.items()}, history


seeds = [args.seed + k for k in range(args.members)]
history: list[dict] = []
if args.workers > 1 and args.members > 1:
    # Members are independent: all at once, one thread each. On two cores, two at once took 83 ms a step each
    # against 100 for one at a time on two threads; three at once leave no core idle while the last trains.
    # Forked, so that each process inherits the loaded inputs instead of loading them again.
    with get_context("fork").Pool(args.members) as pool:
        trained = pool.map(train_member_alone, seeds)
    members = []
    for state, member_history in trained:
        members.append(new_network())
        members[-1].load_state_dict({name: torch.from_numpy(array) for name, array in state.items()})
        history += member_history
    ensemble = Ensemble(members)
else:
    ensemble = Ensemble(train_member(seed, history) for seed in seeds)
print(f"{sum(p.numel() for p in ensemble.parameters()):,} parameters in {args.members} member(s)")


# -------------------------------------------------------------------------------------------------
# the layer probe: a logistic regression beside the CNNs, on the training clips and their augmented copies
# (the copies carried the probe across corpora: 44 -> 59 UA from CREMA-D to RAVDESS, docs/speech.md)
def fit_layer_probe() -> LayerProbe:
    from sklearn.linear_model import LogisticRegression

    x = np.stack(train_statistics)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    regression = LogisticRegression(C=args.layer_probe_c, class_weight="balanced", max_iter=3000)
    regression.fit((x - mean) / std, train_y)
    coef, intercept = regression.coef_, regression.intercept_
    if len(regression.classes_) == 2:  # one row of log-odds for the second class: as two softmax rows
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    as32 = [a.astype(np.float32) for a in (mean, std, coef, intercept)]
    return LayerProbe(*as32, regression.classes_.astype(np.int64), args.layer_probe_share)


probe = fit_layer_probe() if args.model == "whisper" and args.layer_probe_share > 0 else None


# -------------------------------------------------------------------------------------------------
# the report and the weights: the members as training left them (last or averaged weights), scored together
metrics, predicted, ua_by_members, ua_by_part = None, None, None, None
if val_x:
    # The answers of the first k members averaged, k = 1 ... --members: what each added member bought. The
    # last is the ensemble's own answer (its members' mean probability).
    member_probabilities = [predict(member, val_x) for member in ensemble.members]
    by_members = [np.mean(member_probabilities[:k], axis=0).argmax(1) for k in range(1, args.members + 1)]
    ua_by_members = [{c: m["ua"] for c, m in corpus_metrics(val_clips, val_y, p).items()} for p in by_members]
    predicted = by_members[-1]
    if probe is not None:  # each part alone, then the model's own answer: the two averaged
        cnn_probabilities, statistics = np.mean(member_probabilities, axis=0), np.stack(val_statistics)
        parts = {"cnn": cnn_probabilities, "layer_probe": probe.probabilities(statistics, len(EMOTIONS))}
        ua_by_part = {
            name: {c: m["ua"] for c, m in corpus_metrics(val_clips, val_y, p.argmax(1)).items()}
            for name, p in parts.items()
        }
        predicted = probe.blend(cnn_probabilities, statistics).argmax(1)
    metrics = corpus_metrics(val_clips, val_y, predicted)
minutes = (time.time() - started) / 60
summary = {
    "name": args.name,
    "model": args.model,
    "labels": list(EMOTIONS),
    "members": args.members,
    "validation": metrics,
    "validation_ua_by_members": ua_by_members,  # the CNNs alone
    "validation_ua_by_part": ua_by_part,  # the CNN ensemble alone and the layer probe alone
    "layer_probe": None if probe is None else {"share": probe.share, "c": args.layer_probe_c},
    "validation_speakers": sorted({c.speaker for c in val_clips}),
    "training_clips": len(set(train_origin.tolist())),
    "training_inputs": len(train_x),  # the clips and their augmented copies
    "training_speakers": sorted({c.speaker for c in train_clips}),
    "training_corpora": sorted({c.corpus for c in train_clips}),
    "augmented_copies": args.copies,
    "encoder": encoder_frames.encoder_settings() if reads_encoder else None,
    "features": {
        "names": list(features.FEATURE_NAMES),
        "sample_rate": SAMPLE_RATE,
        "n_fft": features.N_FFT,
        "hop_length": features.HOP_LENGTH,
        "n_mels": features.N_MELS,
        "n_mfcc": features.N_MFCC,
    },
    "settings": json.loads(json.dumps(vars(args), default=str)),
    "history": history,
    "training_minutes": round(minutes, 1),
}
args.reports_dir.mkdir(parents=True, exist_ok=True)
(args.reports_dir / f"{args.name}_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
plot_curves(history, args.reports_dir / f"{args.name}_curves.png")
if metrics:
    plot_confusions(val_clips, val_y, predicted, args.reports_dir / f"{args.name}_confusion.png")
    for corpus, m in metrics.items():
        print(f"{corpus}: UA {m['ua']:.1%}  WA {m['wa']:.1%}  ({m['clips']} clips)")
if args.model in ("whisper", "acoustic") and not args.hold_out_corpus:
    metadata = {k: v for k, v in summary.items() if k != "history"}
    save_speech_model(
        ensemble, args.name, metadata, args.weights_dir, ENCODER if encoder_dims else None, probe
    )
print(f"done in {minutes:.1f} min")
