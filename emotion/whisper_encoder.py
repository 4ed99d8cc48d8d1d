"""Whisper's audio encoder in torch, built from the transcriber's own CTranslate2 weights.

CTranslate2 returns only the encoder's last layer, and the speech-emotion model reads the others too: its
CNN reads the third block's frames (a linear probe on them scores 3 UA points higher on the held-out speakers
than on the last layer's, and 4 points higher on a corpus it never heard), its layer probe every layer's
(docs/speech.md). So the faster-whisper transcriber runs its encoder here, once a window, and hands the last
layer to CTranslate2's decoder and every layer to the speech model. The weights are read from the same
model.bin CTranslate2 loads: nothing else to ship. On a CPU that computes bfloat16 natively the blocks run in
it (three blocks of a 15-s window on 2 cores: 55 ms, against 133 in float32), so the whole encoder costs less
than CTranslate2's int8 one (209-238 ms), decodes the same text, and the speech model, trained on these
frames, answers as it would on float32 ones (docs/speech.md, sessions 19 and 21). torch's int8 is not used
there: its one scale for a whole activation garbles Chinese transcripts.
"""

import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# CTranslate2's data-type codes in model.bin.
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}
ENCODER_SCOPE = "encoder/"
# Each EncoderBlock module and the CTranslate2 scope that holds its weights.
BLOCK_MODULES = {
    "attention_norm": "self_attention/layer_norm",
    "qkv": "self_attention/linear_0",
    "out": "self_attention/linear_1",
    "mlp_norm": "ffn/layer_norm",
    "mlp.0": "ffn/linear_0",
    "mlp.2": "ffn/linear_1",
}
LAYER_NORM_EPS = 1e-5
# What the blocks compute in: bfloat16 where the CPU has bfloat16 instructions (AVX-512 BF16 or AMX).
BLOCK_DTYPE = (
    torch.bfloat16
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    else torch.float32
)


def read_ctranslate2_variables(path: Path, scope: str = ENCODER_SCOPE) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (format 6) whose names start with `scope`, scope removed."""
    variables = {}
    with open(path, "rb") as file:

        def read(fmt: str) -> tuple:
            return struct.unpack("<" + fmt, file.read(struct.calcsize("<" + fmt)))

        def read_name() -> str:
            (length,) = read("H")
            return file.read(length)[:-1].decode()

        (version,) = read("I")
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 model format {version}, this reader knows format 6")
        read_name(), read("I")  # the spec's name and revision
        (count,) = read("I")
        for _ in range(count):
            name = read_name()
            (rank,) = read("B")
            shape = read("I" * rank)
            dtype, size = read("BI")
            data = file.read(size)
            if name.startswith(scope) and CT2_DTYPES[dtype] is not None:
                variables[name[len(scope) :]] = np.frombuffer(data, CT2_DTYPES[dtype]).reshape(shape)
    return variables


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and MLP, each added to the residual stream: Whisper's residual block."""

    def __init__(self, dims: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(dims, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(dims, 3 * dims)  # Whisper's key has no bias: CTranslate2 stores zeros
        self.out = nn.Linear(dims, dims)
        self.mlp_norm = nn.LayerNorm(dims, eps=LAYER_NORM_EPS)
        self.mlp = nn.Sequential(nn.Linear(dims, 4 * dims), nn.GELU(), nn.Linear(4 * dims, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, dims = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).view(batch, frames, 3, self.heads, -1).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.out(attended.transpose(1, 2).reshape(batch, frames, dims))
        return x + self.mlp(self.mlp_norm(x))


class WhisperEncoder(nn.Module):
    """Mel (batch, n_mels, 2 * frames) -> every layer's output, (batch, blocks + 1, frames, dims) float32:
    each block's, then the last layer (the last block's, normalised), which the decoder reads."""

    def __init__(self, n_mels: int, dims: int, heads: int, layers: int, max_frames: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dims, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims, dims, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(max_frames, dims))
        self.blocks = nn.ModuleList(EncoderBlock(dims, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dims, eps=LAYER_NORM_EPS)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]  # a window shorter than 30 s takes the first positions
        x = x.to(self.blocks[0].mlp_norm.weight.dtype)  # the blocks' precision (load_whisper_encoder)
        layers = []
        for block in self.blocks:
            x = block(x)
            layers.append(x.float())
        layers.append(self.norm(x.float()))
        return torch.stack(layers, dim=1)


def load_whisper_encoder(model_file: Path, block_dtype: torch.dtype = BLOCK_DTYPE) -> WhisperEncoder:
    """The encoder of a CTranslate2 Whisper model.bin, ready for inference: the convolutions and the last
    layer norm in float32, the blocks in `block_dtype`."""
    arrays = read_ctranslate2_variables(model_file)
    variables = {name: torch.from_numpy(array.astype(np.float32)) for name, array in arrays.items()}
    layers = sum(name.endswith("self_attention/linear_0/weight") for name in variables)
    max_frames, dims = variables["position_encodings/encodings"].shape
    encoder = WhisperEncoder(variables["conv1/weight"].shape[1], dims, dims // 64, layers, max_frames)
    # CTranslate2's name for each torch module; a layer norm's weight and bias are its gamma and beta.
    modules = {"conv1": "conv1", "conv2": "conv2", "norm": "layer_norm"}
    for index in range(layers):
        for name, scope in BLOCK_MODULES.items():
            modules[f"blocks.{index}.{name}"] = f"layer_{index}/{scope}"
    state = {"positions": "position_encodings/encodings"}
    for name, source in modules.items():
        norm = source.endswith("layer_norm")
        state[f"{name}.weight"] = f"{source}/{'gamma' if norm else 'weight'}"
        state[f"{name}.bias"] = f"{source}/{'beta' if norm else 'bias'}"
    encoder.load_state_dict({name: variables[source] for name, source in state.items()})
    encoder.blocks.to(block_dtype)
    return encoder.eval()
