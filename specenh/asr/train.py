"""Reference ASR training for corpora without a pretrained model (``--asr_model train``).

A SentencePiece tokenizer is trained on the training transcripts, a NeMo ``EncDecCTCModelBPE`` is
built from ``conf/asr/*.yaml`` and trained with Lightning on the **cached stage-3 features**
(normalised exactly as the frozen model will normalise them at decode time; SpecAugment on), with
duration-bucketed batches, a short linear warm-up then cosine decay over a budget of ``train.max_steps``
optimizer steps. Seeding, the step-indexed data stream, checkpoints / resume, validation (dev WER
every ``val_every_steps``) and ``train_info.json`` come from :mod:`specenh.train.harness`.
The result is ``exp_dir/model.nemo``, which :class:`specenh.asr.FrozenASR` loads.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

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


#: the ASR trainer's own train keys (the shared ones are the harness's: seed, max_steps, warmup_steps, ...)
TRAIN_OWN = {"batch_max_frames": 24000, "batch_size": 96, "lr": 2e-3, "weight_decay": 1e-3, "num_val_utts": 100,
             "max_steps": 1300, "warmup_steps": 200, "grad_clip": 5.0, "num_threads": 2}


def _module(model, tc: Mapping[str, Any], total_steps: int, ds: "FeatTextDataset", val_items=None):
    from specenh.asr.frozen import normalise_feats
    from specenh.metrics.textnorm import normalize_text as norm
    from specenh.train.harness import EpochIndexed, HarnessModule, bucket, warmup_cosine

    class CTCFeatureTrainer(HarnessModule):
        """A NeMo CTC model trained on cached features: batches ``(x [B, D, T], x_len, y [B, U], y_len)``."""

        def __init__(self):
            super().__init__(tc, total_steps)
            self.asr = model
            self.norm_type = model.cfg.preprocessor.get("normalize", "per_feature")
            self._loss = float("nan")

        def selected_module(self) -> torch.nn.Module:
            return self.asr

        def train_dataloader(self):
            batches = bucket(ds.frames, int(tc["batch_max_frames"]), int(tc["batch_size"]))
            return torch.utils.data.DataLoader(EpochIndexed(ds, None, len(ds)),
                                               batch_sampler=self.train_sampler(batches, len(ds)),
                                               collate_fn=collate, num_workers=0)

        def training_step(self, batch, _idx):
            x, xl, y, yl = batch
            x = normalise_feats(x, xl, self.norm_type)
            log_probs, enc_len, _ = self.asr(processed_signal=x, processed_signal_length=xl)
            loss = self.asr.loss(log_probs=log_probs, targets=y, input_lengths=enc_len, target_lengths=yl)
            self.log("train_loss", loss, prog_bar=True, on_step=True, batch_size=x.shape[0])
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=True, on_step=True)
            self._loss = float(loss.detach())
            return loss

        def line(self, step: int) -> str:
            return f"loss {self._loss:.2f} lr {self.trainer.optimizers[0].param_groups[0]['lr']:.2e}"

        def validate(self) -> dict[str, float]:
            if not val_items or self.rank != 0:
                return {}
            import jiwer

            hyps, refs = [], []
            for i in range(0, len(val_items), 32):
                chunk = val_items[i : i + 32]
                x, xl = pad_batch([f for f, _ in chunk])
                x = normalise_feats(x.to(self.device), xl.to(self.device), self.norm_type)
                log_probs, enc_len, _ = self.asr(processed_signal=x, processed_signal_length=xl.to(self.device))
                out = self.asr.decoding.ctc_decoder_predictions_tensor(log_probs, decoder_lengths=enc_len)
                hyps += [norm(h if isinstance(h, str) else h.text) for h in out]
                refs += [r for _, r in chunk]
            log.info("step %d: e.g. REF %r HYP %r", self.steps_done, refs[0], hyps[0])
            return {"val_wer": float(jiwer.wer(refs, hyps)), "val_cer": float(jiwer.cer(refs, hyps))}

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.asr.parameters(), lr=float(tc["lr"]), betas=(0.9, 0.98),
                                    weight_decay=float(tc["weight_decay"]))
            return {"optimizer": opt, "lr_scheduler": warmup_cosine(opt, tc, self.total_steps)}

    return CTCFeatureTrainer()


def train_asr(cfg: Mapping[str, Any], train_feats: str | Path, exp_dir: str | Path,
              valid_feats: str | Path | None = None) -> Path:
    """Train the reference ASR for ``train.max_steps`` steps; returns the path of ``exp_dir/model.nemo``.
    Resumes from ``exp_dir/checkpoints/last.ckpt`` when present. ``cfg`` has ``model``, ``tokenizer``,
    ``train``."""
    import lightning.pytorch as pl

    from specenh.train.harness import (bucket, budget_steps, check_sections, fit, resolve_train, set_threads,
                                       write_train_info)

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    check_sections({k: v for k, v in cfg.items() if k != "train"}, {"model": {}, "tokenizer": {}}, "ASR", ())
    tcfg = resolve_train(cfg.get("train"), TRAIN_OWN, "ASR")
    save_config({**dict(cfg), "train": tcfg}, exp_dir / "config.yaml")
    set_threads(tcfg["num_threads"])
    seed = int(tcfg["seed"])
    pl.seed_everything(seed, workers=True, verbose=False)

    texts = read_kv(Path(train_feats) / "text", allow_empty_value=True)
    tok_dir = exp_dir / "tokenizer"
    if not (tok_dir / "tokenizer.model").is_file():
        tk = dict(cfg.get("tokenizer", {}))
        train_tokenizer([normalize_text(t) for t in texts.values() if normalize_text(t)], tok_dir,
                        vocab_size=int(tk.get("vocab_size", 128)), model_type=str(tk.get("model_type", "unigram")))
    torch.manual_seed(seed)  # the initial weights
    model = build_model(cfg["model"], tok_dir)
    n_params = sum(p.numel() for p in model.parameters())

    ds = FeatTextDataset(train_feats, model.tokenizer)
    n_batches = len(bucket(ds.frames, int(tcfg["batch_max_frames"]), int(tcfg["batch_size"])))
    total = budget_steps(tcfg, n_batches)
    log.info("reference ASR: %s, %.2f M parameters; %d utterances (%.2f h), %d batches/epoch, %d steps "
             "(%.1f epochs), seed %d", type(model).__name__, n_params / 1e6, len(ds), sum(ds.frames) / 360000,
             n_batches, total, total / n_batches, seed)
    val_items = None
    if valid_feats is not None and int(tcfg["num_val_utts"]) > 0:
        vds = FeatTextDataset(valid_feats, model.tokenizer)
        pick = np.random.default_rng(0).permutation(len(vds))[: int(tcfg["num_val_utts"])]
        val_items = [(vds[i][0], vds.text[i]) for i in sorted(pick)]
    module = _module(model, tcfg, total, ds, val_items)
    trainer, res = fit(module, exp_dir, config={**dict(cfg), "train": tcfg})
    out = exp_dir / "model.nemo"
    if res.already_done and out.is_file() and (exp_dir / "train_info.json").is_file():
        log.info("%s: already trained to its budget (%d steps); kept as it is", out, res.total_steps)
        return out
    if trainer.is_global_zero:
        model.save_to(str(out))
        info = write_train_info(exp_dir, module, res, params=n_params, epochs=round(res.steps / n_batches, 2),
                                batches_per_epoch=n_batches, train_utts=len(ds),
                                train_hours=round(sum(ds.frames) / 100 / 3600, 3),
                                val_wer=module.last_val.get("val_wer", float("nan")),
                                val_cer=module.last_val.get("val_cer", float("nan")))
        log.info("saved %s: %s", out, info)
    return out
