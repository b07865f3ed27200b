"""A PyTorch Whisper built from a CTranslate2 ``model.bin``: the frozen encoder (and decoder) the losses read.

CTranslate2 decodes fast but gives no gradient; the front-end's contextual-alignment, feature-matching and
teacher-forced cross-entropy losses need one. This module reads the CTranslate2 weights file itself and
builds the same network in PyTorch, float32, frozen.

**model.bin** (CTranslate2 binary version 6): ``uint32 version``, ``string spec name`` (``uint16`` length +
bytes), ``uint32 spec revision``, ``uint32 n``; then n variables ``string name, uint8 rank, uint32 dims
[rank], uint8 dtype, uint32 nbytes, bytes``; then ``uint32 m`` aliases ``string alias, string target``.
dtypes: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Little endian.

**Network** (Whisper, pre-norm Transformer, LayerNorm eps 1e-5, GELU): encoder ``conv1`` (k 3, pad 1),
GELU, ``conv2`` (k 3, stride 2, pad 1), GELU, + sinusoidal positions, layers ``x + attn(ln(x))``,
``x + ffn(ln(x))``, a final LayerNorm; decoder token embedding + learned positions, layers with causal
self-attention, cross-attention (``attention``: ``linear_0`` query, ``linear_1`` fused key/value,
``linear_2`` output) and FFN, a final LayerNorm, logits with the (tied) embedding matrix. Self-attention's
``linear_0`` is the fused query/key/value projection.
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ModelFileError(ValueError):
    """A ``model.bin`` that is not a readable CTranslate2 Whisper."""


def read_ct2_weights(path: str | Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 ``model.bin`` (aliases resolved): name -> array (its stored dtype)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e}") from None
    pos = 0

    def take(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise ModelFileError(f"{path}: truncated at byte {pos} (file has {len(data)})")
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    def string() -> str:
        nonlocal pos
        (n,) = take("<H")
        if pos + n > len(data):
            raise ModelFileError(f"{path}: truncated at byte {pos}")
        s = data[pos:pos + n].decode("utf-8", errors="replace").rstrip("\0")
        pos += n
        return s

    (version,) = take("<I")
    if not 2 <= version <= 6:
        raise ModelFileError(f"{path}: not a CTranslate2 model file (binary version {version})")
    spec = string()
    take("<I")  # spec revision
    if "Whisper" not in spec:
        raise ModelFileError(f"{path}: a CTranslate2 {spec or 'model'}, not a Whisper")
    (count,) = take("<I")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        dims = take(f"<{rank}I") if rank else ()
        (dtype,) = take("<B")
        (nbytes,) = take("<I")
        if dtype not in _DTYPES:
            raise ModelFileError(f"{path}: variable {name}: unsupported dtype code {dtype} (quantised or bfloat16?)")
        if pos + nbytes > len(data):
            raise ModelFileError(f"{path}: truncated inside variable {name}")
        arr = np.frombuffer(data, dtype=_DTYPES[dtype], count=nbytes // np.dtype(_DTYPES[dtype]).itemsize,
                            offset=pos)
        out[name] = arr.reshape(dims) if rank else arr.reshape(())
        pos += nbytes
    if pos + 4 <= len(data):
        (aliases,) = take("<I")
        for _ in range(aliases):
            alias, target = string(), string()
            if target in out:
                out[alias] = out[target]
    return out


class _Attention(nn.Module):
    """Multi-head attention with Whisper's projections; ``cross``: query from x, key/value from memory."""

    def __init__(self, d: int, heads: int, cross: bool = False):
        super().__init__()
        self.heads, self.cross = heads, cross
        self.ln = nn.LayerNorm(d)
        if cross:
            self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        else:
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, causal: bool = False,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln(x)
        if self.cross:
            q = self.q(h)
            k, v = self.kv(memory).chunk(2, dim=-1)
        else:
            q, k, v = self.qkv(h).chunk(3, dim=-1)
        b, t, d = q.shape
        split = lambda z: z.view(b, z.shape[1], self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        mask = None
        if key_mask is not None:  # [B, S] True = attend
            mask = key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, cross: bool = False):
        super().__init__()
        self.attn = _Attention(d, heads)
        self.cross = _Attention(d, heads, cross=True) if cross else None
        self.ffn_ln, self.ffn_in, self.ffn_out = nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x, memory=None, causal=False, key_mask=None):
        x = x + self.attn(x, causal=causal, key_mask=None if causal else key_mask)
        if self.cross is not None:
            x = x + self.cross(x, memory)
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_ln(x))))


class WhisperEncoder(nn.Module):
    """features [B, n_mels, T] (Whisper-normalised log-mel) -> hidden states [B, ceil(T / 2), d].

    ``forward(..., layers=[...])`` also returns the outputs of those layers (after each block; the last
    one before the final LayerNorm). T may be shorter than the 3000 frames of Whisper's window (positions
    are sliced; the result then differs from the padded window's, which is what the losses want: they
    compare clean and enhanced crops through the same network)."""

    def __init__(self, n_mels: int, d: int, heads: int, ffn: int, n_layers: int, n_ctx: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(n_ctx, d))
        self.layers = nn.ModuleList(_Block(d, heads, ffn) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, feats: torch.Tensor, layers: Sequence[int] = (), key_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.gelu(self.conv2(F.gelu(self.conv1(feats)))).transpose(1, 2)  # [B, T', d]
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"Whisper's encoder takes at most {2 * self.positions.shape[0]} frames, got "
                             f"{feats.shape[-1]}")
        x = x + self.positions[: x.shape[1]]
        want = {int(l) % len(self.layers) for l in layers}
        grabbed = {}
        for i, block in enumerate(self.layers):
            x = block(x, key_mask=key_mask)
            if i in want:
                grabbed[i] = x
        return self.ln(x), [grabbed[int(l) % len(self.layers)] for l in layers]


class WhisperDecoder(nn.Module):
    """tokens [B, U] + encoder output [B, S, d] -> logits [B, U, vocab] (teacher forcing, causal)."""

    def __init__(self, vocab: int, d: int, heads: int, ffn: int, n_layers: int, n_ctx: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.register_buffer("positions", torch.zeros(n_ctx, d))
        self.layers = nn.ModuleList(_Block(d, heads, ffn, cross=True) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]
        for block in self.layers:
            x = block(x, memory=memory, causal=True)
        return self.ln(x) @ self.embed.weight.t()


class TorchWhisper(nn.Module):
    """Encoder and decoder of a CTranslate2 Whisper, float32, frozen (:meth:`from_ct2`)."""

    def __init__(self, encoder: WhisperEncoder, decoder: WhisperDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    @classmethod
    def from_ct2(cls, model_dir: str | Path) -> "TorchWhisper":
        w = read_ct2_weights(Path(model_dir) / "model.bin")
        try:
            return cls._build(w)
        except KeyError as e:
            raise ModelFileError(f"{model_dir}/model.bin: missing Whisper variable {e}") from None

    @classmethod
    def _build(cls, w: dict[str, np.ndarray]) -> "TorchWhisper":
        t = lambda name: torch.from_numpy(np.array(w[name], dtype=np.float32))  # noqa: E731
        d, n_mels = w["encoder/conv1/weight"].shape[:2]
        ffn = w["encoder/layer_0/ffn/linear_0/weight"].shape[0]
        n_enc = len({k.split("/")[1] for k in w if re.match(r"encoder/layer_\d+/", k)})
        n_dec = len({k.split("/")[1] for k in w if re.match(r"decoder/layer_\d+/", k)})
        heads_e, heads_d = int(w["encoder/num_heads"]), int(w["decoder/num_heads"])
        enc = WhisperEncoder(n_mels, d, heads_e, ffn, n_enc, w["encoder/position_encodings/encodings"].shape[0])
        vocab = w["decoder/embeddings/weight"].shape[0]
        dec = WhisperDecoder(vocab, d, heads_d, ffn, n_dec, w["decoder/position_encodings/encodings"].shape[0])

        def lin(m: nn.Linear, prefix: str) -> None:
            m.weight.data.copy_(t(prefix + "/weight"))
            m.bias.data.copy_(t(prefix + "/bias"))

        def ln(m: nn.LayerNorm, prefix: str) -> None:
            m.weight.data.copy_(t(prefix + "/gamma"))
            m.bias.data.copy_(t(prefix + "/beta"))

        def block(b: _Block, prefix: str) -> None:
            ln(b.attn.ln, prefix + "/self_attention/layer_norm")
            lin(b.attn.qkv, prefix + "/self_attention/linear_0")
            lin(b.attn.out, prefix + "/self_attention/linear_1")
            if b.cross is not None:
                ln(b.cross.ln, prefix + "/attention/layer_norm")
                lin(b.cross.q, prefix + "/attention/linear_0")
                lin(b.cross.kv, prefix + "/attention/linear_1")
                lin(b.cross.out, prefix + "/attention/linear_2")
            ln(b.ffn_ln, prefix + "/ffn/layer_norm")
            lin(b.ffn_in, prefix + "/ffn/linear_0")
            lin(b.ffn_out, prefix + "/ffn/linear_1")

        enc.conv1.weight.data.copy_(t("encoder/conv1/weight"))
        enc.conv1.bias.data.copy_(t("encoder/conv1/bias"))
        enc.conv2.weight.data.copy_(t("encoder/conv2/weight"))
        enc.conv2.bias.data.copy_(t("encoder/conv2/bias"))
        enc.positions.copy_(t("encoder/position_encodings/encodings"))
        for i, b in enumerate(enc.layers):
            block(b, f"encoder/layer_{i}")
        ln(enc.ln, "encoder/layer_norm")
        dec.embed.weight.data.copy_(t("decoder/embeddings/weight"))
        dec.positions.copy_(t("decoder/position_encodings/encodings"))
        for i, b in enumerate(dec.layers):
            block(b, f"decoder/layer_{i}")
        ln(dec.ln, "decoder/layer_norm")
        model = cls(enc, dec).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def train(self, mode: bool = True) -> "TorchWhisper":  # frozen: always eval
        return super().train(False)


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's encoder positions (for tests: CTranslate2 stores them): [length, channels]."""
    inc = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)
