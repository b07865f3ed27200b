"""Stage 4 for the reference enhancer: adversarial training of the StyleGAN front-end.

Lightning 2 module with manual optimisation, one discriminator step then one generator step per batch:

- D: hinge loss on clean (real) vs enhanced (fake) spectrograms, + R1 penalty on the real ones every
  ``r1_every`` steps (scaled by ``r1_every``);
- G: ``-D(G(x))`` + consistency loss (output vs input at ~20 bands; vs the clean utterance with
  ``consistency_target: clean``, paired) + contextual loss between enhanced and clean features, either
  from chosen layers of the frozen ASR encoder (``cx_source: asr``) or from log-mel patches
  (``cx_source: mel``), + optional L1 feature matching on the ASR features and optional L1 to the clean
  log-mel (paired mode only), + optional CTC loss of the frozen ASR on the enhanced utterance against
  its training transcript (``loss.ctc_weight``; whole utterances, ``train.crop_frames: null``; the ASR
  stays frozen: only the generator learns from it).

Paired mode (degraded / clean pairs of the same utterances) and unpaired mode (``train.unpaired: true``:
the clean target is an independent random utterance) both work. The frozen ASR is held as a plain
attribute, not a submodule: it is not in the optimisers, the checkpoints, or DDP's parameter set.
DDP: the two networks take turns, so DDP runs with ``find_unused_parameters`` (each backward reduces
only its own network); every parameter of a network takes part in that network's loss.

Seeding, the step budget (``train.max_steps``; one step = one D and one G update), the step-indexed
data stream, checkpoints / resume, validation every ``val_every_steps`` and the selection of
``model.pt`` (``select_by``) come from :mod:`specenh.train.harness`.

Outputs in ``exp_dir``: ``model.pt`` (the front-end, :func:`specenh.frontends.load`),
``checkpoints/last.ckpt`` (resume), ``tb/`` (TensorBoard scalars + spectrogram images, when
tensorboard is installed), ``logs/`` (CSV scalars), ``train_info.json``, ``config.yaml`` (resolved).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from specenh.frontends.stylegan.losses import (consistency_loss, contextual_loss, g_adv_loss, hinge_d_loss,
                                               logmel_patches, masked_l1, r1_penalty)
from specenh.frontends.stylegan.model import DEFAULTS as MODEL_DEFAULTS
from specenh.frontends.stylegan.model import Discriminator, StyleGANEnhancer
from specenh.train import FrontendData, register_trainer, select_conditions
from specenh.train.data import BucketBatchSampler, PairedFeatDataset, collate_pairs
from specenh.train.harness import (EpochIndexed, HarnessModule, bucket, check_sections, fit, register_added_key,
                                   resolve_train, selected_weights, set_threads, write_train_info)
from specenh.utils.config import merge, save_config

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "conditions": ["*"],             # fnmatch patterns on the condition dirs (<set>_<cond>) to train and validate on
    "model": dict(MODEL_DEFAULTS),
    "disc": {"capacity": 16, "fmap_max": 192, "n_blocks": None},
    "loss": {
        "adv_weight": 1.0,
        "consistency_weight": 10.0,
        "consistency_bins": 20,
        "consistency_target": "input",  # input (the paper: output vs degraded input) | clean (paired only:
                                        # output vs the clean utterance, so noise is not anchored)
        "r1_gamma": 10.0,            # R1 weight (penalty = gamma / 2 * E||grad||^2)
        "r1_every": 4,               # lazy regularisation interval (the penalty is scaled by it)
        "cx_weight": 1.0,
        "cx_source": "asr",          # asr (frozen-ASR encoder features) | mel (log-mel patches) | none
        "cx_layers": [1, -1],        # encoder layers for cx_source=asr (negative: from the end)
        "cx_h": 0.5,
        "cx_max_positions": 512,
        "cx_patch_bands": None,      # mel patches: bands (None: all), frames, strides
        "cx_patch_frames": 4,
        "cx_patch_band_stride": None,
        "cx_patch_frame_stride": 2,
        "fm_weight": 0.0,            # L1 feature matching on the ASR features (paired only)
        "l1_weight": 0.0,            # L1 to the clean normalised log-mel (paired only; not in the paper)
        "ctc_weight": 0.0,           # the frozen ASR's CTC loss on the enhanced utterance vs its transcript
                                     # (not in the paper; needs train.crop_frames: null, whole utterances)
    },
    # the trainer's own train keys; the shared ones (seed, max_steps, val_every_steps, select_by, ...) are
    # the harness's (specenh.train.harness.TRAIN_DEFAULTS)
    "train": {
        "unpaired": False,
        "crop_frames": 256,          # random crops of this many frames (same crop in degraded and clean)
        "batch_size": 16,
        "batch_max_frames": 4096,    # padded frames per batch
        "max_utts": None,            # per training condition (None: all)
        "include_clean": False,      # add clean -> clean pairs (teaches the enhancer to leave clean input alone)
        "condition_weights": {},     # {fnmatch pattern on <set>_<cond> (or <cond>): integer k}: a matching
                                     # condition's pairs are drawn k times as often (first match; default 1)
        "lr_g": 2.0e-4,
        "lr_d": 2.0e-4,
        "betas": [0.5, 0.9],
        "max_steps": 2000,           # batches (each: one D step + one G step)
        "num_threads": 2,            # torch CPU threads
        "num_val_utts": 64,
        "val_max_frames": 1000,
        "val_batch_size": 16,
        "image_every_steps": 200,    # spectrogram images (TensorBoard) in training and at validation
    },
}


register_added_key("loss.ctc_weight", 0.0)  # checkpoints from before the CTC loss resume with it off


def resolve_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Defaults under the given config; unknown keys (top level, ``loss``, ``disc``, ``train``) are errors."""
    if "seed" in cfg:
        raise ValueError("stylegan config: the seed is train.seed (the recipe's --seed sets it), not a top-level key")
    rest = {k: v for k, v in cfg.items() if k != "train"}
    check_sections(rest, {k: v for k, v in DEFAULTS.items() if k != "train"}, "stylegan", ("loss", "disc"))
    out = merge({k: v for k, v in DEFAULTS.items() if k != "train"}, {k: v for k, v in rest.items() if v is not None})
    out["train"] = resolve_train(cfg.get("train"), DEFAULTS["train"], "stylegan")
    if out["loss"]["consistency_target"] not in ("input", "clean"):
        raise ValueError(f"loss.consistency_target must be input or clean, got {out['loss']['consistency_target']!r}")
    if out["loss"]["cx_source"] not in ("asr", "mel", "none"):
        raise ValueError(f"loss.cx_source must be asr, mel or none, got {out['loss']['cx_source']!r}")
    if float(out["loss"]["ctc_weight"]) > 0 and out["train"]["crop_frames"] is not None:
        raise ValueError("loss.ctc_weight > 0 needs whole utterances (a crop has no transcript of its own): "
                         "set train.crop_frames: null")
    return out


def weight_conditions(deg: list[Path], clean: list[Path], weights: dict[str, int]
                      ) -> tuple[list[Path], list[Path]]:
    """Repeat each (degraded dir, clean dir) pair k times, k from the first pattern of ``weights``
    matching the degraded dir's name (``<set>_<cond>``, fnmatch, or ``*_<pattern>``); 1 if none does.
    A repeated dir's items get their own crops (the dataset seeds crops per item)."""
    reps = [1] * len(deg)
    for pattern, k in reversed(list(weights.items())):  # reversed: the first matching pattern wins
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"train.condition_weights[{pattern!r}] must be an integer >= 0, got {k!r}")
        for i in select_conditions(deg, [pattern]):
            reps[i] = int(k)
    if not any(reps):
        raise ValueError(f"train.condition_weights {weights} leave no training condition")
    out = [(d, c) for d, c, r in zip(deg, clean, reps) for _ in range(r)]
    return [d for d, _ in out], [c for _, c in out]


def restrict_conditions(data: FrontendData, patterns: list[str] | str) -> FrontendData:
    """``data`` with only the training / validation condition dirs matching ``patterns`` (the clean
    dirs paired with them follow). No matching training dir is an error; no matching validation dir
    leaves validation empty."""
    patterns = patterns.split() if isinstance(patterns, str) else list(patterns)
    tr = select_conditions(data.train_feats, patterns)
    if not tr:
        raise ValueError(f"stylegan: none of the training conditions {[Path(p).name for p in data.train_feats]} "
                         f"matches conditions={patterns}")
    va = select_conditions(data.valid_feats, patterns)
    log.info("stylegan: training on %s", [Path(data.train_feats[i]).name for i in tr])
    def pick(xs: list, idx: list[int], like: list) -> list:  # lists aligned with the feature dirs
        return [xs[i] for i in idx] if len(xs) == len(like) else xs

    return dataclasses.replace(
        data, train_feats=pick(data.train_feats, tr, data.train_feats),
        train_clean_feats=pick(data.train_clean_feats, tr, data.train_feats),
        train_data_dirs=pick(data.train_data_dirs, tr, data.train_feats),
        valid_feats=pick(data.valid_feats, va, data.valid_feats),
        valid_clean_feats=pick(data.valid_clean_feats, va, data.valid_feats),
        valid_data_dirs=pick(data.valid_data_dirs, va, data.valid_feats))


def needs_asr(cfg: dict[str, Any]) -> bool:
    lc = cfg["loss"]
    return (float(lc["cx_weight"]) > 0 and lc["cx_source"] == "asr") or float(lc["fm_weight"]) > 0 \
        or float(lc["ctc_weight"]) > 0


def read_transcripts(feat_dirs: list[Path]) -> dict[str, str]:
    """utterance id -> normalised transcript, from the ``text`` files of the clean feature dirs (the
    text the frozen ASR was trained on; degraded copies keep the utterance ids)."""
    from specenh.data.kaldi import read_kv
    from specenh.metrics.textnorm import normalize_text

    out: dict[str, str] = {}
    for d in dict.fromkeys(Path(p) for p in feat_dirs):
        f = d / "text"
        if not f.is_file():
            raise FileNotFoundError(f"loss.ctc_weight > 0: no transcripts {f}")
        out.update({u: normalize_text(t) for u, t in read_kv(f, allow_empty_value=True).items()})
    return out


def _spec_image(mats: list[torch.Tensor]) -> torch.Tensor:
    """Stack normalised spectrograms [H, T] (low frequencies at the bottom) into one [1, H', T] image."""
    t = max(m.shape[-1] for m in mats)
    rows = []
    for m in mats:
        m = torch.nn.functional.pad(m.detach().float().cpu().clamp(0, 1), (0, t - m.shape[-1]))
        rows += [m.flip(0), torch.ones(2, t)]
    return torch.cat(rows[:-1])[None]


class StyleGANModule(HarnessModule):
    """Generator (the front-end: mapping + synthesis) and discriminator; the ASR is a plain attribute.

    Batches: ``{x [B, 80, T], x_len [B], y [B, 80, T'], y_len [B]}`` (degraded, clean log-mel);
    spectrograms inside are normalised ``[B, 1, 80, T]``.
    """

    def __init__(self, cfg: dict[str, Any], data: FrontendData, asr=None, total_steps: int | None = None):
        super().__init__(cfg["train"], int(total_steps if total_steps is not None else cfg["train"]["max_steps"] or 0))
        self.cfg, self.data = cfg, data
        self.automatic_optimization = False
        self.enhancer = StyleGANEnhancer(**cfg["model"])
        self.disc = Discriminator(n_bands=int(cfg["model"]["n_bands"]), **cfg["disc"])
        self.__dict__["asr"] = asr  # not a submodule: no optimiser, no state_dict, invisible to DDP
        self.lc = cfg["loss"]
        self.paired = not bool(self.tc["unpaired"])
        self._val_batches: list | None = None
        self._logs: dict[str, float] = {}
        self.use_ctc = float(self.lc["ctc_weight"]) > 0
        self._tokens: dict[str, list[int]] = {}
        if self.use_ctc:
            if asr is None:
                raise ValueError("loss.ctc_weight > 0 needs the frozen ASR (--asr-model)")
            texts = read_transcripts(list(data.train_clean_feats))
            self._tokens = dict(zip(texts, asr.tokenize(list(texts.values()))))

    def selected_module(self) -> torch.nn.Module:
        return self.enhancer

    # -------------------------------------------------------------- data
    def train_pairs(self) -> PairedFeatDataset:
        """The training items: stage 2/3's pairs, or the same items made on the fly (``data.online``:
        an :class:`~specenh.train.online.OnlinePairs` with the same interface)."""
        tc, data = self.tc, self.data
        deg, clean = list(data.train_feats), list(data.train_clean_feats)
        if tc["include_clean"]:
            for c in dict.fromkeys(str(p) for p in data.train_clean_feats):
                deg.append(Path(c))
                clean.append(Path(c))
        deg, clean = weight_conditions(deg, clean, tc["condition_weights"] or {})
        if data.online is not None:  # made on the fly from the clean audio (specenh.train.online)
            from specenh.train.online import OnlinePairs

            return OnlinePairs(data.online, deg, max_frames=tc["crop_frames"], unpaired=bool(tc["unpaired"]),
                               seed=int(tc["seed"]), max_utts=tc["max_utts"])
        return PairedFeatDataset(deg, clean, max_frames=tc["crop_frames"], unpaired=bool(tc["unpaired"]),
                                 seed=int(tc["seed"]), max_utts=tc["max_utts"])

    def train_dataloader(self):
        tc = self.tc
        ds = self.train_pairs()
        # a random order first, so that equal lengths (most crops) are bucketed across conditions and
        # utterances rather than in dataset order
        perm = np.random.default_rng(int(tc["seed"])).permutation(len(ds)).tolist()
        batches = bucket([ds.frames[i] for i in perm], int(tc["batch_max_frames"]), int(tc["batch_size"]),
                         drop_last=self.world > 1)
        nw = int(tc["num_workers"])
        return DataLoader(EpochIndexed(Subset(ds, perm), ds.set_epoch, len(ds)),
                          batch_sampler=self.train_sampler(batches, len(ds)), collate_fn=collate_pairs,
                          num_workers=nw, persistent_workers=nw > 0)

    def validation_batches(self) -> list:
        """This rank's validation batches (whole utterances up to ``val_max_frames``), built once."""
        if self._val_batches is None:
            tc, data = self.tc, self.data
            vf = [Path(p) for p in data.valid_feats]
            self._val_batches = []
            if vf and int(tc["num_val_utts"]) > 0 and all((p / "feats.scp").is_file() for p in vf):
                per = max(1, math.ceil(int(tc["num_val_utts"]) / len(vf)))
                ds = PairedFeatDataset(vf, data.valid_clean_feats, max_frames=tc["val_max_frames"], unpaired=False,
                                       seed=int(tc["seed"]), max_utts=per)
                sampler = BucketBatchSampler(ds.frames, 10 ** 9, int(tc["val_batch_size"]), 0, rank=self.rank,
                                             world_size=self.world)
                self._val_batches = list(DataLoader(ds, batch_sampler=sampler, collate_fn=collate_pairs,
                                                    num_workers=0))
        return self._val_batches

    def on_fit_start(self):
        if self.asr is not None:
            self.asr.to(self.device)

    # -------------------------------------------------------------- losses
    def features(self, spec_n: torch.Tensor, lengths: torch.Tensor, source: str):
        """Feature sets of a normalised spectrogram [B, 1, H, T] for the contextual / feature-matching
        losses: list of (features [B, C, N], lengths [B]); from log-mel patches or ASR encoder layers."""
        lc = self.lc
        if source == "mel":
            return [logmel_patches(spec_n, lengths, lc["cx_patch_bands"], int(lc["cx_patch_frames"]),
                                   lc["cx_patch_band_stride"], int(lc["cx_patch_frame_stride"]))]
        if self.asr is None:
            raise RuntimeError("the contextual/feature-matching loss on ASR features needs the frozen ASR "
                               "(--asr-model); or set loss.cx_source=mel")
        feats, flen = self.asr.encoder_features(self.enhancer.denormalise(spec_n, lengths), lengths,
                                                list(lc["cx_layers"]))
        return [(f, flen) for f in feats]

    def cx(self, gen, tgt, max_positions: int | None) -> torch.Tensor:
        h = float(self.lc["cx_h"])
        return sum(contextual_loss(g, t, h=h, x_lengths=gl, y_lengths=tl, max_positions=max_positions)
                   for (g, gl), (t, tl) in zip(gen, tgt)) / len(gen)

    def targets(self, keys: list[str]) -> list[list[int]]:
        """Token ids of the batch's utterances (keys ``<pair source>:<utterance id>``)."""
        out = []
        for k in keys:
            u = k.split(":", 1)[1]
            if u not in self._tokens:
                raise KeyError(f"loss.ctc_weight > 0: utterance {u!r} has no transcript in the clean feature dirs")
            out.append(self._tokens[u])
        return out

    def feature_losses(self, fake_n, xl, y_n, yl, keys: list[str] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(contextual loss, feature-matching L1, CTC loss) of the enhanced batch: the first two
        against the clean features, CTC against the transcripts of ``keys`` (zero when off). With CTC
        on, the enhanced batch goes through the frozen ASR once for all three."""
        lc = self.lc
        zero = fake_n.new_zeros(()).float()
        use_cx = float(lc["cx_weight"]) > 0 and lc["cx_source"] != "none"
        use_fm = float(lc["fm_weight"]) > 0 and self.paired
        cx = fm = ctc = zero
        asr_cx = use_cx and lc["cx_source"] == "asr"
        gen = tgt = encoded = None  # enhanced / clean ASR feature sets, encoder output
        if self.use_ctc:  # one pass: the cx/fm layers and the encoder output
            layers = list(lc["cx_layers"]) if asr_cx or use_fm else []
            feats, flen, enc = self.asr.encoder_features(self.enhancer.denormalise(fake_n, xl), xl, layers,
                                                         return_encoded=True)
            gen, encoded = [(f, flen) for f in feats], (enc, flen)
        if use_cx:
            g = gen if asr_cx and gen is not None else self.features(fake_n, xl, lc["cx_source"])
            with torch.no_grad():
                tgt = self.features(y_n, yl, lc["cx_source"])
            cx = self.cx(g, tgt, int(lc["cx_max_positions"]))
            if asr_cx:
                gen = g
        if use_fm:
            if not gen:
                gen = self.features(fake_n, xl, "asr")
            if not asr_cx:
                with torch.no_grad():
                    tgt = self.features(y_n, yl, "asr")
            fm = self.fm(gen, tgt)
        if encoded is not None:
            ctc = self.asr.asr_loss(*encoded, self.targets(list(keys or [])))
        return cx, fm, ctc

    @staticmethod
    def fm(gen, tgt) -> torch.Tensor:
        """Feature-matching L1 between two lists of (features [B, C, N], lengths [B]), over the frames
        valid in both, averaged over the layers."""
        return sum(masked_l1(g[..., : t.shape[-1]].float(), t[..., : g.shape[-1]].float(), torch.minimum(gl, tl))
                   for (g, gl), (t, tl) in zip(gen, tgt)) / len(gen)

    def consistency_reference(self, x_n: torch.Tensor, y_n: torch.Tensor) -> torch.Tensor:
        """What the output's coarse bands must stay close to: the degraded input (the paper) or, with
        ``consistency_target: clean`` in paired mode, the clean utterance ([B, 1, H, T] normalised).
        Anchoring to the input keeps additive noise in the coarse bands; the clean target does not."""
        if self.lc["consistency_target"] == "clean" and self.paired:
            return y_n
        return x_n

    # -------------------------------------------------------------- training
    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        lc, tc = self.lc, self.tc
        fe, disc = self.enhancer, self.disc
        x, xl, y, yl = batch["x"], batch["x_len"], batch["y"], batch["y_len"]
        b = x.shape[0]
        x_n, y_n = fe.normalise(x, xl), fe.normalise(y, yl)
        step = self.steps_done - 1  # this batch's index (the harness counted it before the step)

        # one generator pass serves both steps (detached for D)
        fake_n = fe.generate(x_n, xl, update_w_avg=True)

        # ---- discriminator step
        self.toggle_optimizer(opt_d)
        r1_every = int(lc["r1_every"])
        do_r1 = float(lc["r1_gamma"]) > 0 and r1_every > 0 and step % r1_every == 0
        d_real = disc(y_n, yl)
        d_fake = disc(fake_n.detach(), xl)
        d_loss = hinge_d_loss(d_real, d_fake)
        if do_r1:
            with torch.autocast(self.device.type, enabled=False):
                real = y_n.detach().float().requires_grad_(True)
                r1 = r1_penalty(real, disc(real, yl))
            d_loss = d_loss + float(lc["r1_gamma"]) / 2 * r1 * r1_every
            self.log("train/r1", r1.detach(), batch_size=b)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        if float(tc["grad_clip"]) > 0:
            self.clip_gradients(opt_d, gradient_clip_val=float(tc["grad_clip"]), gradient_clip_algorithm="norm")
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # ---- generator step
        self.toggle_optimizer(opt_g)
        g_adv = g_adv_loss(disc(fake_n, xl))
        cons = consistency_loss(self.consistency_reference(x_n, y_n), fake_n, xl, int(lc["consistency_bins"]))
        cx, fm, ctc = self.feature_losses(fake_n, xl, y_n, yl, batch.get("keys"))
        g_loss = float(lc["adv_weight"]) * g_adv + float(lc["consistency_weight"]) * cons \
            + float(lc["cx_weight"]) * cx + float(lc["fm_weight"]) * fm
        if self.use_ctc:
            g_loss = g_loss + float(lc["ctc_weight"]) * ctc
        l1 = None
        if float(lc["l1_weight"]) > 0 and self.paired:
            l1 = masked_l1(fake_n[:, 0], y_n[:, 0], xl)
            g_loss = g_loss + float(lc["l1_weight"]) * l1
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        if float(tc["grad_clip"]) > 0:
            self.clip_gradients(opt_g, gradient_clip_val=float(tc["grad_clip"]), gradient_clip_algorithm="norm")
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        logs = {"train/d_loss": d_loss, "train/g_loss": g_loss, "train/g_adv": g_adv, "train/consistency": cons,
                "train/d_real": d_real.mean(), "train/d_fake": d_fake.mean()}
        if float(lc["cx_weight"]) > 0 and lc["cx_source"] != "none":
            logs["train/cx"] = cx
        if float(lc["fm_weight"]) > 0:
            logs["train/fm"] = fm
        if l1 is not None:
            logs["train/l1"] = l1
        if self.use_ctc:
            logs["train/ctc"] = ctc
        logs = {k: v.detach().float() for k, v in logs.items()}
        self.log_dict(logs, batch_size=b)
        self.log_dict({"d": logs["train/d_loss"], "g": logs["train/g_loss"]}, prog_bar=True,
                      logger=False, batch_size=b)
        self._logs = {k: float(v) for k, v in logs.items()}
        every = int(tc["image_every_steps"])
        if every > 0 and step % every == 0:
            self.log_images("train", x_n[0, 0, :, : xl[0]], fake_n[0, 0, :, : xl[0]], y_n[0, 0, :, : yl[0]])

    def line(self, step: int) -> str:
        return " ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in self._logs.items())

    # -------------------------------------------------------------- validation
    def validate(self) -> dict[str, float]:
        """Mean validation metrics over this run's validation utterances (all ranks)."""
        sums: dict[str, float] = {}
        n = 0
        for i, batch in enumerate(self.validation_batches()):
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            logs = self.validation_metrics(batch, images=i == 0)
            b = int(batch["x"].shape[0])
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
            n += b
        return self.mean_over_ranks(sums, n) if sums else {}

    def validation_metrics(self, batch, images: bool = False) -> dict[str, torch.Tensor]:
        fe = self.enhancer
        x, xl, y, yl = batch["x"], batch["x_len"], batch["y"], batch["y_len"]
        x_n, y_n = fe.normalise(x, xl), fe.normalise(y, yl)
        out_n = fe.generate(x_n, xl)  # eval mode: fixed latent, truncation psi, zero noise
        enh = fe.denormalise(out_n, xl)
        y_m = fe.denormalise(y_n, yl)
        x_m = fe.denormalise(x_n, xl)
        logs = {"val/l1_enhanced": masked_l1(enh, y_m, xl), "val/l1_input": masked_l1(x_m, y_m, xl),
                "val/consistency": consistency_loss(self.consistency_reference(x_n, y_n), out_n, xl,
                                                    int(self.lc["consistency_bins"]))}
        src = self.lc["cx_source"]
        feats = {}  # (source, which) -> feature sets, each computed once

        def get(source: str, which: str):
            if (source, which) not in feats:
                spec, ln = {"clean": (y_n, yl), "enhanced": (out_n, xl), "input": (x_n, xl)}[which]
                feats[source, which] = self.features(spec, ln, source)
            return feats[source, which]
        if src == "mel" or (src == "asr" and self.asr is not None):
            logs["val/cx_enhanced"] = self.cx(get(src, "enhanced"), get(src, "clean"), None)
            logs["val/cx_input"] = self.cx(get(src, "input"), get(src, "clean"), None)
        if self.asr is not None:  # the frozen ASR's view (validation is always paired): feature-matching L1
            for which in ("enhanced", "input"):
                logs[f"val/fm_{which}"] = self.fm(get("asr", which), get("asr", "clean"))
        if images:
            self.log_images("val", x_n[0, 0, :, : xl[0]], out_n[0, 0, :, : xl[0]], y_n[0, 0, :, : yl[0]])
        return logs

    def log_images(self, tag: str, inp, enh, clean) -> None:
        if not self.trainer.is_global_zero:
            return
        for lg in self.loggers:
            exp = getattr(lg, "experiment", None)
            if hasattr(exp, "add_image"):
                exp.add_image(f"{tag}/input_enhanced_clean", _spec_image([inp, enh, clean]), self.steps_done)

    def configure_optimizers(self):
        betas = tuple(float(v) for v in self.tc["betas"])
        opt_g = torch.optim.Adam(self.enhancer.parameters(), lr=float(self.tc["lr_g"]), betas=betas)
        opt_d = torch.optim.Adam(self.disc.parameters(), lr=float(self.tc["lr_d"]), betas=betas)
        return [opt_g, opt_d]



def _ddp_strategy(tc: dict[str, Any]):
    n_dev = tc["devices"] if isinstance(tc["devices"], int) else 2
    if int(tc["num_nodes"]) > 1 or n_dev != 1:
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(find_unused_parameters=True)  # G and D take turns: each backward reduces one net
    return tc["strategy"]


def _frozen_asr(cfg: dict[str, Any], data: FrontendData):
    if not needs_asr(cfg):
        return None
    if not data.asr_model:
        raise ValueError("stylegan: loss.cx_source=asr (or fm_weight > 0) needs the frozen ASR (--asr-model); "
                         "set loss.cx_source=mel or loss.cx_weight=0 to train without it")
    from specenh.asr.base import load_asr

    asr = load_asr(data.asr_model)
    n = asr.num_layers
    bad = [l for l in cfg["loss"]["cx_layers"] if not -n <= int(l) < n]
    if bad:
        raise ValueError(f"loss.cx_layers {bad} out of range for an encoder of {n} layers")
    return asr


@register_trainer("stylegan", resolve=lambda cfg: resolve_config(copy.deepcopy(dict(cfg))))
def train_stylegan(cfg: dict[str, Any], data: FrontendData, exp_dir: Path) -> Path:
    """Train the StyleGAN enhancer for ``train.max_steps`` steps; returns ``exp_dir/model.pt``. Resumes
    from ``exp_dir/checkpoints/last.ckpt`` when present."""
    import lightning.pytorch as pl

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(copy.deepcopy(dict(cfg)))
    tc = cfg["train"]
    if tc["unpaired"] and (float(cfg["loss"]["fm_weight"]) > 0 or float(cfg["loss"]["l1_weight"]) > 0
                           or cfg["loss"]["consistency_target"] == "clean"):
        log.warning("unpaired mode: feature matching, L1 to clean and consistency to clean need aligned pairs; "
                    "they are off (consistency is to the input)")
    data = restrict_conditions(data, cfg["conditions"])
    save_config(cfg, exp_dir / "config.yaml")
    set_threads(tc["num_threads"])
    pl.seed_everything(int(tc["seed"]), workers=True, verbose=False)
    asr = _frozen_asr(cfg, data)
    if tc["max_steps"] is None:  # an epoch budget: count the batches of one epoch
        tmp = StyleGANModule(cfg, data, None, 0)
        ds = tmp.train_pairs()
        n_batches = len(bucket(ds.frames, int(tc["batch_max_frames"]), int(tc["batch_size"])))
        total = int(tc["max_epochs"]) * n_batches
    else:
        total = int(tc["max_steps"])
    module = StyleGANModule(cfg, data, asr, total)
    n_g = sum(p.numel() for p in module.enhancer.parameters())
    n_d = sum(p.numel() for p in module.disc.parameters())
    log.info("stylegan: generator+mapping %.3f M parameters, discriminator %.3f M; %s mode, contextual loss on %s; "
             "%d steps, seed %d", n_g / 1e6, n_d / 1e6, "unpaired" if tc["unpaired"] else "paired",
             cfg["loss"]["cx_source"], total, int(tc["seed"]))
    trainer, res = fit(module, exp_dir, config=cfg, steps_per_batch=2, strategy=_ddp_strategy(tc), automatic_clip=False)
    out = exp_dir / "model.pt"
    if res.already_done and out.is_file() and (exp_dir / "train_info.json").is_file():
        log.info("%s: already trained to its budget (%d steps); kept as it is", out, res.total_steps)
        return out
    if trainer.is_global_zero:
        selected_weights(module)
        module.enhancer.cpu().save(out)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        metrics.update(module.last_val)
        write_train_info(exp_dir, module, res, generator_params=n_g, discriminator_params=n_d,
                         unpaired=bool(tc["unpaired"]), cx_source=cfg["loss"]["cx_source"], metrics=metrics)
        log.info("saved %s after %d steps", out, res.steps)
    return out
