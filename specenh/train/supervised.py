"""Stage 4 for the supervised front-ends (``mask``, ``inpaint``, ``bwe`` and any trainable front-end without
a trainer of its own): one Lightning module and one training function (:func:`specenh.train.trainer_for`
binds it to the front-end).

Config (every key has a default here; ``conf/frontend/<name>.yaml`` lists them all)::

    conditions: [noise_*]     # fnmatch patterns on the condition dirs (<set>_<cond>) to train on
    model: {...}              # the front-end's constructor arguments
    loss: {mag_weight, complex_weight}          # mask only (compressed spectral loss)
    augment: {cutoff_prob, cutoffs_hz, jitter_bands}   # bwe only: simulated extra cut-offs
    data: {max_frames, batch_size, batch_max_frames, max_utts, num_val_utts, log_guard}
    train: {lr, weight_decay, betas} + the harness's keys (specenh.train.harness.TRAIN_DEFAULTS: seed,
            max_steps, warmup_steps, min_lr_ratio, grad_clip, val_every_steps, ckpt_every_steps, ...)

Data: log-mel pairs (:class:`~specenh.train.data.PairedFeatDataset`; inpaint, bwe) or waveform pairs
(:class:`~specenh.train.data.PairedWaveDataset`; mask), random crops of ``max_frames`` 10-ms frames,
length-bucketed batches drawn as a function of the step (:class:`~specenh.train.harness.StepBatchSampler`,
given the DDP rank and world size: ``use_distributed_sampler=False``; validation buckets with
:class:`~specenh.train.data.BucketBatchSampler`). Log-mel clean targets are scaled by ``utt2gain`` like the
waveform targets (``log(g^2 (e^c - guard) + guard)``: exact), so a pair differs only by the
degradation. The oracle-mask inpainter also gets the hole masks projected on the mel bands.

Loss and augmentation are the front-end's own hooks (:meth:`FrontEnd.training_loss`: L1 on log-mel over valid
frames by default, the compressed spectral loss for ``mask``; :meth:`FrontEnd.augment_training_input`: bwe's
simulated cut-offs), and so are its default conditions (``default_conditions``): this module has no branch per
front-end. AdamW, linear warm-up then cosine to ``min_lr_ratio`` over
the ``max_steps`` budget. Seeding, the step-indexed data stream, checkpoints / resume, validation every
``val_every_steps``, selection, logs and ``train_info.json`` come from :mod:`specenh.train.harness`.
Writes ``exp_dir/model.pt`` (:meth:`FrontEnd.save`).
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from specenh.frontends.base import FrontEnd, build
from specenh.train import FrontendData, select_conditions
from specenh.train.data import BucketBatchSampler, PairedFeatDataset, PairedWaveDataset, collate_waves
from specenh.train.harness import (EpochIndexed, HarnessModule, bucket, budget_steps, check_sections, fit,
                                   resolve_train, selected_weights, set_threads, warmup_cosine, write_train_info)
from specenh.utils.config import merge, save_config

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "conditions": None,
    "model": {},
    "loss": {"mag_weight": 0.887, "complex_weight": 0.113},
    "augment": {"cutoff_prob": 0.0, "cutoffs_hz": [1000, 2000, 4000], "jitter_bands": 2},
    "data": {"max_frames": 300, "batch_size": 16, "batch_max_frames": 4800, "max_utts": None,
             "num_val_utts": 64, "log_guard": 2.0**-24},
    # the trainer's own train keys; the shared ones (seed, max_steps, ...) are the harness's
    "train": {"lr": 1e-3, "weight_decay": 1e-2, "betas": [0.9, 0.98], "warmup_steps": 200, "grad_clip": 5.0,
              "max_steps": 3000, "log_every_steps": 100, "num_threads": 2},
}


def resolve_config(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Defaults under ``cfg`` (unknown keys are errors); ``conditions`` defaults per front-end."""
    check_sections({k: v for k, v in cfg.items() if k != "train"}, {k: v for k, v in DEFAULTS.items() if k != "train"},
                   name, ("data", "loss", "augment"))
    train = resolve_train(cfg.get("train"), DEFAULTS["train"], name)
    out = merge({k: v for k, v in DEFAULTS.items() if k != "train"}, {k: v for k, v in cfg.items() if k != "train"})
    out["train"] = train
    if not out.get("conditions"):  # the front-end's own default (FrontEnd.default_conditions)
        from specenh.frontends.base import frontend_class

        out["conditions"] = list(frontend_class(name).default_conditions)
    if isinstance(out["conditions"], str):
        out["conditions"] = out["conditions"].split()
    return out


# ---------------------------------------------------------------------------- data
def _read_gains(data_dir: Path | None) -> dict[str, float]:
    from specenh.data.kaldi import read_kv

    if data_dir is None or not (Path(data_dir) / "utt2gain").is_file():
        return {}
    return {u: float(g) for u, g in read_kv(Path(data_dir) / "utt2gain").items()}


def gain_scaled(y: np.ndarray, g: float, guard: float) -> np.ndarray:
    """Clean log-mel [T, D] of the audio scaled by ``g``: ``log(g^2 (e^y - guard) + guard)`` (exact)."""
    if g == 1.0:
        return y
    power = np.maximum(np.exp(y.astype(np.float64)) - guard, 0.0)
    return np.log(g * g * power + guard).astype(np.float32)


class FeatPairs(PairedFeatDataset):
    """Log-mel pairs with clean targets scaled by ``utt2gain`` and (optionally) mel hole masks.

    Items: (degraded [T, D], clean [T, D], key, mel mask [T, D] bool or None).
    """

    def __init__(self, degraded_dirs, clean_dirs, *, data_dirs: Sequence[Path | None], with_masks: bool = False,
                 log_guard: float = 2.0**-24, **kw: Any):
        super().__init__(degraded_dirs, clean_dirs, **kw)
        self.gains = [_read_gains(d) for d in data_dirs]
        self.guard = float(log_guard)
        self.mask_dirs: list[Path] | None = None
        if with_masks:
            self.mask_dirs = []
            for fd, dd in zip(degraded_dirs, data_dirs):
                cands = [Path(fd)] + ([Path(dd)] if dd is not None else [])
                hit = next((c for c in cands if (c / "holes_mask.scp").is_file()), None)
                if hit is None:
                    raise FileNotFoundError(f"oracle-mask inpainting needs holes_mask.scp in {fd} or {dd} "
                                            f"(train only on holes conditions)")
                self.mask_dirs.append(hit)
            from specenh.features.logmel import FeatureConfig, mel_filterbank

            self.fb = mel_filterbank(FeatureConfig())

    def __getitem__(self, i: int):
        from specenh.features.io import load_feat
        from specenh.frontends.inpaint import load_mel_masks

        k, u = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = load_feat(self.deg[k], u)
        y = load_feat(self.clean[k], u)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"utterance {u!r}: degraded and clean features differ in length "
                             f"({x.shape[0]} vs {y.shape[0]} frames)")
        y = gain_scaled(y, self.gains[k].get(u, 1.0), self.guard)
        m = None
        if self.mask_dirs is not None:
            m = load_mel_masks(self.mask_dirs[k], [u], {u: x.shape[0]}, fb=self.fb)[0].numpy().T  # [T, D]
        x, s = self._crop(x, rng)
        y = y[s : s + x.shape[0]]
        if m is not None:
            m = m[s : s + x.shape[0]]
        return x, y, f"{k}:{u}", m


def collate_feat_items(items: list) -> dict[str, Any]:
    from specenh.features.io import pad_batch

    x, xl = pad_batch([a[0] for a in items])
    y, _ = pad_batch([a[1] for a in items])
    out = {"x": x, "x_len": xl, "y": y, "keys": [a[2] for a in items]}
    if items[0][3] is not None:
        m, _ = pad_batch([a[3].astype(np.float32) for a in items])
        out["mask"] = m > 0.5
    return out


def _wave_frames(data_dir: Path, utts: Sequence[str], hop_s: float) -> dict[str, int]:
    from specenh.data.kaldi import read_kv

    if (data_dir / "utt2dur").is_file():
        dur = {u: float(v) for u, v in read_kv(data_dir / "utt2dur").items()}
        if all(u in dur for u in utts):
            return {u: max(1, int(dur[u] / hop_s)) for u in utts}
    import soundfile as sf

    wav = read_kv(data_dir / "wav.scp")
    return {u: max(1, int(sf.info(wav[u]).duration / hop_s)) for u in utts}


class _Source:
    """One split (train or valid) of a front-end's data: dataset, item lengths, collate function."""

    def __init__(self, dataset, lengths: list[int], collate, parts: list):
        self.dataset, self.lengths, self.collate, self.parts = dataset, lengths, collate, parts

    def set_epoch(self, epoch: int) -> None:
        for p in self.parts:
            p.set_epoch(epoch)


def build_source(fe: FrontEnd, cfg: dict[str, Any], data: FrontendData, split: str, *, seed: int,
                 max_utts: int | None) -> _Source | None:
    """The dataset of ``split`` ('train' | 'valid') restricted to the configured conditions."""
    dcfg = cfg["data"]
    feats = list(data.train_feats if split == "train" else data.valid_feats)
    clean = list(data.train_clean_feats if split == "train" else data.valid_clean_feats)
    ddirs = list(data.train_data_dirs if split == "train" else data.valid_data_dirs)
    wave = fe.domain == "wave"
    names = ddirs if wave else feats
    idx = select_conditions(names, cfg["conditions"])
    if not idx:
        if split == "train":
            raise ValueError(f"front-end {fe.name!r}: none of the training conditions "
                             f"{[Path(n).name for n in names]} matches conditions={cfg['conditions']}; "
                             f"add a matching condition to --train_conditions or override 'conditions'")
        return None
    if split == "train" and data.online is not None:  # made on the fly from the clean audio
        return _online_source(fe, cfg, data, [names[i] for i in idx], seed=seed, max_utts=max_utts)
    missing = [str(names[i]) for i in idx if not Path(names[i]).is_dir()]
    if missing:
        if split == "train":
            raise FileNotFoundError(f"front-end {fe.name!r}: training dirs not found: {missing}")
        log.warning("%s: validation dirs not found, skipped: %s", fe.name, missing)
        idx = [i for i in idx if Path(names[i]).is_dir()]
        if not idx:
            return None
    per_dir = None if max_utts is None else max(1, int(max_utts) // len(idx))
    max_frames = int(dcfg["max_frames"]) if dcfg["max_frames"] else None
    log.info("%s %s data: %s", fe.name, split, [Path(names[i]).name for i in idx])
    if wave:
        sr = int(fe.config.get("sample_rate", 16000))
        hop_s = float(fe.config.get("hop_ms", 10.0)) * 1e-3
        parts, lengths = [], []
        for i in idx:
            d = Path(ddirs[i])
            max_samples = int(max_frames * hop_s * sr) if max_frames else None
            ds = PairedWaveDataset([d], sample_rate=sr, max_samples=max_samples, seed=seed + i, max_utts=per_dir)
            n2f = _wave_frames(d, [it[0] for it in ds.items], hop_s)
            lengths += [min(n2f[it[0]], max_frames) if max_frames else n2f[it[0]] for it in ds.items]
            parts.append(ds)
        return _Source(ConcatDataset(parts), lengths, collate_waves, parts)
    with_masks = bool(getattr(fe, "needs_mask", False))
    ds = FeatPairs([feats[i] for i in idx], [clean[i] for i in idx],
                   data_dirs=[Path(ddirs[i]) if i < len(ddirs) else None for i in idx], with_masks=with_masks,
                   log_guard=float(dcfg["log_guard"]), max_frames=max_frames, seed=seed, max_utts=per_dir)
    return _Source(ds, list(ds.frames), collate_feat_items, [ds])


class OnlineFeatPairs(Dataset):
    """:class:`FeatPairs`'s items made on the fly: (degraded [T, D], gain-scaled clean [T, D], key, mel
    hole mask [T, D] bool or None), from an :class:`~specenh.train.online.OnlinePairs` (log-mel)."""

    def __init__(self, pairs, *, with_masks: bool = False, log_guard: float = 2.0**-24):
        self.pairs, self.with_masks, self.guard = pairs, with_masks, float(log_guard)
        self.frames = pairs.frames
        self.fb = None
        if with_masks:
            from specenh.features.logmel import mel_filterbank

            self.fb = mel_filterbank(pairs.spec.feature_config)

    def set_epoch(self, epoch: int) -> None:
        self.pairs.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        it = self.pairs.item(i)
        x, y = it["x"], gain_scaled(it["y"], it["gain"], self.guard)
        m = None
        if self.with_masks:
            from specenh.frontends.inpaint import stft_mask_to_mel

            if "holes_mask" not in it["aux"]:
                raise ValueError(f"oracle-mask inpainting needs a holes condition; {it['source']!r} has no hole mask")
            mel = stft_mask_to_mel(it["aux"]["holes_mask"], self.fb, 0.5)  # [D, T + 1] -> cut to the feature frames
            t0 = it["start"]
            m = mel[:, t0 : t0 + x.shape[0]].numpy().T
            if m.shape[0] < x.shape[0]:
                m = np.pad(m, ((0, x.shape[0] - m.shape[0]), (0, 0)))
        return x, y, it["key"], m


def _online_source(fe: FrontEnd, cfg: dict[str, Any], data: FrontendData, names: list, *, seed: int,
                   max_utts: int | None) -> _Source:
    """The training split made on the fly (:mod:`specenh.train.online`), item for item what
    :func:`build_source` reads from stage 2/3's outputs at epoch 0."""
    from specenh.train.online import OnlinePairs

    dcfg = cfg["data"]
    per_dir = None if max_utts is None else max(1, int(max_utts) // (1 if data.online.mix else len(names)))
    max_frames = int(dcfg["max_frames"]) if dcfg["max_frames"] else None
    log.info("%s train data (online, %s): %s", fe.name, "mixed" if data.online.mix else "per condition",
             [Path(n).name for n in names])
    if fe.domain == "wave":
        sr = int(fe.config.get("sample_rate", 16000))
        hop_s = float(fe.config.get("hop_ms", 10.0)) * 1e-3
        max_samples = int(max_frames * hop_s * sr) if max_frames else None
        groups = [[n] for n in names] if not data.online.mix else [names]
        parts, lengths = [], []
        for i, grp in enumerate(groups):  # one dataset per dir, seeded seed + i, as build_source's
            ds = OnlinePairs(data.online, grp, seed=seed + i, max_utts=per_dir, domain="wave",
                             max_samples=max_samples, sample_rate=sr)
            for _, u in ds.items:
                t = max(1, int(ds.num_samples[u] / sr / hop_s))
                lengths.append(min(t, max_frames) if max_frames else t)
            parts.append(ds)
        return _Source(ConcatDataset(parts), lengths, collate_waves, parts)
    pairs = OnlinePairs(data.online, names, max_frames=max_frames, seed=seed, max_utts=per_dir)
    ds = OnlineFeatPairs(pairs, with_masks=bool(getattr(fe, "needs_mask", False)), log_guard=float(dcfg["log_guard"]))
    return _Source(ds, list(ds.frames), collate_feat_items, [ds])


# ---------------------------------------------------------------------------- module
class SupervisedModule(HarnessModule):
    """A front-end trained on (degraded, clean) pairs with one optimizer (AdamW, warm-up + cosine)."""

    def __init__(self, fe: FrontEnd, cfg: dict[str, Any], train_src: _Source, valid_src: _Source | None,
                 total_steps: int):
        super().__init__(cfg["train"], total_steps)
        self.frontend = fe
        self.cfg, self.train_src, self.valid_src = cfg, train_src, valid_src
        self._audio_s = 0.0
        self._val_batches: list | None = None
        self._last_loss = float("nan")

    def selected_module(self) -> torch.nn.Module:
        return self.frontend

    # -------------------------------------------------------- data
    def train_dataloader(self) -> DataLoader:
        dcfg, src = self.cfg["data"], self.train_src
        # each rank takes every world_size-th batch of one shared bucketing; batch s is a function of s
        batches = bucket(src.lengths, int(dcfg["batch_max_frames"]), int(dcfg["batch_size"]))
        nw = int(self.tc["num_workers"])
        return DataLoader(EpochIndexed(src.dataset, src.set_epoch, len(src.lengths)),
                          batch_sampler=self.train_sampler(batches, len(src.lengths)), collate_fn=src.collate,
                          num_workers=nw, persistent_workers=nw > 0)

    def _validation_batches(self) -> list:
        """This rank's share of the validation items, bucketed (crops fixed: epoch 0)."""
        if self._val_batches is None:
            src, dcfg = self.valid_src, self.cfg["data"]
            idx = list(range(self.rank, len(src.lengths), self.world))
            ds = Subset(src.dataset, idx)
            sampler = BucketBatchSampler([src.lengths[i] for i in idx], int(dcfg["batch_max_frames"]),
                                         int(dcfg["batch_size"]), seed=int(self.tc["seed"]))
            self._val_batches = list(DataLoader(ds, batch_sampler=sampler, collate_fn=src.collate, num_workers=0))
        return self._val_batches

    def validate(self) -> dict[str, float]:
        if self.valid_src is None:
            return {}
        sums: dict[str, float] = {}
        n = 0
        for batch in self._validation_batches():
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            b = int(batch["x"].shape[0])
            for k, v in self.compute_loss(batch, False).items():
                sums[f"val_{k}"] = sums.get(f"val_{k}", 0.0) + float(v) * b
            n += b
        return self.mean_over_ranks(sums, n)

    # -------------------------------------------------------- loss
    def compute_loss(self, batch, train: bool) -> dict[str, torch.Tensor]:
        """The front-end's own loss (:meth:`FrontEnd.training_loss`) of its output on the (in training possibly
        augmented: :meth:`FrontEnd.augment_training_input`) input against the clean target."""
        x, xl, y = batch["x"], batch["x_len"], batch["y"]
        fe = self.frontend
        if train:
            # seeded by (seed, rank, step): reproducible and the same after a resume
            g = torch.Generator().manual_seed((int(self.tc["seed"]) * 1000 + self.rank) * 10_000_019 + self.steps_done)
            x = fe.augment_training_input(x, y, g, self.cfg["augment"])
        kw = {"mask": batch["mask"]} if "mask" in batch else {}
        est, _ = fe(x, xl, **kw)
        return fe.training_loss(est, y, xl, self.cfg["loss"])

    def training_step(self, batch, _idx):
        out = self.compute_loss(batch, True)
        bs = batch["x"].shape[0]
        for k, v in out.items():
            self.log(f"train_{k}", v.detach(), prog_bar=k == "loss", on_step=True, batch_size=bs)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, batch_size=bs)
        fe = self.frontend
        hop = (1.0 / int(fe.config.get("sample_rate", 16000))) if fe.domain == "wave" else 0.01
        self._audio_s += float(batch["x_len"].sum()) * hop
        self._last_loss = float(out["loss"].detach())
        return out["loss"]

    def line(self, step: int) -> str:
        return f"loss {self._last_loss:.4f} lr {self.trainer.optimizers[0].param_groups[0]['lr']:.2e}"

    def configure_optimizers(self):
        tc = self.tc
        opt = torch.optim.AdamW(self.frontend.parameters(), lr=float(tc["lr"]),
                                betas=tuple(float(b) for b in tc["betas"]), weight_decay=float(tc["weight_decay"]))
        return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, tc, self.total_steps)}


# ---------------------------------------------------------------------------- entry point
def train_supervised(name: str, cfg: dict[str, Any], data: FrontendData, exp_dir: str | Path) -> Path:
    """Train front-end ``name`` on degraded/clean pairs for ``train.max_steps`` steps; returns
    ``exp_dir/model.pt``. Resumes from ``exp_dir/checkpoints/last.ckpt`` when present."""
    import lightning.pytorch as pl

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(name, copy.deepcopy(dict(cfg)))
    tcfg, dcfg = cfg["train"], cfg["data"]
    save_config(cfg, exp_dir / "config.yaml")  # the resolved config (defaults filled in)
    set_threads(tcfg["num_threads"])
    seed = int(tcfg["seed"])
    pl.seed_everything(seed, workers=True, verbose=False)
    fe = build({"name": name, **dict(cfg["model"])})
    if not fe.trainable:
        raise ValueError(f"front-end {name!r} is not trainable")
    n_params = sum(p.numel() for p in fe.parameters())
    log.info("front-end %s: %.3f M parameters, config %s", name, n_params / 1e6, fe.config)

    train_src = build_source(fe, cfg, data, "train", seed=seed, max_utts=dcfg["max_utts"])
    n_val = int(dcfg["num_val_utts"] or 0)
    valid_src = build_source(fe, cfg, data, "valid", seed=seed + 1000, max_utts=n_val) if n_val > 0 else None
    if valid_src is not None:
        valid_src.set_epoch(0)
    n_batches = len(bucket(train_src.lengths, int(dcfg["batch_max_frames"]), int(dcfg["batch_size"])))
    total = budget_steps(tcfg, n_batches)
    log.info("%s: %d training items (%.2f h after cropping), %d batches/epoch, %d steps (%.1f epochs), seed %d",
             name, len(train_src.lengths), sum(train_src.lengths) / 360000, n_batches, total, total / n_batches, seed)
    module = SupervisedModule(fe, cfg, train_src, valid_src, total)
    trainer, res = fit(module, exp_dir, config=cfg)
    out = exp_dir / "model.pt"
    if res.already_done and out.is_file() and (exp_dir / "train_info.json").is_file():
        log.info("%s: already trained to its budget (%d steps); kept as it is", out, res.total_steps)
        return out
    if trainer.is_global_zero:
        selected_weights(module)
        fe.cpu().eval().save(out)
        info = write_train_info(exp_dir, module, res, frontend=name, params=n_params,
                                audio_seconds_this_run=round(module._audio_s, 1), conditions=cfg["conditions"],
                                val_loss=module.last_val.get("val_loss", float("nan")),
                                train_items=len(train_src.lengths), batches_per_epoch=n_batches,
                                world_size=int(trainer.world_size))
        log.info("saved %s: %s", out, info)
    return out

