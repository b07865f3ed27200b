"""The NeMo backend of the frozen ASR (:class:`specenh.asr.base.FrozenASR`): a NeMo Conformer.

``NemoASR(spec)`` (``--asr_model <name>``, ``nemo:<name>`` or a ``.nemo`` path, through
:func:`specenh.asr.base.load_asr`) loads a pretrained model by name (NGC/HF through NeMo's ``from_pretrained``,
cached by NeMo) or a local ``.nemo`` file (``restore_from``, offline), freezes it and keeps it in
eval mode. It consumes our stored features (unnormalised log-mel [B, D, T], see
:mod:`specenh.features.logmel`) and applies the model's own feature normalisation itself, so
decoding from features equals NeMo's ``transcribe()`` on the waveform (dither off).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from specenh.asr.base import ASRLoadError, FrozenASR, register_backend
from specenh.features.logmel import FeatureConfig

log = logging.getLogger(__name__)

PRETRAINED = ("stt_en_conformer_ctc_small", "stt_en_conformer_ctc_medium", "stt_en_conformer_ctc_large",
              "stt_en_fastconformer_ctc_large", "stt_en_conformer_transducer_small",
              "stt_en_fastconformer_hybrid_large_pc")


def load_nemo_model(spec: str | Path, map_location: str | torch.device = "cpu"):
    """A NeMo ASRModel from a ``.nemo`` path or a pretrained name; clear errors otherwise."""
    from nemo.collections.asr.models import ASRModel

    p = Path(str(spec))
    if p.suffix == ".nemo" or p.exists():
        if not p.is_file():
            raise ASRLoadError(f"ASR model file not found: {p}")
        try:
            return ASRModel.restore_from(str(p), map_location=map_location)
        except Exception as e:  # tarfile.ReadError, KeyError, hydra errors ...
            raise ASRLoadError(f"cannot restore NeMo model from {p}: {type(e).__name__}: {e}") from None
    try:
        return ASRModel.from_pretrained(str(spec), map_location=map_location)
    except Exception as e:
        raise ASRLoadError(f"cannot load pretrained ASR {spec!r} (needs network on first use, then cached "
                           f"by NeMo; or pass a local .nemo path): {type(e).__name__}: {e}") from None


def normalise_feats(feats: torch.Tensor, lengths: torch.Tensor, normalize: str | None) -> torch.Tensor:
    """Apply a NeMo preprocessor's normalisation (``per_feature``/``all_features``/None) to stored
    log-mels as the preprocessor would, then zero the padding. feats [B, D, T], lengths [B] -> [B, D, T]."""
    from nemo.collections.asr.parts.preprocessing.features import normalize_batch

    x = feats
    if normalize:
        x, _, _ = normalize_batch(x, lengths, normalize_type=normalize)
    pad = torch.arange(x.shape[-1], device=x.device)[None, :] >= lengths[:, None]
    return x.masked_fill(pad[:, None, :], 0.0)


def _hyp_text(h) -> str:
    """NeMo returns Hypothesis objects (or, in older versions, strings): take the text."""
    if isinstance(h, (list, tuple)):  # n-best: take the best
        h = h[0]
    return h if isinstance(h, str) else (h.text or "")


@register_backend("nemo")
class NemoASR(FrozenASR):
    """A frozen NeMo ASR operating on stored log-mel features.

    Args:
        spec: pretrained name (e.g. ``stt_en_conformer_ctc_small``) or path to a ``.nemo`` file,
            or an already built NeMo ASR model instance.
        device: where to run.
    """

    def __init__(self, spec, device: str | torch.device = "cpu"):
        super().__init__()
        if isinstance(spec, (str, Path)):
            model = load_nemo_model(spec, map_location=device)
            self.spec = str(spec)
        else:
            model, self.spec = spec, type(spec).__name__
        model = model.to(device)
        model.freeze()  # requires_grad False everywhere
        model.eval()
        self.model = model
        self.feat_config = self.preprocessor_config()
        self.normalize = model.cfg.preprocessor.get("normalize", "per_feature")
        self.kind = self._kind()

    # ------------------------------------------------------------------ info
    def describe(self) -> str:
        return (f"nemo: {self.spec}: {type(self.model).__name__} ({self.kind}), "
                f"{sum(p.numel() for p in self.model.parameters()) / 1e6:.1f} M params, {self.num_layers} encoder layers")

    def _kind(self) -> str:
        from nemo.collections.asr.models import EncDecCTCModel, EncDecHybridRNNTCTCModel, EncDecRNNTModel

        if isinstance(self.model, EncDecHybridRNNTCTCModel):
            return "hybrid"
        if isinstance(self.model, EncDecRNNTModel):
            return "rnnt"
        if isinstance(self.model, EncDecCTCModel):
            return "ctc"
        raise ASRLoadError(f"unsupported ASR model class {type(self.model).__name__}")

    def preprocessor_config(self) -> FeatureConfig:
        """Feature settings the model was trained with (for stage 3)."""
        return FeatureConfig.from_nemo(self.model.cfg.preprocessor)

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layers)

    def _ensure_eval(self) -> None:
        """NeMo's transcribe() restores submodule modes it saved, which can leave the encoder in
        training mode (dropout on); re-assert eval before every use."""
        if any(m.training for m in self.model.modules()):
            self.model.eval()

    # ------------------------------------------------------------------ core
    def normalise(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The model's own feature normalisation; feats [B, D, T] -> [B, D, T]."""
        return normalise_feats(feats, lengths, self.normalize)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B, D, T], lengths [B] -> (encoded [B, d_model, T'], encoded lengths [B])."""
        self._check(feats, lengths)
        self._ensure_eval()
        dev = next(self.model.parameters()).device
        feats, lengths = feats.to(dev), lengths.to(dev)
        x = self.normalise(feats, lengths)
        f = self._stacking_factor()
        if f > 1:
            # NeMo's stacking subsampling pads the *batch* to a multiple of f and adds that pad to every length,
            # so an utterance's encoder length (and hypothesis) depended on its batch. Pad each utterance as it
            # would be padded alone instead: the batch to a multiple of f (NeMo then adds nothing) and every length
            # rounded up to one (the frames between are the zeros of the padding, as alone).
            x = nn.functional.pad(x, (0, (-x.shape[-1]) % f))
            lengths = torch.div(lengths + f - 1, f, rounding_mode="floor") * f
        return self.model.encoder(audio_signal=x, length=lengths)

    def _stacking_factor(self) -> int:
        """The subsampling factor of a stacking pre-encoder (1 for convolutional subsampling, batch-invariant)."""
        from nemo.collections.asr.parts.submodules.subsampling import StackingSubsampling

        pre = getattr(self.model.encoder, "pre_encode", None)
        return int(pre.subsampling_factor) if isinstance(pre, StackingSubsampling) else 1

    @torch.inference_mode()
    def decode(self, feats: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy decoding (CTC; RNNT/TDT/hybrid through the model's own decoding) -> texts [B]."""
        enc, enc_len = self.encode(feats, lengths)
        m = self.model
        if self.kind == "ctc":
            log_probs = m.decoder(encoder_output=enc)
            hyps = m.decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=enc_len, return_hypotheses=False)
        elif self.kind == "hybrid" and getattr(m, "cur_decoder", "rnnt") == "ctc":
            log_probs = m.ctc_decoder(encoder_output=enc)
            hyps = m.ctc_decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=enc_len, return_hypotheses=False)
        else:
            hyps = m.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=enc_len,
                                                               return_hypotheses=False)
        if isinstance(hyps, tuple):  # older NeMo: (best, all)
            hyps = hyps[0]
        return [_hyp_text(h) for h in hyps]

    @torch.inference_mode()
    def decode_with_confidence(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """Greedy CTC decoding and the model's confidence per utterance: the mean over the encoder frames
        of the top CTC posterior (``[B]``, in (0, 1]; no transcript involved). CTC and hybrid models (their
        CTC head); an RNNT-only model has no frame posteriors to read and is refused."""
        enc, enc_len = self.encode(feats, lengths)
        m = self.model
        if self.kind == "ctc":
            log_probs, decoding = m.decoder(encoder_output=enc), m.decoding
        elif self.kind == "hybrid":
            log_probs, decoding = m.ctc_decoder(encoder_output=enc), m.ctc_decoding
        else:
            raise ValueError(f"{self.spec}: confidence selection needs a CTC (or hybrid RNNT/CTC) model, "
                             f"this one is {self.kind}")
        hyps = decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=enc_len, return_hypotheses=False)
        if isinstance(hyps, tuple):
            hyps = hyps[0]
        top = log_probs.float().max(dim=-1).values.exp()  # [B, T']
        valid = (torch.arange(top.shape[1], device=top.device)[None, :] < enc_len[:, None]).to(top.dtype)
        conf = (top * valid).sum(1) / valid.sum(1).clamp_min(1)
        return [_hyp_text(h) for h in hyps], conf.cpu()

    def encoder_features(self, feats: torch.Tensor, lengths: torch.Tensor, layers: Sequence[int],
                         return_encoded: bool = False):
        """Outputs of the chosen Conformer layers, differentiable with respect to ``feats``.

        feats [B, D, T] (unnormalised log-mel), lengths [B], layers: indices into the encoder's
        layers (negative counts from the end) -> ([B, d_model, T'] per layer, lengths' [B]); with
        ``return_encoded`` also the encoder's output [B, d_model, T'] of the same pass (for
        :meth:`asr_loss`; ``layers`` may then be empty). The frozen weights get no gradient; only the
        input does.
        """
        self._check(feats, lengths)
        n = self.num_layers
        idx = sorted({l % n for l in layers})
        if not idx and not return_encoded:
            raise ValueError("no encoder layers requested")
        grabbed: dict[int, torch.Tensor] = {}
        hooks = []
        for i in idx:
            def hook(_m, _inp, out, i=i):
                grabbed[i] = out[0] if isinstance(out, tuple) else out
            hooks.append(self.model.encoder.layers[i].register_forward_hook(hook))
        try:
            enc, enc_len = self.encode(feats, lengths)
        finally:
            for h in hooks:
                h.remove()
        order = [l % n for l in layers]
        out = [grabbed[i].transpose(1, 2) for i in order]
        return (out, enc_len, enc) if return_encoded else (out, enc_len)

    # ------------------------------------------------------------------ CTC loss (front-end training)
    def _ctc_head(self) -> nn.Module:
        if self.kind == "ctc":
            return self.model.decoder
        if self.kind == "hybrid":
            return self.model.ctc_decoder
        raise ValueError(f"{self.spec}: a CTC loss needs a CTC (or hybrid RNNT/CTC) model, this one is {self.kind}")

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of (normalised) texts with the model's own tokenizer (subword models) or its
        character vocabulary (characters outside it are dropped)."""
        tok = getattr(self.model, "tokenizer", None)
        if tok is not None:
            return [list(tok.text_to_ids(t)) for t in texts]
        index = {c: i for i, c in enumerate(self._ctc_head().vocabulary)}
        return [[index[c] for c in t if c in index] for t in texts]

    def asr_loss(self, encoded: torch.Tensor, enc_len: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """The frozen CTC head's loss of an encoder output (:meth:`encoder_features` with
        ``return_encoded``) against token sequences: encoded [B, d_model, T'], enc_len [B], targets B
        lists of ids -> scalar (per-utterance loss divided by its target length, averaged over the batch;
        infeasible alignments count zero). Differentiable with respect to the encoder's input."""
        log_probs = self._ctc_head()(encoder_output=encoded).float()  # [B, T', V + 1], blank last
        if len(targets) != log_probs.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {log_probs.shape[0]}")
        tlen = torch.tensor([len(t) for t in targets], dtype=torch.long)
        flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
        return nn.functional.ctc_loss(log_probs.transpose(0, 1), flat.to(log_probs.device), enc_len.long(),
                                      tlen.to(log_probs.device), blank=log_probs.shape[-1] - 1,
                                      reduction="mean", zero_infinity=True)
