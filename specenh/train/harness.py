"""The one trainer harness: every trainer (reference ASR, supervised front-ends, the GAN) runs through it.

What it owns, so that a trained model is a function of (commit, config, seed) only:

- **one ``train`` schema** (:data:`TRAIN_DEFAULTS`; unknown keys are errors, renamed keys say so);
- **step budgets**: ``max_steps`` optimizer steps (or ``max_epochs`` of the training data when
  ``max_steps`` is null); learning-rate schedules run over steps (:func:`warmup_cosine`);
  ``max_minutes`` is only a safety cap, off by default: a run it stops is marked ``truncated``;
- **the data stream as a function of the step**: :class:`StepBatchSampler` gives the batch of step
  ``s`` (epoch ``s // n``, its seeded permutation, position ``s % n``, this rank's share), and
  :class:`EpochIndexed` hands the epoch to the dataset with each index, so random crops depend on
  (seed, epoch, item) and a resumed run reads exactly the batches an uninterrupted one reads;
- **the random streams as a function of the step**: :class:`HarnessModule` seeds torch before every
  batch from (seed, rank, step), so dropout, SpecAugment, noise inputs and style mixing after a resume
  are those of an uninterrupted run;
- **checkpoints and resume**: ``exp_dir/checkpoints/last.ckpt`` every ``ckpt_every_steps`` steps,
  written to a temporary file and renamed (a ``kill -9`` never leaves a torn checkpoint), also on
  SIGTERM / Ctrl-C; the same command again resumes from it;
- **validation and model selection** every ``val_every_steps`` steps (scheduled by the harness's own
  step counter, not Lightning's epoch counters): :meth:`HarnessModule.validate` returns metrics;
  with ``select_by`` the weights at the lowest value are what ``model.pt`` holds;
- **logging**: CSV (+ TensorBoard when installed) scalars, a progress bar on a terminal and a log line
  every ``log_every_steps`` steps in log files;
- **outputs**: the resolved config and ``train_info.json`` (steps, budget, seed, truncated, selection).

Tensor shapes are the trainers' business; the harness only counts steps.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from specenh.utils.config import merge
from specenh.utils.seed import stable_seed

log = logging.getLogger(__name__)

#: the ``train`` keys every trainer shares (each trainer adds its own, e.g. ``lr`` or ``lr_g``)
TRAIN_DEFAULTS: dict[str, Any] = {
    "seed": 0,                 # every random stream of the run derives from it (the recipe's --seed sets it)
    "max_steps": 1000,         # the budget: optimizer steps (batches; the GAN's D+G pair counts as one)
    "max_epochs": None,        # used instead of max_steps when max_steps is null: passes over the training data
    "max_minutes": None,       # safety cap only (null: off); a run it stops is marked "truncated"
    "warmup_steps": 0,         # linear warm-up, then cosine to min_lr_ratio at max_steps
    "min_lr_ratio": 0.05,
    "grad_clip": 0.0,          # gradient norm clipping (0: off)
    "val_every_steps": 200,    # validation (and model selection) every k steps (0: at the end only)
    "ckpt_every_steps": 200,   # exp_dir/checkpoints/last.ckpt every k steps (resume point after a kill)
    "log_every_steps": 50,     # scalar logging and, in log files, one progress line every k steps
    "select_by": None,         # a validation metric (lower is better): model.pt holds the weights at its minimum
    "precision": "32-true",    # bf16-mixed / 16-mixed on GPU (32-true on CPU)
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "num_threads": 1,          # torch CPU threads (stage 4 gives more when fewer trainings than --nj run)
    "num_workers": 0,          # DataLoader workers
    "progress_bar": True,      # on a terminal only; log files get the log lines instead
}

#: keys of earlier configs and what became of them
RENAMED: dict[str, str] = {
    "val_every_n_steps": "use val_every_steps",
    "ckpt_every_n_steps": "use ckpt_every_steps",
    "log_every_n_steps": "use log_every_steps",
    "anneal_by_time": "removed: schedules run over max_steps",
    "schedule": "removed: schedules run over max_steps",
    "est_steps_per_s": "removed: budgets are steps",
}


def resolve_train(section: Mapping[str, Any] | None, own_defaults: Mapping[str, Any], who: str) -> dict[str, Any]:
    """The ``train`` section of a trainer's config: harness defaults, then the trainer's own defaults,
    then ``section`` on top. Unknown and renamed keys are errors naming ``who``."""
    section = dict(section or {})
    known = set(TRAIN_DEFAULTS) | set(own_defaults)
    renamed = {k: RENAMED[k] for k in section if k in RENAMED}
    if renamed:
        raise ValueError(f"{who} config: train keys changed: " + "; ".join(f"{k}: {v}" for k, v in renamed.items()))
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"{who} config: unknown train keys {unknown}; known: {sorted(known)}")
    out = merge(merge(TRAIN_DEFAULTS, own_defaults), section)
    if out["max_steps"] is None and out["max_epochs"] is None:
        raise ValueError(f"{who} config: set train.max_steps (or train.max_epochs)")
    if out["max_minutes"] is not None and float(out["max_minutes"]) <= 0:
        raise ValueError(f"{who} config: train.max_minutes must be > 0 or null (off)")
    return out


def check_sections(cfg: Mapping[str, Any], defaults: Mapping[str, Any], who: str, sections: Sequence[str]) -> None:
    """Unknown keys in the given (non-train) sections of ``cfg`` are errors."""
    for sec in sections:
        unknown = sorted(set(cfg.get(sec) or {}) - set(defaults.get(sec) or {}))
        if unknown:
            raise ValueError(f"{who} config: unknown {sec} keys {unknown}; known: {sorted(defaults.get(sec) or {})}")
    top = sorted(set(cfg) - set(defaults))
    if top:
        raise ValueError(f"{who} config: unknown keys {top}; known: {sorted(defaults)}")


def budget_steps(tc: Mapping[str, Any], batches_per_epoch: int) -> int:
    """The run's length in steps: ``max_steps``, or ``max_epochs`` times the batches of an epoch."""
    if tc["max_steps"] is not None:
        return int(tc["max_steps"])
    return int(tc["max_epochs"]) * max(1, int(batches_per_epoch))


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to ``floor`` at ``total`` steps."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def warmup_cosine(opt: torch.optim.Optimizer, tc: Mapping[str, Any], total: int):
    """A step-interval LambdaLR for Lightning's ``configure_optimizers``."""
    warm, floor = int(tc["warmup_steps"]), float(tc["min_lr_ratio"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warm, total, floor))
    return {"scheduler": sched, "interval": "step"}


def step_seed(seed: int, purpose: str, rank: int, step: int) -> int:
    """The torch seed of one step of one rank (32 bits, independent of PYTHONHASHSEED)."""
    return stable_seed(seed, purpose, rank, step) & 0xFFFF_FFFF


def set_threads(n: int) -> None:
    torch.set_num_threads(max(1, int(n)))


# --------------------------------------------------------------------------- data: batches as a function of step
def bucket(lengths: Sequence[int], max_frames: int, batch_size: int, drop_last: bool = False) -> list[list[int]]:
    """Length-sorted batches of item indices, capped by ``max_frames`` padded frames and ``batch_size``."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1 > batch_size or lengths[i] * (len(cur) + 1) > max_frames):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur and not drop_last:
        batches.append(cur)
    if not batches:
        raise ValueError("no training batch: the training data is empty")
    return batches


class StepBatchSampler(Sampler[list[int]]):
    """An endless stream of batches where the batch of step ``s`` is a pure function of ``s``.

    Epoch ``e = s // n`` (``n`` batches per rank and epoch) shuffles the buckets with
    ``rng([seed, e])``; rank ``r`` of ``world_size`` takes every ``world_size``-th of them, so ranks
    never share an item within an epoch. Indices are encoded ``e * num_items + i`` for
    :class:`EpochIndexed`. ``start`` is the first step (set from the checkpoint when resuming).
    """

    def __init__(self, batches: list[list[int]], num_items: int, seed: int, rank: int = 0, world_size: int = 1,
                 start: int = 0):
        self.batches, self.num_items = batches, int(num_items)
        self.seed, self.rank, self.world_size, self.start = int(seed), int(rank), int(world_size), int(start)
        self.per_rank = len(batches) // self.world_size
        if self.per_rank < 1:
            raise ValueError(f"{len(batches)} batches cannot feed {world_size} ranks")

    def epoch_order(self, epoch: int) -> list[int]:
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))
        return perm[self.rank : self.per_rank * self.world_size : self.world_size].tolist()

    def batch_at(self, step: int) -> list[int]:
        e, pos = divmod(int(step), self.per_rank)
        return [e * self.num_items + i for i in self.batches[self.epoch_order(e)[pos]]]

    def __iter__(self) -> Iterator[list[int]]:
        s = self.start
        while True:
            yield self.batch_at(s)
            s += 1


class EpochIndexed(Dataset):
    """Decodes :class:`StepBatchSampler`'s ``e * n + i`` into item ``i`` of epoch ``e``: calls
    ``set_epoch(e)`` (the dataset's crops are seeded by (seed, epoch, item)) then ``dataset[i]``."""

    def __init__(self, dataset: Dataset, set_epoch: Callable[[int], None] | None, num_items: int | None = None):
        self.dataset, self.set_epoch = dataset, set_epoch
        self.num_items = int(num_items if num_items is not None else len(dataset))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_items

    def __getitem__(self, j: int):
        e, i = divmod(int(j), self.num_items)
        if self.set_epoch is not None:
            self.set_epoch(e)
        return self.dataset[i]


# --------------------------------------------------------------------------- the module base
class HarnessModule(pl.LightningModule):
    """Base of every trainer's LightningModule.

    Subclasses implement ``training_step`` (and ``configure_optimizers``), and may override
    :meth:`validate` (-> mean metrics over the validation data of this rank and all ranks) and
    :meth:`selected_module` (the network whose weights ``select_by`` keeps). ``steps_done`` counts
    batches; it drives the data stream, the per-step seeds, validation and checkpoints, and is saved
    in the checkpoint.
    """

    purpose = "train"

    def __init__(self, tc: Mapping[str, Any], total_steps: int):
        super().__init__()
        self.tc = dict(tc)
        self.total_steps = int(total_steps)
        self.steps_done = 0
        self.best: tuple[float, int] | None = None        # (value, step) of the selected weights
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_val: dict[str, float] = {}
        self.tty = sys.stderr.isatty()
        self._t_line, self._s_line = time.time(), 0

    # ---------------------------------------------------------------- subclass API
    def validate(self) -> dict[str, float]:
        """Mean validation metrics (all ranks); {} when there is no validation data."""
        return {}

    def selected_module(self) -> torch.nn.Module:
        """The network ``select_by`` keeps (the front-end, the generator, the ASR)."""
        raise NotImplementedError

    def line(self, step: int) -> str:
        """Extra text for the periodic log line (losses); the harness adds steps/s."""
        return ""

    # ---------------------------------------------------------------- helpers
    @property
    def rank(self) -> int:
        return int(self.global_rank) if self._trainer is not None else 0

    @property
    def world(self) -> int:
        return int(self.trainer.world_size) if self._trainer is not None else 1

    def train_sampler(self, batches: list[list[int]], num_items: int) -> StepBatchSampler:
        """This rank's step-indexed batch stream, starting at the step training resumes from."""
        return StepBatchSampler(batches, num_items, int(self.tc["seed"]), rank=self.rank, world_size=self.world,
                                start=self.steps_done)

    def mean_over_ranks(self, sums: dict[str, float], count: float) -> dict[str, float]:
        """Weighted means of per-rank sums (``count`` items on this rank), reduced over ranks."""
        keys = sorted(sums)
        t = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            t = t.to(self.device)
            torch.distributed.all_reduce(t)
            t = t.cpu()
        n = float(t[-1])
        return {k: float(t[i]) / n for i, k in enumerate(keys)} if n > 0 else {}

    # ---------------------------------------------------------------- hooks
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(step_seed(int(self.tc["seed"]), self.purpose, self.rank, self.steps_done))
        self.steps_done += 1

    def after_step(self) -> None:
        """Called by the harness callback after each batch (before checkpointing): progress line."""
        every = int(self.tc["log_every_steps"] or 0)
        s = self.steps_done
        if not self.tty and every and (s % every == 0 or s == 1) and self.rank == 0:
            rate = (s - self._s_line) / max(time.time() - self._t_line, 1e-9)
            extra = self.line(s)
            log.info("step %d/%d: %s%s(%.2f steps/s)", s, self.total_steps, extra, " " if extra else "", rate)
            self._t_line, self._s_line = time.time(), s

    def run_validation(self) -> dict[str, float]:
        """Validate in eval mode without gradients, log, and track the selected weights."""
        was_training = self.training
        self.eval()
        state = torch.random.get_rng_state()
        torch.manual_seed(step_seed(int(self.tc["seed"]), "val", 0, self.steps_done))
        try:
            with torch.no_grad():
                metrics = self.validate()
        finally:
            torch.random.set_rng_state(state)
            self.train(was_training)
        if not metrics:
            return {}
        self.last_val = dict(metrics)
        if self.rank == 0:
            for lg in self.trainer.loggers:
                lg.log_metrics(metrics, step=self.steps_done)
            log.info("step %d: validation %s", self.steps_done,
                     " ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())))
        key = self.tc["select_by"]
        if key:
            if key not in metrics:
                raise KeyError(f"train.select_by={key!r} is not a validation metric; logged: {sorted(metrics)}")
            if self.best is None or metrics[key] < self.best[0]:
                self.best = (float(metrics[key]), self.steps_done)
                self.best_state = {k: v.detach().cpu().clone()
                                   for k, v in self.selected_module().state_dict().items()}
                if self.rank == 0:
                    log.info("step %d: %s %.4f (best so far)", self.steps_done, key, metrics[key])
        return metrics

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["specenh_harness"] = {"steps_done": self.steps_done, "best": self.best,
                                         "best_state": self.best_state, "last_val": self.last_val,
                                         "config": getattr(self, "run_config", None)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("specenh_harness") or {}
        self.steps_done = int(saved.get("steps_done", 0))
        self.best, self.best_state = saved.get("best"), saved.get("best_state")
        self.last_val = dict(saved.get("last_val") or {})


# --------------------------------------------------------------------------- which config a checkpoint belongs to
#: train keys that change how a run executes, not what it computes (a finished or resumed run may differ in them;
#: the thread count can change float rounding, and it is recorded in train_info.json)
RUNTIME_KEYS = ("num_threads", "num_workers", "progress_bar", "log_every_steps", "max_minutes")


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_identity(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The flattened config a checkpoint must match to be resumed (runtime keys left out)."""
    flat = _flat(dict(config or {}))
    return {k: v for k, v in flat.items() if not (k.startswith("train.") and k.split(".", 1)[1] in RUNTIME_KEYS)}


# Config keys added after checkpoints were written, with the value that means "as before" (flattened
# names, e.g. "loss.ctc_weight": 0.0): a checkpoint without the key resumes when the key has that value.
ADDED_KEYS: dict[str, Any] = {}


def register_added_key(key: str, as_before: Any) -> None:
    """Declare a new config key (flattened name) whose value ``as_before`` reproduces the older code."""
    ADDED_KEYS[key] = as_before


def check_resumable(saved: Mapping[str, Any] | None, config: Mapping[str, Any] | None, ckpt: Path) -> None:
    """Refuse to resume a checkpoint written under another config (a silently mixed model). A key the
    checkpoint predates (:data:`ADDED_KEYS`) at its as-before value is no difference."""
    if saved is None or config is None:
        return
    now = config_identity(config)
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k, "<absent>") != now.get(k, "<absent>")
                  and not (k not in saved and k in ADDED_KEYS and now.get(k) == ADDED_KEYS[k]))
    budget = [k for k in diff if k in ("train.max_steps", "train.max_epochs")]
    if budget:  # a longer (or shorter) budget continues the same run; say what that means
        log.warning("%s: budget changed (%s); continuing this run (a schedule over steps is then not that of a "
                    "fresh run with the new budget)", ckpt,
                    ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in budget))
        diff = [k for k in diff if k not in budget]
    if diff:
        show = "; ".join(f"{k}: {saved.get(k, '<absent>')!r} -> {now.get(k, '<absent>')!r}" for k in diff[:5])
        raise ValueError(f"{ckpt} was trained with another config ({len(diff)} key(s) differ: {show}); "
                         f"train from scratch with --overwrite (stage 4: --overwrite true) or use another exp dir")


# --------------------------------------------------------------------------- callbacks
def atomic_save(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` to a temporary name, then an atomic rename (rank 0 writes)."""
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(str(tmp))
    if trainer.is_global_zero:
        os.replace(tmp, path)


class HarnessCallback(pl.Callback):
    """After every batch: log line, validation every ``val_every_steps``, checkpoint every
    ``ckpt_every_steps`` (in that order, so a checkpoint holds the selection of its own step).
    On SIGTERM / Ctrl-C the state is saved before the exception leaves ``fit``."""

    def __init__(self, ckpt_path: Path, val_every: int, ckpt_every: int):
        self.ckpt_path, self.val_every, self.ckpt_every = ckpt_path, int(val_every), int(ckpt_every)

    def on_train_batch_end(self, trainer, pl_module: HarnessModule, outputs, batch, batch_idx) -> None:
        pl_module.after_step()
        s = pl_module.steps_done
        if self.val_every and s % self.val_every == 0 and s < pl_module.total_steps:
            pl_module.run_validation()
        if self.ckpt_every and s % self.ckpt_every == 0:
            atomic_save(trainer, self.ckpt_path)

    def on_exception(self, trainer, pl_module, exception) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            atomic_save(trainer, self.ckpt_path)
            log.warning("interrupted at step %d: saved %s (rerun the same command to resume)",
                        pl_module.steps_done, self.ckpt_path)


def loggers(exp_dir: Path) -> list:
    out: list = [pl.loggers.CSVLogger(str(exp_dir), name="logs")]
    try:
        import tensorboard  # noqa: F401

        out.insert(0, pl.loggers.TensorBoardLogger(str(exp_dir), name="tb", default_hp_metric=False))
    except ImportError:
        log.info("tensorboard not installed: CSV logs only (%s/logs)", exp_dir)
    return out


def cpu_precision(tc: Mapping[str, Any]) -> str:
    """The configured precision, or 32-true where no GPU will be used."""
    precision = str(tc["precision"])
    if "16" in precision and (tc["accelerator"] == "cpu" or not torch.cuda.is_available()):
        log.info("no GPU: precision %s -> 32-true", precision)
        return "32-true"
    return precision


@dataclass
class FitResult:
    steps: int              # steps done in total (all runs)
    total_steps: int        # the budget
    resumed_from: int       # step the run resumed from (0: from scratch)
    seconds: float          # wall time of this run
    truncated: bool         # stopped by the max_minutes safety cap before the budget
    precision: str

    @property
    def already_done(self) -> bool:
        """An earlier run had reached the budget: nothing was trained now."""
        return self.resumed_from >= self.total_steps


def fit(module: HarnessModule, exp_dir: Path, *, config: Mapping[str, Any] | None = None, steps_per_batch: int = 1,
        strategy: Any = None, automatic_clip: bool = True, datamodule: Any = None) -> tuple[pl.Trainer, FitResult]:
    """Build the Lightning trainer from ``module.tc``, resume from ``exp_dir/checkpoints/last.ckpt`` when
    it exists (and was written under the same ``config``, runtime keys aside), train to the step budget,
    run a last validation and save the final checkpoint.

    ``steps_per_batch``: Lightning optimizer steps per batch (2 for a GAN with two optimizers).
    """
    tc = module.tc
    module.run_config = config_identity(config) if config is not None else None
    exp_dir = Path(exp_dir)
    ckpt_dir = exp_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last = ckpt_dir / "last.ckpt"
    precision = cpu_precision(tc)
    max_minutes = tc["max_minutes"]
    trainer = pl.Trainer(
        max_steps=steps_per_batch * module.total_steps, max_epochs=-1,
        max_time={"minutes": float(max_minutes)} if max_minutes else None,
        accelerator=tc["accelerator"], devices=tc["devices"], num_nodes=int(tc["num_nodes"]),
        strategy=strategy if strategy is not None else tc["strategy"], precision=precision,
        gradient_clip_val=(float(tc["grad_clip"]) or None) if automatic_clip else None,
        callbacks=[HarnessCallback(last, int(tc["val_every_steps"] or 0), int(tc["ckpt_every_steps"] or 0))],
        logger=loggers(exp_dir), log_every_n_steps=max(1, int(tc["log_every_steps"] or 50)),
        limit_val_batches=0, num_sanity_val_steps=0, use_distributed_sampler=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=bool(tc["progress_bar"]) and sys.stderr.isatty(),
        default_root_dir=str(exp_dir),
    )
    resumed_from = 0
    if last.is_file():
        saved = torch.load(last, map_location="cpu", weights_only=False).get("specenh_harness") or {}
        check_resumable(saved.get("config"), config, last)
        resumed_from = int(saved.get("steps_done", 0))
        log.info("resuming from %s (step %d of %d)", last, resumed_from, module.total_steps)
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    t0 = time.time()
    if resumed_from < module.total_steps:
        try:
            trainer.fit(module, ckpt_path=str(last) if last.is_file() else None, datamodule=datamodule)
        except SIGTERMException:  # Lightning exits 0 on SIGTERM: make the interruption visible to the caller
            raise SystemExit(143) from None
        module.run_validation()  # the last step's (the callback leaves it to here), before the final checkpoint
        for lg in trainer.loggers:  # fit() finalised them before this last validation
            lg.save()
        atomic_save(trainer, last)
    else:  # the budget was reached by an earlier run that stopped before writing its outputs: restore only
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        module.load_state_dict(ckpt["state_dict"])
        module.on_load_checkpoint(ckpt)
    seconds = time.time() - t0
    truncated = module.steps_done < module.total_steps
    if truncated:
        log.warning("!!! TRUNCATED: the max_minutes=%s safety cap stopped training at step %d of %d; the model is "
                    "marked truncated in train_info.json and in the report", max_minutes, module.steps_done,
                    module.total_steps)
    return trainer, FitResult(module.steps_done, module.total_steps, resumed_from, round(seconds, 1), truncated,
                              precision)


def selected_weights(module: HarnessModule) -> str:
    """Load the selected weights into ``module.selected_module()`` (when ``select_by`` chose a step);
    returns a description for the log and ``train_info.json``."""
    key = module.tc["select_by"]
    if key and module.best_state is not None and module.best is not None:
        module.selected_module().load_state_dict(module.best_state)
        log.info("model: the weights at step %d (%s %.4f), not the last ones (step %d)",
                 module.best[1], key, module.best[0], module.steps_done)
        return f"step {module.best[1]} ({key} {module.best[0]:.4f})"
    return "last"


def write_train_info(exp_dir: Path, module: HarnessModule, res: FitResult, **extra: Any) -> dict[str, Any]:
    """``exp_dir/train_info.json``: the budget, what was done, the seed, truncation, selection, metrics."""
    tc = module.tc
    info: dict[str, Any] = {
        "steps": res.steps, "max_steps": res.total_steps, "truncated": res.truncated,
        "max_minutes": tc["max_minutes"], "seed": int(tc["seed"]), "resumed_from_step": res.resumed_from,
        "train_seconds_this_run": res.seconds, "precision": res.precision, "num_threads": int(tc["num_threads"]),
        "selected": ({"by": tc["select_by"], "value": module.best[0], "step": module.best[1]}
                     if tc["select_by"] and module.best else "last"),
        "val": dict(module.last_val),
    }
    info.update(extra)
    (Path(exp_dir) / "train_info.json").write_text(json.dumps(info, indent=2, default=float) + "\n")
    return info


def read_train_info(exp_dir: str | Path) -> dict[str, Any]:
    """``train_info.json`` of an experiment dir ({} when absent)."""
    p = Path(exp_dir) / "train_info.json"
    return json.loads(p.read_text()) if p.is_file() else {}
