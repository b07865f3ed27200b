"""The one batch enhancer: a front-end run over a batch of utterances of a set, in either domain.

Every stage that runs a front-end goes through :func:`run_frontend` (inputs already in memory) or
:class:`BatchEnhancer` (inputs read from a stage-3 feature dir): the front-end receives the extra
inputs it declares (:meth:`~specenh.frontends.base.FrontEnd.extra_inputs`: clean features for
``oracle``, hole masks for oracle-mask ``inpaint``), so no caller branches on a front-end's name or
imports its helpers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch

from specenh.data.audio import load_audio
from specenh.data.kaldi import read_kv
from specenh.features.io import frame_chunks, load_feat, pad_batch, read_feats_scp, read_utt2num_frames
from specenh.features.logmel import LogMelExtractor
from specenh.frontends.base import BatchInputs, FrontEnd


def run_frontend(fe: FrontEnd, x: torch.Tensor, lengths: torch.Tensor, utts: list[str], *,
                 feats_dir: str | Path | None = None, num_frames: dict[str, int] | None = None,
                 clean: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
                 device: str | torch.device = "cpu",
                 choices: Mapping[str, str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``fe.enhance`` on one batch with the extra inputs it declares.

    x: log-mel ``[B, D, T]`` (log-mel front-ends) or waveforms ``[B, N]`` (wave front-ends), on ``device``;
    lengths ``[B]`` (frames or samples). Returns the enhanced batch in the front-end's domain.
    ``choices``: for a front-end with several candidate outputs (an observation-adding grid), the label
    stage 5 chose per utterance (its ``choice`` file), so later stages show what was decoded.
    """
    if choices is None:
        batch = BatchInputs(utts=list(utts), feats_dir=Path(feats_dir) if feats_dir is not None else None,
                            num_frames=dict(num_frames or {}), frames=int(x.shape[-1]), device=device, clean=clean)
        return fe.enhance(x, lengths, **fe.extra_inputs(batch))
    cands = run_candidates(fe, x, lengths, utts, feats_dir=feats_dir, num_frames=num_frames, clean=clean,
                           device=device)
    return pick_choices(cands, utts, choices, fe.name)


def pick_choices(cands: list[tuple[str, torch.Tensor, torch.Tensor]], utts: list[str],
                 choices: Mapping[str, str], name: str = "front-end") -> tuple[torch.Tensor, torch.Tensor]:
    """Per utterance the candidate ``choices[utt]`` names (labels as in stage 5's ``choice`` file), padded
    into one batch ``[B, D, T]`` with lengths ``[B]``. One candidate: it, whatever the choices say."""
    if len(cands) == 1:
        return cands[0][1], cands[0][2]
    by_label = {lab: (y, yl) for lab, y, yl in cands}
    rows = []
    for i, u in enumerate(utts):
        lab = choices.get(u)
        if lab not in by_label:
            raise ValueError(f"{name}: no stage-5 choice among {sorted(by_label)} for utterance {u!r} "
                             f"(got {lab!r}): run stage 5 for this front-end first")
        y, yl = by_label[lab]
        rows.append(y[i, ..., : int(yl[i])])
    lens = torch.tensor([int(r.shape[-1]) for r in rows], device=rows[0].device)
    out = rows[0].new_zeros(len(rows), *rows[0].shape[:-1], int(lens.max()))
    for i, r in enumerate(rows):
        out[i, ..., : r.shape[-1]] = r
    return out, lens


def run_candidates(fe: FrontEnd, x: torch.Tensor, lengths: torch.Tensor, utts: list[str], *,
                   feats_dir: str | Path | None = None, num_frames: dict[str, int] | None = None,
                   clean: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
                   device: str | torch.device = "cpu") -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Like :func:`run_frontend`, but every candidate output ``[(label, y, lengths)]`` (an observation-adding
    grid gives several; the stage chooses among them with the frozen ASR)."""
    members = fe.members()
    if len(members) > 1 or members[0][1] is not fe:  # auto: every member's candidates, labelled as in stage 5
        out = []
        for label, m in members:
            if m.domain != "logmel":
                raise ValueError(f"{fe.name}: member {label!r} works on waveforms; this stage runs log-mel inputs "
                                 f"only (stage 5 and enhance-audio run waveform members)")
            for sub, y, yl in run_candidates(m, x, lengths, utts, feats_dir=feats_dir, num_frames=num_frames,
                                             clean=clean, device=device):
                out.append(("/".join(p for p in (label, sub) if p), y, yl))
        return out
    batch = BatchInputs(utts=list(utts), feats_dir=Path(feats_dir) if feats_dir is not None else None,
                        num_frames=dict(num_frames or {}), frames=int(x.shape[-1]), device=device, clean=clean)
    return fe.candidates(x, lengths, **fe.extra_inputs(batch))


def join_candidates(parts: list[list[tuple[str, torch.Tensor, torch.Tensor]]]
                    ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The candidates of consecutive chunks of a batch as those of the whole batch: per label, the chunks'
    outputs ``[B_i, ..., T_i]`` zero-padded to the longest and stacked, lengths ``[B_i]`` concatenated."""
    if len(parts) == 1:
        return parts[0]
    out = []
    for k, (label, _, _) in enumerate(parts[0]):
        ys = [p[k][1] for p in parts]
        t = max(int(y.shape[-1]) for y in ys)
        y = torch.cat([torch.nn.functional.pad(y, (0, t - int(y.shape[-1]))) for y in ys])
        out.append((label, y, torch.cat([p[k][2] for p in parts])))
    return out


class BatchEnhancer:
    """Enhanced log-mel features for batches of utterances of one feature dir, whatever the front-end's
    domain: log-mel front-ends read ``feats.scp``; waveform front-ends read ``wav.scp`` and their output
    goes through the ASR's feature extractor. ``clean_feats_dir`` serves front-ends that declare the clean
    features. ``__call__(utts) -> (feats [B, D, T], lengths [B])``; :meth:`candidates` gives every candidate
    (each member of ``auto``, each weight of an observation-adding grid) for a stage that chooses with the
    ASR; :meth:`waves` gives a wave front-end's enhanced audio."""

    def __init__(self, feats_dir: str | Path, frontend: FrontEnd, feat_config, *,
                 clean_feats_dir: str | Path | None = None, device: str = "cpu",
                 choices: Mapping[str, str] | None = None):
        self.feats_dir = Path(feats_dir)
        self.choices = choices  # stage 5's per-utterance choice among several candidates (see run_frontend)
        self.fe = frontend.to(device).eval()
        self.device = device
        self.n2f = read_utt2num_frames(self.feats_dir / "utt2num_frames")
        members = [fe for _, fe in frontend.members()]
        domains = {fe.domain for fe in members}
        self.feats = read_feats_scp(self.feats_dir / "feats.scp") if "logmel" in domains else None
        self.wav_scp = read_kv(self.feats_dir / "wav.scp") if "wave" in domains else None
        need_clean = [fe.name for fe in members if fe.needs_clean]
        if need_clean and clean_feats_dir is None:
            raise ValueError(f"front-end {need_clean[0]!r} needs the clean features (--clean-feats-dir)")
        self.clean = read_feats_scp(Path(clean_feats_dir) / "feats.scp") if clean_feats_dir is not None else None
        self.extractor = LogMelExtractor(feat_config).to(device) if "wave" in domains else None
        self.sr = feat_config.sample_rate

    def _clean(self, utts: list[str]):
        if self.clean is None:
            return None
        return lambda: pad_batch([load_feat(self.clean, u) for u in utts])

    def __call__(self, utts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        cands = self.candidates(utts)
        if len(cands) > 1 and self.choices is not None:
            return pick_choices(cands, utts, self.choices, self.fe.name)
        if len(cands) > 1:
            raise ValueError(f"front-end {self.fe.name!r} gives {len(cands)} candidates per utterance; choosing "
                             f"needs the frozen ASR (stage 5, specenh decode)")
        return cands[0][1], cands[0][2]

    def candidates(self, utts: list[str]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """``[(label, feats [B, D, T], lengths [B])]``: one per member and observation-adding weight."""
        out = []
        x = lens = None
        for label, fe in self.fe.members():
            fe = fe.to(self.device).eval()
            if fe.domain == "logmel" and x is None:
                x, lens = pad_batch([load_feat(self.feats, u) for u in utts])
                x, lens = x.to(self.device), lens.to(self.device)
            chunk = fe.cpu_chunk_frames if torch.device(self.device).type == "cpu" else None
            cands = join_candidates([self._member_candidates(fe, utts[a:b], x, lens, a, b)
                                     for a, b in frame_chunks([self.n2f[u] for u in utts], chunk)])
            out += [("/".join(p for p in (label, sub) if p), y, yl) for sub, y, yl in cands]
        return out

    def _member_candidates(self, fe: FrontEnd, utts: list[str], x: torch.Tensor | None, lens: torch.Tensor | None,
                           a: int, b: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """One member's candidates for utterances ``a:b`` of the batch (``x``, ``lens``: the batch's log-mels)."""
        if fe.domain == "logmel":
            if (a, b) != (0, x.shape[0]):
                lens = lens[a:b]
                x = x[a:b, :, : int(lens.max())]
            return run_candidates(fe, x, lens, utts, feats_dir=self.feats_dir, num_frames=self.n2f,
                                  clean=self._clean(utts), device=self.device)
        ew, ewl = self._waves(fe, utts)
        with torch.inference_mode():
            return [("", *self.extractor(ew, ewl))]

    def waves(self, utts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """A wave front-end's enhanced audio ``[B, N]`` and lengths ``[B]`` (samples)."""
        return self._waves(self.fe, utts)

    def _waves(self, fe: FrontEnd, utts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        waves = [torch.from_numpy(load_audio(self.wav_scp[u], self.sr, utt=u)[0]) for u in utts]
        w, wl = pad_batch([v[:, None] for v in waves])
        return run_frontend(fe, w[:, 0, :].to(self.device), wl.to(self.device), utts, feats_dir=self.feats_dir,
                            num_frames=self.n2f, clean=self._clean(utts), device=self.device)
