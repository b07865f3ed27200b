"""Training data for front-ends: degraded/clean pairs from stage 2/3 outputs.

A *pair source* is a degraded feature dir (``dump/feats/<set>_<cond>``) plus the clean feature dir
of the same utterances (``dump/feats/<set>``); utterance ids are shared (stage 2 keeps them).

- :class:`PairedFeatDataset` yields (degraded [T, D], clean [T, D], utt) log-mel pairs, optionally
  random crops of at most ``max_frames`` frames (the same crop in both).
- ``unpaired=True`` draws the clean target from a *different* random utterance (for losses that
  need no alignment, e.g. the contextual loss): the dataset then yields an independent clean item.
- :class:`PairedWaveDataset` yields waveform pairs (degraded, clean) for ``domain = "wave"`` front-ends.
- :class:`BucketBatchSampler` groups similar lengths, capped in padded frames, shuffled per epoch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from specenh.data.audio import load_audio
from specenh.data.kaldi import read_kv
from specenh.features.io import load_feat, pad_batch, read_feats_scp, read_utt2num_frames


class PairedFeatDataset(Dataset):
    """(degraded [T, D], clean [T', D], key) log-mel items over one or more degraded feature dirs.

    Args:
        degraded_dirs: stage-3 feature dirs of degraded sets.
        clean_dirs: the clean feature dir for each degraded dir (same utterance ids).
        max_frames: random crop length (None: whole utterances).
        unpaired: the clean item comes from an independent random utterance.
        seed: base seed of crops and unpaired draws (per item, so it is reproducible).
    """

    def __init__(self, degraded_dirs: Sequence[str | Path], clean_dirs: Sequence[str | Path], *,
                 max_frames: int | None = None, unpaired: bool = False, seed: int = 0,
                 max_utts: int | None = None):
        if len(degraded_dirs) != len(clean_dirs):
            raise ValueError("one clean dir per degraded dir is needed")
        self.items: list[tuple[int, str]] = []
        self.frames: list[int] = []
        self.deg, self.clean = [], []
        for k, (d, c) in enumerate(zip(degraded_dirs, clean_dirs)):
            d, c = Path(d), Path(c)
            self.deg.append(read_feats_scp(d / "feats.scp"))
            self.clean.append(read_feats_scp(c / "feats.scp"))
            n2f = read_utt2num_frames(d / "utt2num_frames")
            cn2f = read_utt2num_frames(c / "utt2num_frames")
            missing = sorted(set(n2f) - set(cn2f))
            if missing:
                raise ValueError(f"{c}: no clean features for {len(missing)} utterances of {d}, e.g. {missing[:3]}")
            utts = sorted(n2f)
            if max_utts:
                utts = [utts[i] for i in np.random.default_rng(seed + k).permutation(len(utts))[:max_utts]]
                utts.sort()
            for u in utts:
                self.items.append((k, u))
                self.frames.append(min(n2f[u], max_frames) if max_frames else n2f[u])
        self.max_frames, self.unpaired, self.seed = max_frames, unpaired, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _crop(self, x: np.ndarray, rng: np.random.Generator, start: int | None = None) -> tuple[np.ndarray, int]:
        if not self.max_frames or x.shape[0] <= self.max_frames:
            return x, 0
        s = int(rng.integers(0, x.shape[0] - self.max_frames + 1)) if start is None else start
        return x[s : s + self.max_frames], s

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        k, u = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = load_feat(self.deg[k], u)
        if self.unpaired:
            k2, u2 = self.items[int(rng.integers(len(self.items)))]
            y, _ = self._crop(load_feat(self.clean[k2], u2), rng)
            x, _ = self._crop(x, rng)
        else:
            y = load_feat(self.clean[k], u)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"utterance {u!r}: degraded and clean features differ in length "
                                 f"({x.shape[0]} vs {y.shape[0]} frames)")
            x, s = self._crop(x, rng)
            y, _ = self._crop(y, rng, start=s)
        return x, y, f"{k}:{u}"


PAIR_FIELDS = ("x", "y", "key")


def collate_pairs(items: Sequence[tuple[np.ndarray, np.ndarray, str] | Mapping[str, Any]]
                  ) -> dict[str, torch.Tensor | list]:
    """-> {x [B, D, T], x_len [B], y [B, D, T'], y_len [B], keys}: zero-padded, channel-first.

    Items are ``(x [T, D], y [T', D], key)`` tuples, or mappings with ``x``, ``y``, ``key`` and any
    further fields, which the batch carries as lists in item order under their own names (e.g. a
    transcript per item for a CTC loss); a dataset adds a field without touching this function.
    """
    rows = [it if isinstance(it, Mapping) else dict(zip(PAIR_FIELDS, it)) for it in items]
    x, xl = pad_batch([r["x"] for r in rows])
    y, yl = pad_batch([r["y"] for r in rows])
    out: dict[str, torch.Tensor | list] = {"x": x, "x_len": xl, "y": y, "y_len": yl, "keys": [r["key"] for r in rows]}
    for name in rows[0]:
        if name not in PAIR_FIELDS:
            if name in out:
                raise ValueError(f"item field {name!r} collides with a batch field")
            out[name] = [r.get(name) for r in rows]
    return out


class PairedWaveDataset(Dataset):
    """(degraded [N], clean [N], key) waveform pairs from degraded data dirs (``wav.scp`` + ``clean.scp``),
    with random crops of ``max_samples`` (same crop in both). The clean side is scaled by ``utt2gain``
    so the pair differs only by the degradation, not by the anti-clipping gain."""

    def __init__(self, degraded_dirs: Sequence[str | Path], *, sample_rate: int = 16000,
                 max_samples: int | None = 64000, seed: int = 0, max_utts: int | None = None):
        self.items: list[tuple[str, str, str, float]] = []
        for k, d in enumerate(degraded_dirs):
            d = Path(d)
            wav, clean = read_kv(d / "wav.scp"), read_kv(d / "clean.scp")
            gain = {u: float(g) for u, g in read_kv(d / "utt2gain").items()} if (d / "utt2gain").is_file() else {}
            utts = sorted(wav)
            if max_utts:
                utts = sorted(utts[i] for i in np.random.default_rng(seed + k).permutation(len(utts))[:max_utts])
            self.items += [(u, wav[u], clean[u], gain.get(u, 1.0)) for u in utts]
        self.sr, self.max_samples, self.seed, self.epoch = sample_rate, max_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        u, wp, cp, g = self.items[i]
        x, _ = load_audio(wp, self.sr, utt=u)
        y, _ = load_audio(cp, self.sr, utt=u)
        n = min(len(x), len(y))
        x, y = x[:n], y[:n] * g
        if self.max_samples and n > self.max_samples:
            s = int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, n - self.max_samples + 1))
            x, y = x[s : s + self.max_samples], y[s : s + self.max_samples]
        return x, y, u


def collate_waves(items: list[tuple[np.ndarray, np.ndarray, str]]) -> dict[str, torch.Tensor | list[str]]:
    """-> {x [B, N], x_len [B], y [B, N], y_len [B], keys}."""
    x, xl = pad_batch([a[:, None] for a, _, _ in items])
    y, yl = pad_batch([b[:, None] for _, b, _ in items])
    return {"x": x[:, 0], "x_len": xl, "y": y[:, 0], "y_len": yl, "keys": [k for _, _, k in items]}


class BucketBatchSampler(Sampler[list[int]]):
    """Length-sorted batches capped by ``max_frames`` padded frames and ``batch_size`` items; batch
    order reshuffled every epoch with a seeded generator. DDP: each rank takes every
    ``world_size``-th batch (pass ``rank``/``world_size``)."""

    def __init__(self, lengths: Sequence[int], max_frames: int, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False):
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        self.batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            if cur and (len(cur) + 1 > batch_size or lengths[i] * (len(cur) + 1) > max_frames):
                self.batches.append(cur)
                cur = []
            cur.append(i)
        if cur and not drop_last:
            self.batches.append(cur)
        self.seed, self.epoch, self.rank, self.world_size = seed, 0, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.batches))
        self.epoch += 1
        n = len(perm) - len(perm) % self.world_size if self.world_size > 1 else len(perm)
        for j in perm[self.rank : n : self.world_size]:
            yield self.batches[j]

    def __len__(self) -> int:
        return len(self.batches) // self.world_size if self.world_size > 1 else len(self.batches)
