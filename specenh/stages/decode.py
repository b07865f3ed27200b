"""Stage 5: enhancement with a front-end, zero-shot decoding with the frozen ASR, scoring.

Per job (``--nj N --job J``) the job's chunk of utterances is read from the stage-3 feature dir
(log-mel front-ends) or from its ``wav.scp`` (waveform front-ends, whose output goes through the
ASR's feature extractor), enhanced in length-sorted batches, decoded, and written to
``out_dir/hyp.J``. The merge writes ``hyp`` and scores it against ``text`` (``scoring/``: WER/CER
with bootstrap CIs, sclite-like ``result.txt``, NeMo-style ``hyp.jsonl``) and ``decode_info.json``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from specenh.asr.base import FrozenASR, load_asr
from specenh.data.kaldi import write_kv
from specenh.features.io import frame_chunks, length_sorted_batches, read_utt2num_frames
from specenh.frontends.base import FrontEnd, parse_options, resolve
from specenh.stages.decode_merge import merge_and_score  # noqa: F401  (re-exported)
from specenh.stages.batch_enhancer import BatchEnhancer
from specenh.utils.done import Marker, fingerprint
from specenh.utils.io import split_for_job

log = logging.getLogger(__name__)


def decode_utts(feats_dir: str | Path, frontend: FrontEnd, asr: FrozenASR, utts: list[str], *,
                batch_size: int = 32, clean_feats_dir: str | Path | None = None,
                device: str = "cpu", choices: dict[str, str] | None = None,
                candidates: dict[str, dict] | None = None,
                batch_frames: int | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """Hypotheses for ``utts`` and timing {audio_s, enhance_s, decode_s}. Batches: length-sorted, at most
    ``batch_size`` utterances and (``batch_frames``) padded frames; decoding is batch-invariant, so neither
    changes a hypothesis.

    A front-end with several candidate outputs per utterance (``auto``'s members, an observation-adding
    grid) is decoded once per candidate, and each utterance keeps the hypothesis of the candidate the
    frozen ASR is most confident about (:meth:`FrozenASR.decode_with_confidence`; ``auto`` keeps its first
    member unless another beats it by its ``margin``, :func:`~specenh.frontends.auto.select_by_confidence`);
    ``choices`` (if given) receives the chosen candidate's label per utterance and ``candidates`` every
    candidate's label, confidence and hypothesis (``{utt: {"labels", "conf", "hyps"}}``), from which a
    selection rule can be re-scored without decoding again.
    """
    margin = float(getattr(frontend, "margin", 0.0))
    first_look = getattr(frontend, "first_look", None)
    enh = BatchEnhancer(feats_dir, frontend, asr.feat_config, clean_feats_dir=clean_feats_dir, device=device)
    n2f = enh.n2f
    hyps: dict[str, str] = {}
    t_enh = t_dec = 0.0
    for batch in tqdm(list(length_sorted_batches({u: n2f[u] for u in utts}, batch_size, batch_frames or None)),
                      desc="decode",
                      disable=None, leave=False):
        t0 = time.perf_counter()
        cands = enh.candidates(batch)
        t1 = time.perf_counter()
        if len(cands) == 1:
            texts = decode_in_calls(asr, cands[0][1], cands[0][2])
        else:
            texts, best, conf, outs = decode_and_choose(asr, cands, margin, first_look=first_look)
            if choices is not None:
                choices.update({u: cands[k][0] for u, k in zip(batch, best)})
            if candidates is not None:  # null: a candidate the first look did not decode
                labels = [lab for lab, _, _ in cands]
                candidates.update({u: {"labels": labels, "conf": [None if c != c else round(float(c), 6)
                                                                  for c in conf[:, i].tolist()],
                                       "hyps": [o[0][i] for o in outs]} for i, u in enumerate(batch)})
        t_dec += time.perf_counter() - t1
        t_enh += t1 - t0
        for u, t in zip(batch, texts):
            hyps[u] = t
    audio_s = sum(n2f[u] for u in utts) * asr.feat_config.hop_length / asr.feat_config.sample_rate
    return hyps, {"audio_s": audio_s, "enhance_s": t_enh, "decode_s": t_dec}


#: padded frames (10 ms) per ASR call when candidates are decoded together: a batch of 3-minute candidates goes
#: to the ASR one at a time (attention memory grows with the square of the length), short ones up to max_batch.
#: 2 cores, egs/mini's Conformer: 372x real time in calls of 8000 frames, 362x at 16000, 277x at 32000
MAX_DECODE_FRAMES = 16000


def decode_in_calls(asr: FrozenASR, y: torch.Tensor, yl: torch.Tensor, max_frames: int = MAX_DECODE_FRAMES
                    ) -> list[str]:
    """``asr.decode`` of a batch ``y [B, D, T]`` (lengths ``yl [B]``, longest first as stage 5 sorts them) in calls
    of at most ``max_frames`` padded frames, each padded to its own longest: the same texts (decoding is
    batch-invariant), less padding and smaller activations than one call for the whole batch."""
    texts: list[str] = []
    for a, b in frame_chunks([int(n) for n in yl.tolist()], max_frames):
        texts += asr.decode(y[a:b, ..., : int(yl[a:b].max())], yl[a:b])
    return texts


def decode_and_choose(asr: FrozenASR, cands: list[tuple[str, torch.Tensor, torch.Tensor]], margin: float = 0.0,
                      max_batch: int = 64, first_look: float | None = None, max_frames: int = MAX_DECODE_FRAMES):
    """Decode every candidate of a batch and choose per utterance, as stage 5 and enhance-audio both do.

    cands: ``[(label, feats [B, D, T], lengths [B])]`` (K candidates, the first is the fallback). An utterance's
    candidate equal to an earlier candidate of the same utterance (observation adding with alpha 0, bwe on
    full-band speech: the input) is decoded once and shares its text and confidence; the others go to the ASR
    together, sorted by length, in calls of up to ``max_batch`` utterances and ``max_frames`` padded frames (at
    least one utterance).
    ``first_look`` (``auto``'s option, :func:`~specenh.frontends.auto.first_look_threshold`): the fallback is
    decoded first, and the utterances confident enough in it keep it without the other candidates being
    decoded; their confidences are NaN and texts None. Returns (texts of the chosen candidates [B], chosen
    indices [B], confidences [K, B], per candidate (texts [B], conf [B]))."""
    from specenh.frontends.auto import first_look_threshold, select_by_confidence

    K, B = len(cands), int(cands[0][1].shape[0])
    src = first_equal_rows(cands)
    texts: list[list] = [[None] * B for _ in range(K)]
    conf = torch.full((K, B), float("nan"))  # in the ASR's dtype once it has answered

    def run(items: list[tuple[int, int]]) -> None:
        nonlocal conf
        if items:
            t, c = _decode_items(asr, cands, items, max_batch, max_frames)
            conf = conf.to(c.dtype)
            conf[tuple(zip(*items))] = c.cpu()
            for (k, i), h in zip(items, t):
                texts[k][i] = h

    own = [(k, i) for k in range(K) for i in range(B) if src[k][i] == k]  # the outputs to decode
    thr = first_look_threshold(first_look, margin)
    if thr is not None and any(k > 0 for k, _ in own):
        run([(0, i) for i in range(B)])
        look = set(i for i in range(B) if float(conf[0, i]) >= thr)
        own = [(k, i) for k, i in own if k > 0 and i not in look]
    run(own)
    for k in range(K):  # an output equal to an earlier one: its text and confidence
        for i in range(B):
            if src[k][i] != k:
                texts[k][i], conf[k, i] = texts[src[k][i]][i], conf[src[k][i], i]
    best = select_by_confidence(torch.nan_to_num(conf, nan=-1.0), margin)  # ties: the first candidate
    return [texts[k][i] for i, k in enumerate(best)], best, conf, [(texts[k], conf[k]) for k in range(K)]


def first_equal_rows(cands: list[tuple[str, torch.Tensor, torch.Tensor]]) -> list[list[int]]:
    """``[K][B]``: per candidate and utterance, the first candidate whose output for that utterance is equal
    (same length, same values), or the candidate itself."""
    src: list[list[int]] = []
    for k, (_, y, yl) in enumerate(cands):
        row = []
        for i in range(int(y.shape[0])):
            n = int(yl[i])
            row.append(next((j for j in range(k) if src[j][i] == j and int(cands[j][2][i]) == n
                             and torch.equal(y[i, ..., :n], cands[j][1][i, ..., :n])), k))
        src.append(row)
    return src


def _decode_items(asr: FrozenASR, cands: list[tuple[str, torch.Tensor, torch.Tensor]], items: list[tuple[int, int]],
                  max_batch: int, max_frames: int = MAX_DECODE_FRAMES) -> tuple[list[str], torch.Tensor]:
    """Utterance ``i`` of candidate ``k`` for each ``(k, i)`` of ``items``, all together sorted by length and cut
    into ASR calls of at most ``max_batch`` utterances and ``max_frames`` padded frames, each padded only to its
    own longest (decoding is batch-invariant: fewer, tighter calls change no hypothesis); (texts, confidences),
    one per item."""
    lens = [int(cands[k][2][i]) for k, i in items]
    order = sorted(range(len(items)), key=lambda j: (-lens[j], j))
    texts: list[str] = [""] * len(items)
    conf: torch.Tensor | None = None
    for a, b in frame_chunks([lens[j] for j in order], max_frames, max_batch):
        pick = order[a:b]
        t_max = lens[pick[0]]
        x = torch.stack([cands[items[j][0]][1][items[j][1], ..., :t_max] for j in pick])
        t, c = asr.decode_with_confidence(x, torch.tensor([lens[j] for j in pick], device=x.device))
        if conf is None:
            conf = torch.empty(len(items), dtype=c.dtype, device=c.device)
        conf[torch.tensor(pick, device=c.device)] = c
        for j, h in zip(pick, t):
            texts[j] = h
    assert conf is not None
    return texts, conf


def decode_job(feats_dir: str | Path | list, frontend: str, asr_model: str, out_dir: str | Path | list, *,
               nj: int = 1, job: int = 1, batch_size: int = 32,
               clean_feats_dir: str | Path | list | None = None, device: str = "cpu", num_threads: int = 1,
               overwrite: bool = False, frontend_opts: list[str] | None = None, runtime: str = "pytorch",
               batch_frames: int | None = None) -> None:
    """Job ``job`` of ``nj`` for one or several sets: ``feats_dir[i]`` is decoded into ``out_dir[i]``
    (with ``clean_feats_dir[i]``, or one clean dir for all). The front-end and the ASR are loaded once
    for all sets: on CPU that import and load costs more than decoding a small set. ``runtime``: ``onnx``
    runs the front-end's network in onnxruntime (:mod:`specenh.stages.runtime`)."""
    feats_dirs, out_dirs = _as_list(feats_dir), _as_list(out_dir)
    if len(feats_dirs) != len(out_dirs):
        raise ValueError(f"{len(feats_dirs)} feature dirs but {len(out_dirs)} output dirs")
    cleans = _as_list(clean_feats_dir) if clean_feats_dir is not None else [None]
    if len(cleans) == 1:
        cleans = cleans * len(feats_dirs)
    if len(cleans) != len(feats_dirs):
        raise ValueError(f"{len(feats_dirs)} feature dirs but {len(cleans)} clean feature dirs")
    todo = [(Path(f), Path(o), c) for f, o, c in zip(feats_dirs, out_dirs, cleans)
            if overwrite or not Marker(Path(o) / ".done" / f"decode.{job}").is_current(
                decode_fingerprint(asr_model, frontend, frontend_opts, feats_dir=f, nj=nj, runtime=runtime),
                f"{o} decode job {job}/{nj}")]
    if not todo:
        log.info("decode job %d/%d already done for %d set(s); skipping", job, nj, len(feats_dirs))
        return
    torch.set_num_threads(num_threads)
    from specenh.stages.runtime import with_runtime

    fe = with_runtime(resolve(frontend, parse_options(frontend_opts)), runtime, spec=frontend, threads=num_threads)
    asr = load_asr(asr_model, device=device)
    # a front-end that ignores its input (oracle) gives every condition of a set the same output: the
    # sets with the same clean dir and utterance lengths (hence the same batches) are decoded once
    seen: dict[tuple, tuple[dict[str, str], dict[str, float], Path]] = {}
    for fdir, odir, cdir in todo:
        n2f = read_utt2num_frames(fdir / "utt2num_frames")
        empty = sorted(u for u, n in n2f.items() if n <= 0)
        if empty:  # nothing to decode: scoring it as an empty hypothesis would count deletions silently
            raise ValueError(f"{fdir}/utt2num_frames: {len(empty)} utterance(s) with 0 frames (first: {empty[0]!r}); "
                             f"audio shorter than one hop: remove them from the data dir (utils/fix_data_dir.sh) "
                             f"and rerun stage 3")
        utts = split_for_job(sorted(n2f), nj, job)
        choices: dict[str, str] = {}
        cand_log: dict[str, dict] = {}
        key = (str(cdir), tuple((u, n2f[u]) for u in utts)) if not getattr(fe, "reads_input", True) else None
        if key is not None and key in seen:
            hyps, timing, first = seen[key]
            timing = {**timing, "reused_from": str(first)}
            log.info("%s: %s ignores its input; the hypotheses of %s are reused", odir, frontend, first)
        else:
            hyps, timing = decode_utts(fdir, fe, asr, utts, batch_size=batch_size, clean_feats_dir=cdir,
                                       device=device, choices=choices, candidates=cand_log, batch_frames=batch_frames)
            if key is not None:
                seen[key] = (hyps, timing, odir)
        odir.mkdir(parents=True, exist_ok=True)
        write_kv(odir / f"hyp.{job}", {u: hyps[u] for u in utts}) if utts else None
        if choices:  # which candidate each utterance got (auto's member, the alpha of a grid)
            write_kv(odir / f"choice.{job}", {u: choices[u] for u in utts})
        if cand_log:  # every candidate's confidence and hypothesis (auto's margin is tuned from these)
            write_candidates(odir / f"candidates.{job}.jsonl", {u: cand_log[u] for u in utts})
        (odir / f"timing.{job}.json").write_text(json.dumps({**timing, "runtime": runtime}) + "\n")
        Marker(odir / ".done" / f"decode.{job}").mark(
            decode_fingerprint(asr_model, frontend, frontend_opts, feats_dir=fdir, nj=nj, runtime=runtime))
        log.info("%s job %d/%d: %d utterances, %.0f s audio, enhance %.1fx RT, decode %.1fx RT", odir, job, nj,
                 len(utts), timing["audio_s"], timing["audio_s"] / max(timing["enhance_s"], 1e-9),
                 timing["audio_s"] / max(timing["decode_s"], 1e-9))


def decode_fingerprint(asr_model: str, frontend: str, frontend_opts: list[str] | None = None, *,
                       feats_dir: str | Path | None = None, nj: int | None = None, runtime: str = "pytorch") -> str:
    """What a decode depends on besides its code: the ASR and front-end specs and, for files, their size
    and modification time (for a variant or auto YAML also of the models it points to), the options, and
    the set's features, and (for a job's marker) ``nj``: which utterances job J holds. A job whose done marker holds
    another fingerprint (a retrained ASR or front-end, new features, another split) is decoded again instead of
    being skipped."""
    from specenh.utils.done import referenced_models

    files = [p for p in (asr_model, frontend) if Path(str(p)).is_file()]
    files += referenced_models(frontend)  # an inference variant's checkpoint, auto's members
    if feats_dir is not None:
        files.append(Path(feats_dir) / "feats.scp")
    settings = {"asr": str(asr_model), "frontend": str(frontend), "opts": list(frontend_opts or [])}
    if nj is not None:
        settings["nj"] = int(nj)
    if runtime != "pytorch":  # (absent for PyTorch: the markers of earlier decodes stay valid)
        settings["runtime"] = runtime
    return fingerprint(settings, inputs=files)


def write_candidates(path: str | Path, cands: dict[str, dict]) -> None:
    """One JSON line per utterance, sorted: ``{"utt", "labels", "conf", "hyps"}``."""
    with open(path, "w", encoding="utf-8") as f:
        for u in sorted(cands):
            f.write(json.dumps({"utt": u, **cands[u]}, ensure_ascii=False) + "\n")


def _is_done(marker: Path, stamp: str) -> bool:
    return Marker(marker).is_current(stamp)


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]
