"""Training pairs made on the fly: clean audio -> stage 2's degradation -> 16-bit PCM -> stage 3's log-mel.

With ``--train_data online`` no degraded training wav and no training feature is written: each item is
made in a DataLoader worker when a batch needs it, by the very functions stages 2 and 3 call
(:func:`specenh.degrade.apply.degrade_one`, :class:`specenh.features.logmel.LogMelExtractor`), with the
degraded audio passed through the same 16-bit PCM encoding and decoding as stage 2's wavs
(:func:`specenh.data.audio.pcm16_roundtrip`). Disk holds the clean audio only.

Items. Like the precomputed :class:`~specenh.train.data.PairedFeatDataset`, a dataset is built from a
list of *sources* named like the precomputed dirs (``<set>_<cond>`` for a condition of
``OnlineSpec.condition_files``, ``<set>`` for the clean audio itself), repeated for condition weights:

- ``mix=False`` (default): one item per (source, utterance), in the order and with the crops of the
  precomputed dataset, so epoch 0 gives the same items, bit for bit, as training on stage 2/3's outputs;
- ``mix=True``: one item per utterance; its source is drawn per (seed, epoch, utterance) uniformly from
  the list (a source listed k times is drawn k times as often).

Randomness. Every draw is keyed by what identifies the item, nothing else:

- degradation of utterance ``u`` under condition ``c`` in epoch ``e``: ``rng_for(seed, c, u)`` for
  ``e = 0`` -- exactly stage 2's generator, so epoch 0 reproduces stage 2's wavs -- and
  ``rng_for(seed, c, u, "epoch", e)`` for later epochs (a fresh draw of noise, SNR, RIR, holes...);
- the source of a mixed item: ``rng_for(seed, "online-source", u, e)``;
- crops (and the unpaired clean item): ``default_rng([train seed, e, item])``, as the precomputed datasets.

No key holds a DataLoader worker id or a DDP rank, on purpose: which worker or rank computes an item
is an accident of the machine layout (``num_workers``, world size, scheduling). Keyed by the item
only, the data are the same whatever that layout, a run resumed from a checkpoint (the harness hands
out the batches of step ``s`` from ``s`` on) recomputes exactly the draws an uninterrupted run makes,
and changing the worker count changes neither the data nor the model. Streams are still never shared:
:class:`~specenh.train.harness.StepBatchSampler` gives each rank its own buckets of an epoch (no item
on two ranks) and the DataLoader gives each batch to one worker, so every (epoch, item) is drawn once.
(torch's default per-worker seeds would tie the data to the worker count; nothing here uses them.)

Each worker holds its own feature extractor (one thread in DataLoader workers, as stage 3 runs) and its
own small cache of babble sources.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from specenh.data.audio import load_audio, pcm16_roundtrip, resample
from specenh.data.kaldi import load_data_dir
from specenh.features.config import FeatureConfig
from specenh.utils.seed import rng_for

log = logging.getLogger(__name__)


@dataclass
class OnlineSpec:
    """What the trainers need to make training pairs on the fly (``FrontendData.online``).

    data_dir: the clean training data dir (``data/<train_set>``: wav.scp, utt2spk, ...).
    condition_files: ``<train_set>_<cond>`` (the precomputed dir name) -> the condition YAML.
    feature_config: the ASR-matched log-mel settings (stage 3's).
    seed: stage 2's ``--seed`` (the degradation draws of epoch 0 are stage 2's).
    split: the noise pool (``train``, as stage 2 uses for training sets).
    mix: one item per utterance with a drawn source, instead of one per (source, utterance).
    """

    data_dir: Path
    condition_files: dict[str, Path]
    feature_config: FeatureConfig = field(default_factory=FeatureConfig)
    seed: int = 0
    split: str = "train"
    mix: bool = False

    @property
    def clean_name(self) -> str:
        return Path(self.data_dir).name

    def condition_of(self, source: str | Path):
        """The Condition of a source name (``<set>_<cond>``), or None for the clean set itself."""
        from specenh.degrade.condition import load_condition

        name = Path(source).name
        if name == self.clean_name:
            return None
        if name not in self.condition_files:
            raise ValueError(f"online training data: no condition for {name!r}; known: "
                             f"{sorted(self.condition_files)} and the clean set {self.clean_name!r}")
        return load_condition(self.condition_files[name])


def degrade_rng(seed: int, condition: str, utt: str, epoch: int) -> np.random.Generator:
    """The degradation generator of (seed, condition, utterance, epoch); epoch 0 is stage 2's."""
    return rng_for(seed, condition, utt) if int(epoch) == 0 else rng_for(seed, condition, utt, "epoch", int(epoch))


def utt_num_samples(data_dir: Path, utts: Sequence[str], wav_scp: dict[str, str], sr: int) -> dict[str, int]:
    """Samples of each utterance at ``sr`` (``utt2num_samples`` when present, else the audio headers)."""
    import soundfile as sf

    from specenh.data.kaldi import read_kv

    f = Path(data_dir) / "utt2num_samples"
    if f.is_file():
        table = {u: int(v) for u, v in read_kv(f).items()}
        if all(u in table for u in utts):
            return {u: table[u] for u in utts}
    out = {}
    for u in utts:
        info = sf.info(wav_scp[u])
        out[u] = int(info.frames) if int(info.samplerate) == sr else int(round(info.frames * sr / info.samplerate))
    return out


class OnlinePairs(Dataset):
    """(degraded, clean, key) items made from clean audio on every access (see the module docstring).

    ``domain="logmel"``: (degraded [T, D], clean [T', D], key) float32 log-mels, random crops of at
    most ``max_frames`` frames (the precomputed :class:`~specenh.train.data.PairedFeatDataset`'s items).
    ``domain="wave"``: (degraded [N], clean [N] times the anti-clipping gain, key) with crops of at
    most ``max_samples`` (the precomputed :class:`~specenh.train.data.PairedWaveDataset`'s items).
    :meth:`item` returns everything as a dict (also ``gain``, ``source``, ``utt``, ``aux``: the
    degradation's side outputs such as ``holes_mask`` [F, T+1]).

    ``frames``: per item, the bucketing length (cropped frames); ``set_epoch`` selects the draws.
    """

    def __init__(self, spec: OnlineSpec, sources: Sequence[str | Path], *, max_frames: int | None = None,
                 unpaired: bool = False, seed: int = 0, max_utts: int | None = None, domain: str = "logmel",
                 max_samples: int | None = None, sample_rate: int | None = None):
        if domain not in ("logmel", "wave"):
            raise ValueError(f"domain must be logmel or wave, got {domain!r}")
        if not sources:
            raise ValueError("online training data: no source (condition) given")
        self.spec, self.domain = spec, domain
        self.sources = [str(Path(s).name) for s in sources]
        self.conditions = [spec.condition_of(s) for s in self.sources]
        self.sr = int(sample_rate or spec.feature_config.sample_rate)
        data = load_data_dir(spec.data_dir)
        self.wav_scp = dict(data.wav_scp)
        self.pool = [(u, data.wav_scp[u]) for u in data.utt_ids]  # stage 2's babble pool: the whole set
        utts = sorted(data.wav_scp)
        from specenh.features.logmel import num_frames

        n_samples = utt_num_samples(spec.data_dir, utts, self.wav_scp, self.sr)
        self.num_samples = n_samples
        fcfg = spec.feature_config
        self.items: list[tuple[int, str]] = []  # (source index or -1: drawn per epoch, utterance)
        self.frames: list[int] = []

        def length(u: str) -> int:
            if domain == "wave":
                n = n_samples[u]
                return min(n, max_samples) if max_samples else n
            t = int(num_frames(n_samples[u], fcfg))  # stage 3's utt2num_frames
            return min(t, max_frames) if max_frames else t

        if spec.mix:
            keep = utts
            if max_utts:
                keep = sorted(utts[i] for i in np.random.default_rng(seed).permutation(len(utts))[:max_utts])
            self.items = [(-1, u) for u in keep]
        else:
            for k in range(len(self.sources)):
                keep = utts
                if max_utts:  # the precomputed datasets' subset of each dir
                    keep = sorted(utts[i] for i in np.random.default_rng(seed + k).permutation(len(utts))[:max_utts])
                self.items += [(k, u) for u in keep]
        self.frames = [length(u) for _, u in self.items]
        self.max_frames, self.max_samples, self.unpaired, self.seed = max_frames, max_samples, unpaired, seed
        self.epoch = 0
        self._extractor = None

    # ---------------------------------------------------------------- the pieces
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def source_of(self, i: int) -> int:
        """The source index of item ``i`` in the current epoch."""
        k, u = self.items[i]
        if k >= 0:
            return k
        return int(rng_for(self.spec.seed, "online-source", u, self.epoch).integers(len(self.sources)))

    def clean_wave(self, u: str) -> np.ndarray:
        """float32 [N] clean audio at the feature rate, read as stage 3 reads it."""
        wave, _ = load_audio(self.wav_scp[u], target_sr=self.sr, utt=u, allow_silent=False)
        return wave

    def degraded_wave(self, k: int, u: str) -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
        """(float32 [N] degraded audio as stage 3 would read stage 2's wav, gain as in utt2gain, aux) for this epoch."""
        from specenh.degrade.apply import GAIN_FORMAT, degrade_one

        cond = self.conditions[k]
        if cond is None:
            return self.clean_wave(u), 1.0, {}
        wave, aux, gain = degrade_one(cond, u, self.wav_scp[u], seed=self.spec.seed, split=self.spec.split,
                                      pool=self.pool, rng=degrade_rng(self.spec.seed, cond.name, u, self.epoch),
                                      verbose=False)
        gain = float(GAIN_FORMAT.format(gain))  # as utt2gain records it: the targets of precomputed training
        wave = pcm16_roundtrip(wave, cond.sample_rate)
        if cond.sample_rate != self.sr:
            wave = resample(wave, cond.sample_rate, self.sr)
        return wave, gain, aux

    def logmel(self, wave: np.ndarray) -> np.ndarray:
        """float32 [T, D] log-mel of one wave [N] (stage 3's extractor; T = N // hop)."""
        from specenh.features.logmel import LogMelExtractor

        if self._extractor is None:
            self._extractor = LogMelExtractor(self.spec.feature_config).eval()
        with torch.inference_mode():
            x, frames = self._extractor(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        if int(frames[0]) < 1:
            raise ValueError(f"an utterance of {len(wave)} samples is too short for one frame")
        return x[0, :, : int(frames[0])].T.numpy()

    def _crop(self, x: np.ndarray, rng: np.random.Generator, start: int | None = None) -> tuple[np.ndarray, int]:
        limit = self.max_samples if self.domain == "wave" else self.max_frames
        if not limit or x.shape[0] <= limit:
            return x, 0
        s = int(rng.integers(0, x.shape[0] - limit + 1)) if start is None else start
        return x[s : s + limit], s

    # ---------------------------------------------------------------- items
    def item(self, i: int) -> dict[str, Any]:
        """Item ``i`` of the current epoch: {x, y, key, utt, source, gain, aux} (see the class docstring)."""
        k = self.source_of(i)
        u = self.items[i][1]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        xw, gain, aux = self.degraded_wave(k, u)
        if self.domain == "wave":
            y = self.clean_wave(u)
            n = min(len(xw), len(y))
            x, y = xw[:n], y[:n] * gain
            if self.max_samples and n > self.max_samples:
                s = int(rng.integers(0, n - self.max_samples + 1))
                x, y = x[s : s + self.max_samples], y[s : s + self.max_samples]
            return {"x": x, "y": y, "key": u, "utt": u, "source": self.sources[k], "gain": gain, "aux": aux,
                    "start": 0}
        x = self.logmel(xw)
        start = 0
        if self.unpaired:
            _, u2 = self.items[int(rng.integers(len(self.items)))]
            y, _ = self._crop(self.logmel(self.clean_wave(u2)), rng)
            x, start = self._crop(x, rng)
        else:
            y = self.logmel(self.clean_wave(u))
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"utterance {u!r}: degraded and clean features differ in length "
                                 f"({x.shape[0]} vs {y.shape[0]} frames)")
            x, start = self._crop(x, rng)
            y, _ = self._crop(y, rng, start=start)
        return {"x": x, "y": y, "key": f"{k}:{u}", "utt": u, "source": self.sources[k], "gain": gain, "aux": aux,
                "start": start}

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        it = self.item(i)
        return it["x"], it["y"], it["key"]
