"""Reference ASR training for corpora without a pretrained model (``--asr_model train``).

A SentencePiece tokenizer is trained on the training transcripts, a NeMo ``EncDecCTCModelBPE`` is
built from ``conf/asr/*.yaml`` and trained with Lightning on the **cached stage-3 features**
(normalised exactly as the frozen model will normalise them at decode time; SpecAugment on), with
duration-bucketed batches, a short linear warm-up then cosine decay, and a wall-clock budget.
The result is ``exp_dir/model.nemo``, which :class:`specenh.asr.FrozenASR` loads.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from specenh.data.kaldi import read_kv
from specenh.features.io import load_feat, pad_batch, read_feats_scp, read_utt2num_frames
from specenh.metrics.textnorm import normalize_text
from specenh.utils.config import save_config

log = logging.getLogger(__name__)


def train_tokenizer(texts: list[str], out_dir: str | Path, vocab_size: int = 128, model_type: str = "unigram") -> Path:
    """SentencePiece model ``out_dir/tokenizer.model`` from normalised training texts (NeMo's layout)."""
    import sentencepiece as spm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "train_text.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "tokenizer"), vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1, num_threads=1,
        input_sentence_size=2_000_000, shuffle_input_sentence=False, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model"))
    with open(out_dir / "vocab.txt", "w", encoding="utf-8") as f:
        for i in range(sp.get_piece_size()):
            f.write(sp.id_to_piece(i) + "\n")
    return out_dir


def build_model(model_cfg: Mapping[str, Any], tokenizer_dir: str | Path):
    """An untrained EncDecCTCModelBPE from the ``model`` section of the ASR YAML."""
    from nemo.collections.asr.models import EncDecCTCModelBPE
    from omegaconf import OmegaConf

    cfg = copy.deepcopy(dict(model_cfg))
    cfg["tokenizer"] = {"dir": str(tokenizer_dir), "type": "bpe"}
    # transcribe() reads these; our training does not use NeMo's audio data loaders
    sr = int(cfg.get("sample_rate", 16000))
    for name in ("validation_ds", "test_ds"):
        cfg.setdefault(name, {"manifest_filepath": None, "sample_rate": sr, "batch_size": 16, "shuffle": False,
                              "num_workers": 0, "pin_memory": False, "use_start_end_token": False})
    return EncDecCTCModelBPE(cfg=OmegaConf.create(cfg))


class FeatTextDataset(Dataset):
    """(features [T, D] float32, token ids [U]) pairs from a stage-3 feature dir."""

    def __init__(self, feats_dir: str | Path, tokenizer, utts: list[str] | None = None):
        feats_dir = Path(feats_dir)
        self.feats = read_feats_scp(feats_dir / "feats.scp")
        n2f = read_utt2num_frames(feats_dir / "utt2num_frames")
        text = read_kv(feats_dir / "text", allow_empty_value=True)
        self.utts = utts if utts is not None else sorted(n2f)
        self.frames = [n2f[u] for u in self.utts]
        self.text = [normalize_text(text[u]) for u in self.utts]
        self.tokens = [tokenizer.text_to_ids(t) for t in self.text]
        for u, t, ids in zip(self.utts, self.text, self.tokens):
            if not t:
                raise ValueError(f"{feats_dir}/text: utterance {u!r} has an empty transcript")
            if not ids:
                raise ValueError(f"utterance {u!r}: transcript {t!r} gives no tokens")

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[np.ndarray, list[int]]:
        return load_feat(self.feats, self.utts[i]), self.tokens[i]


def collate(items: list[tuple[np.ndarray, list[int]]]) -> tuple[torch.Tensor, ...]:
    """-> feats [B, D, T], feat lengths [B], tokens [B, U] (0-padded), token lengths [B]."""
    x, xl = pad_batch([f for f, _ in items])
    yl = torch.tensor([len(t) for _, t in items], dtype=torch.long)
    y = torch.zeros(len(items), int(yl.max()), dtype=torch.long)
    for i, (_, t) in enumerate(items):
        y[i, : len(t)] = torch.tensor(t)
    return x, xl, y, yl


class BucketBatchSampler(Sampler[list[int]]):
    """Length-sorted batches capped by ``max_frames`` padded frames and ``batch_size``; the batch order
    is shuffled each epoch with a seeded generator (epoch set by the trainer)."""

    def __init__(self, frames: list[int], max_frames: int, batch_size: int, seed: int = 0):
        order = sorted(range(len(frames)), key=lambda i: frames[i])
        self.batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            if cur and (len(cur) + 1 > batch_size or frames[i] * (len(cur) + 1) > max_frames):
                self.batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            self.batches.append(cur)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        for j in g.permutation(len(self.batches)):
            yield self.batches[j]

    def __len__(self) -> int:
        return len(self.batches)


def _lightning_module(model, train_cfg: Mapping[str, Any], total_steps: int, val_items=None):
    import lightning.pytorch as pl

    from specenh.asr.frozen import normalise_feats
    from specenh.metrics.textnorm import normalize_text as norm

    class CTCFeatureTrainer(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.asr = model
            self.norm_type = model.cfg.preprocessor.get("normalize", "per_feature")

        def training_step(self, batch, _idx):
            x, xl, y, yl = batch
            x = normalise_feats(x, xl, self.norm_type)
            log_probs, enc_len, _ = self.asr(processed_signal=x, processed_signal_length=xl)
            loss = self.asr.loss(log_probs=log_probs, targets=y, input_lengths=enc_len, target_lengths=yl)
            self.log("train_loss", loss, prog_bar=True, on_step=True, batch_size=x.shape[0])
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=True, on_step=True)
            if not sys.stderr.isatty() and self.global_step % 50 == 0:
                log.info("step %d: loss %.2f lr %.2e", self.global_step, float(loss.detach()),
                         self.trainer.optimizers[0].param_groups[0]["lr"])
            return loss

        def on_train_epoch_end(self):
            if not val_items:
                return
            import jiwer

            self.asr.eval()
            hyps, refs = [], []
            with torch.inference_mode():
                for i in range(0, len(val_items), 32):
                    chunk = val_items[i : i + 32]
                    x, xl = pad_batch([f for f, _ in chunk])
                    x = normalise_feats(x.to(self.device), xl.to(self.device), self.norm_type)
                    log_probs, enc_len, _ = self.asr(processed_signal=x, processed_signal_length=xl.to(self.device))
                    out = self.asr.decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=enc_len)
                    hyps += [norm(h if isinstance(h, str) else h.text) for h in out]
                    refs += [r for _, r in chunk]
            self.asr.train()
            wer = jiwer.wer(refs, hyps)
            cer = jiwer.cer(refs, hyps)
            self.log("val_wer", wer, prog_bar=True)
            self.log("val_cer", cer, prog_bar=True)
            log.info("epoch %d: dev WER %.3f CER %.3f (%d utts); e.g. REF %r HYP %r",
                     self.current_epoch, wer, cer, len(refs), refs[0], hyps[0])

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.asr.parameters(), lr=float(train_cfg["lr"]),
                                    betas=(0.9, 0.98), weight_decay=float(train_cfg["weight_decay"]))
            warm = int(train_cfg["warmup_steps"])
            floor = float(train_cfg["min_lr_ratio"])
            by_time = str(train_cfg.get("schedule", "steps")) == "time"
            budget_s = 60.0 * float(train_cfg["max_minutes"])
            t_start = time.time()

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                if by_time:  # anneal over the wall-clock budget (machine-dependent, always finishes annealed)
                    p = min(1.0, (time.time() - t_start) / budget_s)
                else:
                    p = min(1.0, (step - warm) / max(1, total_steps - warm))
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return CTCFeatureTrainer()


DEFAULT_TRAIN = {"seed": 0, "max_minutes": 25.0, "max_epochs": 200, "batch_max_frames": 24000, "batch_size": 96,
                 "lr": 2e-3, "warmup_steps": 200, "min_lr_ratio": 0.05, "weight_decay": 1e-3, "grad_clip": 5.0,
                 "num_threads": 2, "num_val_utts": 100, "est_steps_per_s": None, "schedule": "steps", "accelerator": "auto",
                 "devices": 1, "num_nodes": 1, "precision": "32-true"}


def train_asr(cfg: Mapping[str, Any], train_feats: str | Path, exp_dir: str | Path,
              valid_feats: str | Path | None = None) -> Path:
    """Train the reference ASR; returns the path of ``exp_dir/model.nemo``. Resumes from
    ``exp_dir/checkpoints/last.ckpt`` when present. ``cfg`` has ``model``, ``tokenizer``, ``train``."""
    import lightning.pytorch as pl

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    tcfg = {**DEFAULT_TRAIN, **dict(cfg.get("train", {}))}
    save_config({**dict(cfg), "train": tcfg}, exp_dir / "config.yaml")
    torch.set_num_threads(int(tcfg["num_threads"]))
    pl.seed_everything(int(tcfg["seed"]), workers=True)

    texts = read_kv(Path(train_feats) / "text", allow_empty_value=True)
    tok_dir = exp_dir / "tokenizer"
    if not (tok_dir / "tokenizer.model").is_file():
        tk = dict(cfg.get("tokenizer", {}))
        train_tokenizer([normalize_text(t) for t in texts.values() if normalize_text(t)], tok_dir,
                        vocab_size=int(tk.get("vocab_size", 128)), model_type=str(tk.get("model_type", "unigram")))
    model = build_model(cfg["model"], tok_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("reference ASR: %s, %.2f M parameters", type(model).__name__, n_params / 1e6)

    ds = FeatTextDataset(train_feats, model.tokenizer)
    sampler = BucketBatchSampler(ds.frames, int(tcfg["batch_max_frames"]), int(tcfg["batch_size"]), int(tcfg["seed"]))
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)
    val_items = None
    if valid_feats is not None and int(tcfg["num_val_utts"]) > 0:
        vds = FeatTextDataset(valid_feats, model.tokenizer)
        pick = np.random.default_rng(0).permutation(len(vds))[: int(tcfg["num_val_utts"])]
        val_items = [(vds[i][0], vds.text[i]) for i in sorted(pick)]
    # the schedule's horizon: epochs that fit into the budget, estimated from throughput if given
    total_steps = len(sampler) * int(tcfg["max_epochs"])
    if tcfg.get("est_steps_per_s"):
        total_steps = min(total_steps, int(float(tcfg["est_steps_per_s"]) * 60 * float(tcfg["max_minutes"])))
    module = _lightning_module(model, tcfg, total_steps, val_items)

    ckpt_dir = exp_dir / "checkpoints"
    ckpt_cb = pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_epochs=1)
    logger = pl.loggers.CSVLogger(str(exp_dir), name="logs")
    trainer = pl.Trainer(
        max_epochs=int(tcfg["max_epochs"]), max_time={"minutes": float(tcfg["max_minutes"])},
        accelerator=tcfg["accelerator"], devices=tcfg["devices"], num_nodes=int(tcfg["num_nodes"]),
        precision=tcfg["precision"], gradient_clip_val=float(tcfg["grad_clip"]), callbacks=[ckpt_cb],
        logger=logger, enable_checkpointing=True, log_every_n_steps=10, num_sanity_val_steps=0,
        use_distributed_sampler=False, enable_model_summary=False, default_root_dir=str(exp_dir),
        enable_progress_bar=sys.stderr.isatty(),  # logs (run.pl, Slurm) get the per-epoch lines instead
    )
    resume = ckpt_dir / "last.ckpt"
    t0 = time.time()
    trainer.fit(module, train_dataloaders=loader, ckpt_path=str(resume) if resume.is_file() else None)
    elapsed = time.time() - t0
    out = exp_dir / "model.nemo"
    if trainer.is_global_zero:
        model.save_to(str(out))
        info = {"params": n_params, "epochs": trainer.current_epoch, "steps": trainer.global_step,
                "train_seconds": round(elapsed, 1), "train_utts": len(ds),
                "train_hours": round(sum(ds.frames) / 100 / 3600, 3),
                "val_wer": float(trainer.callback_metrics.get("val_wer", float("nan"))),
                "val_cer": float(trainer.callback_metrics.get("val_cer", float("nan")))}
        (exp_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
        log.info("saved %s: %s", out, info)
    return out
