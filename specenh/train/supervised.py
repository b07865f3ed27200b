"""Stage 4 for the supervised baselines ``mask``, ``inpaint`` and ``bwe``: one Lightning module and
one training function shared by the three (registered with :func:`register_trainer`).

Config (every key has a default here; ``conf/frontend/<name>.yaml`` lists them all)::

    conditions: [noise_*]     # fnmatch patterns on the condition dirs (<set>_<cond>) to train on
    model: {...}              # the front-end's constructor arguments
    loss: {mag_weight, complex_weight}          # mask only (compressed spectral loss)
    augment: {cutoff_prob, cutoffs_hz, jitter_bands}   # bwe only: simulated extra cut-offs
    data: {max_frames, batch_size, batch_max_frames, max_utts, num_val_utts, num_workers, log_guard}
    train: {seed, lr, weight_decay, betas, warmup_steps, min_lr_ratio, anneal_by_time, grad_clip, max_minutes,
            max_epochs, max_steps, val_every_n_steps, ckpt_every_n_steps, log_every_n_steps, precision,
            accelerator, devices, num_nodes, strategy, num_threads}

Data: log-mel pairs (:class:`~specenh.train.data.PairedFeatDataset`; inpaint, bwe) or waveform pairs
(:class:`~specenh.train.data.PairedWaveDataset`; mask), random crops of ``max_frames`` 10-ms frames,
length-bucketed batches (:class:`~specenh.train.data.BucketBatchSampler`, given the DDP rank and world
size: ``use_distributed_sampler=False``). Log-mel clean targets are scaled by ``utt2gain`` like the
waveform targets (``log(g^2 (e^c - guard) + guard)``: exact), so a pair differs only by the
degradation. The oracle-mask inpainter also gets the hole masks projected on the mel bands.

Loss: L1 on log-mel over valid frames (log-mel front-ends); the compressed spectral loss of
:mod:`specenh.frontends.mask` for ``mask``. AdamW, linear warm-up then cosine to ``min_lr_ratio``,
gradient clipping, precision from the config, ``max_minutes`` wall-clock budget (Lightning's timer,
kept across resumes; with ``anneal_by_time`` the cosine follows whichever of ``max_steps`` and
``max_minutes`` runs out first, so a slow machine still ends training at a low learning rate),
checkpoints in ``exp_dir/checkpoints`` (resumed from ``last.ckpt``), CSV logs
(+ TensorBoard when installed), validation loss every ``val_every_n_steps``. Writes
``exp_dir/model.pt`` (:meth:`FrontEnd.save`) and ``exp_dir/train_info.json``.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Subset

from specenh.frontends.base import FrontEnd, build
from specenh.train import FrontendData, register_trainer, select_conditions
from specenh.train.data import BucketBatchSampler, PairedFeatDataset, PairedWaveDataset, collate_waves
from specenh.utils.config import merge, save_config

log = logging.getLogger(__name__)

DEFAULT_CONDITIONS = {"mask": ["noise_*"], "inpaint": ["holes*"], "bwe": ["bandlimit_*"]}

DEFAULTS: dict[str, Any] = {
    "conditions": None,
    "model": {},
    "loss": {"mag_weight": 0.887, "complex_weight": 0.113},
    "augment": {"cutoff_prob": 0.0, "cutoffs_hz": [1000, 2000, 4000], "jitter_bands": 2},
    "data": {"max_frames": 300, "batch_size": 16, "batch_max_frames": 4800, "max_utts": None,
             "num_val_utts": 64, "num_workers": 0, "log_guard": 2.0**-24},
    "train": {"seed": 0, "lr": 1e-3, "weight_decay": 1e-2, "betas": [0.9, 0.98], "warmup_steps": 200,
              "min_lr_ratio": 0.05, "anneal_by_time": True, "grad_clip": 5.0, "max_minutes": 10.0,
              "max_epochs": 100, "max_steps": None,
              "val_every_n_steps": 200, "ckpt_every_n_steps": 200, "log_every_n_steps": 20,
              "precision": "32-true", "accelerator": "auto", "devices": 1, "num_nodes": 1, "strategy": "auto",
              "num_threads": 2},
}


def resolve_config(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Defaults under ``cfg``; ``conditions`` defaults per front-end."""
    out = merge(DEFAULTS, cfg)
    if not out.get("conditions"):
        out["conditions"] = list(DEFAULT_CONDITIONS.get(name, ["*"]))
    if isinstance(out["conditions"], str):
        out["conditions"] = out["conditions"].split()
    return out


# ---------------------------------------------------------------------------- data
def _read_gains(data_dir: Path | None) -> dict[str, float]:
    from specenh.data.kaldi import read_kv

    if data_dir is None or not (Path(data_dir) / "utt2gain").is_file():
        return {}
    return {u: float(g) for u, g in read_kv(Path(data_dir) / "utt2gain").items()}


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
        g = self.gains[k].get(u, 1.0)
        if g != 1.0:
            power = np.maximum(np.exp(y.astype(np.float64)) - self.guard, 0.0)
            y = np.log(g * g * power + self.guard).astype(np.float32)
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


# ---------------------------------------------------------------------------- module
def masked_l1(y: torch.Tensor, t: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean |y - t| over valid frames of [B, D, T]."""
    valid = (torch.arange(y.shape[-1], device=y.device)[None, :] < lengths.to(y.device)[:, None]).to(y.dtype)
    return ((y - t).abs() * valid[:, None, :]).sum() / (valid.sum() * y.shape[1]).clamp_min(1)


def _lightning():
    import lightning.pytorch as pl

    return pl


def make_module(fe: FrontEnd, cfg: dict[str, Any], train_src: _Source, valid_src: _Source | None,
                total_steps: int):
    pl = _lightning()
    tcfg, dcfg = cfg["train"], cfg["data"]

    class SupervisedFrontend(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.frontend = fe
            self.total_steps = int(total_steps)
            self._sampler: BucketBatchSampler | None = None
            self._audio_s = 0.0
            self._t0: float | None = None
            self._first_step = 0
            if fe.name == "bwe" and float(cfg["augment"]["cutoff_prob"]) > 0:
                from specenh.frontends.bwe import cutoff_hz_to_band

                n_mels, sr = int(fe.config.get("n_mels", 80)), int(fe.config.get("sample_rate", 16000))
                self._aug_bands = [cutoff_hz_to_band(float(c), n_mels, sr) for c in cfg["augment"]["cutoffs_hz"]]

        # -------------------------------------------------------- data (built per rank)
        def _loader(self, src: _Source, train: bool) -> DataLoader:
            rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
            bmf, bs, seed = int(dcfg["batch_max_frames"]), int(dcfg["batch_size"]), int(tcfg["seed"])
            nw = int(dcfg["num_workers"])
            if train:  # each rank takes every world_size-th batch of one shared bucketing
                sampler = BucketBatchSampler(src.lengths, bmf, bs, seed=seed, rank=rank, world_size=world)
                self._sampler = sampler
                dataset = src.dataset
            else:  # validation: each rank buckets its own share of the items (every rank gets some)
                idx = list(range(rank, len(src.lengths), world))
                dataset = Subset(src.dataset, idx)
                sampler = BucketBatchSampler([src.lengths[i] for i in idx], bmf, bs, seed=seed)
            # workers are not persistent: each epoch's workers copy the dataset after set_epoch (new crops)
            return DataLoader(dataset, batch_sampler=sampler, collate_fn=src.collate, num_workers=nw)

        def train_dataloader(self):
            return self._loader(train_src, True)

        def val_dataloader(self):
            return self._loader(valid_src, False) if valid_src is not None else []

        def on_train_epoch_start(self):
            if self._sampler is not None:
                self._sampler.set_epoch(self.current_epoch)
            train_src.set_epoch(self.current_epoch)

        def _time_fraction(self) -> float:
            """Share of the ``max_minutes`` budget used (Lightning's timer, restored on resume)."""
            from lightning.pytorch.callbacks import Timer

            if self._trainer is None:
                return 0.0
            for cb in self.trainer.callbacks:
                if isinstance(cb, Timer):
                    el = cb.time_elapsed("train")
                    rem = cb.time_remaining("train")
                    if rem is None or el + rem <= 0:
                        return 0.0
                    return min(1.0, el / (el + rem))
            return 0.0

        # -------------------------------------------------------- loss
        def _augment(self, batch):
            """bwe: replace some inputs by their clean target cut at a random configured cut-off."""
            from specenh.frontends.bwe import simulate_bandlimit

            x, y = batch["x"], batch["y"]
            b = x.shape[0]
            # seeded by (seed, rank, step): reproducible and the same after a resume
            g = torch.Generator().manual_seed(
                (int(tcfg["seed"]) * 1000 + self.global_rank) * 10_000_019 + self.global_step)
            pick = torch.rand(b, generator=g) < float(cfg["augment"]["cutoff_prob"])
            if not pick.any():
                return x
            choice = torch.randint(len(self._aug_bands), (b,), generator=g)
            jit = torch.randint(int(cfg["augment"]["jitter_bands"]) + 1, (b,), generator=g)
            band = torch.tensor(self._aug_bands)[choice] + jit
            sim = simulate_bandlimit(y, band.to(y.device), floor=float(fe.config.get("floor", math.log(2.0**-24))))
            return torch.where(pick.to(x.device)[:, None, None], sim, x)

        def compute_loss(self, batch, train: bool) -> dict[str, torch.Tensor]:
            x, xl, y = batch["x"], batch["x_len"], batch["y"]
            if fe.domain == "wave":
                est, _ = self.frontend(x, xl)
                lc = cfg["loss"]
                return self.frontend.loss(est, y, xl, mag_weight=float(lc["mag_weight"]),
                                          complex_weight=float(lc["complex_weight"]))
            if train and hasattr(self, "_aug_bands"):
                x = self._augment(batch)
            kw = {"mask": batch["mask"]} if "mask" in batch else {}
            est, _ = self.frontend(x, xl, **kw)
            return {"loss": masked_l1(est.float(), y, xl)}

        def training_step(self, batch, _idx):
            if self._t0 is None:
                self._t0, self._first_step = time.time(), self.global_step
            out = self.compute_loss(batch, True)
            bs = batch["x"].shape[0]
            for k, v in out.items():
                self.log(f"train_{k}", v.detach(), prog_bar=k == "loss", on_step=True, batch_size=bs)
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, batch_size=bs)
            hop = (1.0 / int(fe.config.get("sample_rate", 16000))) if fe.domain == "wave" else 0.01
            self._audio_s += float(batch["x_len"].sum()) * hop
            every = int(tcfg["log_every_n_steps"]) * 5
            if every and self.global_step % every == 0 and self.global_rank == 0:
                el = max(time.time() - self._t0, 1e-9)
                log.info("step %d: loss %.4f lr %.2e (%.1f s audio/s on this rank)", self.global_step,
                         float(out["loss"].detach()), self.trainer.optimizers[0].param_groups[0]["lr"],
                         self._audio_s / el)
            return out["loss"]

        def validation_step(self, batch, _idx):
            out = self.compute_loss(batch, False)
            for k, v in out.items():
                self.log(f"val_{k}", v, on_epoch=True, sync_dist=True, batch_size=batch["x"].shape[0])

        def on_validation_epoch_end(self):
            v = self.trainer.callback_metrics.get("val_loss")
            if v is not None and self.global_rank == 0:
                log.info("step %d: val_loss %.4f", self.global_step, float(v))

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.frontend.parameters(), lr=float(tcfg["lr"]),
                                    betas=tuple(float(b) for b in tcfg["betas"]),
                                    weight_decay=float(tcfg["weight_decay"]))
            warm = int(tcfg["warmup_steps"])
            floor = float(tcfg["min_lr_ratio"])
            total = self.total_steps
            by_time = bool(tcfg["anneal_by_time"])

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / max(1, warm)
                p = min(1.0, (step - warm) / max(1, total - warm))
                if by_time:  # whichever budget runs out first: steps or wall-clock minutes
                    p = max(p, self._time_fraction())
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return SupervisedFrontend()


# ---------------------------------------------------------------------------- entry point
def train_supervised(name: str, cfg: dict[str, Any], data: FrontendData, exp_dir: str | Path) -> Path:
    """Train front-end ``name`` on degraded/clean pairs; returns ``exp_dir/model.pt``. Resumes from
    ``exp_dir/checkpoints/last.ckpt`` when present."""
    pl = _lightning()
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(name, copy.deepcopy(dict(cfg)))
    tcfg, dcfg = cfg["train"], cfg["data"]
    save_config(cfg, exp_dir / "config.yaml")  # the resolved config (defaults filled in)
    torch.set_num_threads(int(tcfg["num_threads"]))
    pl.seed_everything(int(tcfg["seed"]), workers=True)
    fe = build({"name": name, **dict(cfg["model"])})
    if not fe.trainable:
        raise ValueError(f"front-end {name!r} is not trainable")
    n_params = sum(p.numel() for p in fe.parameters())
    log.info("front-end %s: %.3f M parameters, config %s", name, n_params / 1e6, fe.config)

    seed = int(tcfg["seed"])
    train_src = build_source(fe, cfg, data, "train", seed=seed, max_utts=dcfg["max_utts"])
    n_val = int(dcfg["num_val_utts"] or 0)
    valid_src = build_source(fe, cfg, data, "valid", seed=seed + 1000, max_utts=n_val) if n_val > 0 else None
    if valid_src is not None:
        valid_src.set_epoch(0)
    n_batches = len(BucketBatchSampler(train_src.lengths, int(dcfg["batch_max_frames"]), int(dcfg["batch_size"])))
    total_steps = int(tcfg["max_steps"]) if tcfg["max_steps"] else n_batches * int(tcfg["max_epochs"])
    log.info("%s: %d training items (%.2f h after cropping), %d batches/epoch, schedule over %d steps",
             name, len(train_src.lengths), sum(train_src.lengths) / 360000, n_batches, total_steps)
    module = make_module(fe, cfg, train_src, valid_src, total_steps)

    ckpt_dir = exp_dir / "checkpoints"
    ckpt_cb = pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                           every_n_train_steps=int(tcfg["ckpt_every_n_steps"]))
    loggers: list = [pl.loggers.CSVLogger(str(exp_dir), name="logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(pl.loggers.TensorBoardLogger(str(exp_dir), name="tb"))
    except ImportError:
        pass
    val_every = int(tcfg["val_every_n_steps"] or 0)
    if valid_src is not None and val_every:
        val_kw: dict[str, Any] = {"check_val_every_n_epoch": None, "val_check_interval": val_every}
    else:
        val_kw = {"check_val_every_n_epoch": 1, "limit_val_batches": 0}
    trainer = pl.Trainer(
        max_epochs=int(tcfg["max_epochs"]), max_steps=int(tcfg["max_steps"]) if tcfg["max_steps"] else -1,
        max_time={"minutes": float(tcfg["max_minutes"])}, accelerator=tcfg["accelerator"],
        devices=tcfg["devices"], num_nodes=int(tcfg["num_nodes"]), strategy=tcfg["strategy"],
        precision=tcfg["precision"], gradient_clip_val=float(tcfg["grad_clip"]) or None, callbacks=[ckpt_cb],
        logger=loggers, log_every_n_steps=int(tcfg["log_every_n_steps"]), num_sanity_val_steps=0,
        **val_kw,
        use_distributed_sampler=False, enable_model_summary=False, enable_progress_bar=False,
        default_root_dir=str(exp_dir),
    )
    resume = ckpt_dir / "last.ckpt"
    if resume.is_file():
        log.info("%s: resuming from %s", name, resume)
    t0 = time.time()
    trainer.fit(module, ckpt_path=str(resume) if resume.is_file() else None)
    t_end = time.time()
    elapsed = t_end - t0
    trainer.save_checkpoint(str(resume))  # the state at the end (time budget or max_steps reached)
    val_loss = float("nan")
    if valid_src is not None:
        res = trainer.validate(module, verbose=False)
        if res:
            val_loss = float(res[0].get("val_loss", float("nan")))
    out = exp_dir / "model.pt"
    if trainer.is_global_zero:
        fe.cpu().eval().save(out)
        info = {"frontend": name, "params": n_params, "steps": int(trainer.global_step),
                "epochs": int(trainer.current_epoch), "train_seconds": round(elapsed, 1),
                "audio_seconds_this_run": round(module._audio_s, 1),
                "audio_s_per_s": None if module._t0 is None else round(
                    module._audio_s / max(t_end - module._t0, 1e-9), 2),
                "steps_per_s_this_run": None if module._t0 is None else round(
                    (trainer.global_step - module._first_step) / max(t_end - module._t0, 1e-9), 3),
                "val_loss": val_loss, "conditions": cfg["conditions"],
                "train_items": len(train_src.lengths), "world_size": int(trainer.world_size)}
        (exp_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
        log.info("saved %s: %s", out, info)
    return out


@register_trainer("mask")
def train_mask(cfg: dict[str, Any], data: FrontendData, exp_dir: Path) -> Path:
    return train_supervised("mask", cfg, data, exp_dir)


@register_trainer("inpaint")
def train_inpaint(cfg: dict[str, Any], data: FrontendData, exp_dir: Path) -> Path:
    return train_supervised("inpaint", cfg, data, exp_dir)


@register_trainer("bwe")
def train_bwe(cfg: dict[str, Any], data: FrontendData, exp_dir: Path) -> Path:
    return train_supervised("bwe", cfg, data, exp_dir)
