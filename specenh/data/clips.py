"""Folders of clean clips without transcripts (e.g. LibriSpeech clips) -> Kaldi data dirs, with pseudo-references.

``prepare_audio_folder(root, out_dir)`` lists every audio file under ``root`` (``.wav``/``.flac``, recursive,
sorted); the utterance id is the file stem, the speaker the part before the first ``-`` (LibriSpeech:
``<spk>-<chapter>-<utt>``) or, for ``<spk>/<id>.flac`` layouts, the parent folder's name prefixed to the id.

Such clean speech has no transcript, but a frozen ASR's transcript of the *clean* audio is an honest target for
an enhancer: what it should make the ASR hear again on the degraded copy. With ``pseudo_asr`` the ``text`` file
holds that ASR's greedy transcript of each clean clip (``text.source`` names the ASR); WERs against it measure
agreement with the ASR's clean-input output, not accuracy, and reports say so.
"""
from __future__ import annotations

import logging
from pathlib import Path

from specenh.data.kaldi import DataDir, DataDirError, save_data_dir

log = logging.getLogger(__name__)

AUDIO_EXTS = (".wav", ".flac")


def _utt_and_speaker(path: Path, root: Path) -> tuple[str, str]:
    stem = path.stem
    if "-" in stem:
        return stem, stem.split("-")[0]
    spk = path.parent.name if path.parent != root else stem
    return (f"{spk}-{stem}" if path.parent != root else stem), spk


def pseudo_transcripts(wav_scp: dict[str, str], asr_spec: str, *, batch_size: int = 16) -> dict[str, str]:
    """The frozen ASR's greedy transcript of each (clean) recording: {utt: text}."""
    import torch
    from tqdm import tqdm

    from specenh.asr.base import load_asr
    from specenh.data.audio import load_audio
    from specenh.features.logmel import LogMelExtractor

    asr = load_asr(asr_spec)
    cfg = asr.feat_config
    ext = LogMelExtractor(cfg).eval()
    utts = sorted(wav_scp)
    out: dict[str, str] = {}
    for i in tqdm(range(0, len(utts), batch_size), desc="pseudo-text", disable=None):
        chunk = utts[i:i + batch_size]
        mats = []
        for u in chunk:
            w, _ = load_audio(wav_scp[u], cfg.sample_rate, utt=u)
            with torch.no_grad():
                f, n = ext(torch.from_numpy(w)[None], torch.tensor([len(w)]))
            mats.append(f[0, :, :int(n[0])].T)
        for u, t in zip(chunk, asr.decode_batched(mats, batch_size)):
            out[u] = t
    return out


def prepare_audio_folder(root: str | Path, out_dir: str | Path, *, pseudo_asr: str | None = None,
                         max_utts: int | None = None) -> DataDir:
    """Every audio file under ``root`` -> ``out_dir`` (wav.scp, utt2spk, spk2utt, utt2dur and, with
    ``pseudo_asr``, ``text`` = that ASR's transcript of the clean clip; without it ``text`` is absent)."""
    import soundfile as sf

    root = Path(root)
    if not root.is_dir():
        raise DataDirError(f"audio folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())
    if not files:
        raise DataDirError(f"no {'/'.join(AUDIO_EXTS)} files under {root}")
    wav, spk, dur = {}, {}, {}
    for p in files:
        utt, s = _utt_and_speaker(p, root)
        if any(c.isspace() for c in utt):
            raise DataDirError(f"{p}: utterance id {utt!r} contains whitespace")
        if utt in wav:
            raise DataDirError(f"{p}: utterance id {utt!r} also names {wav[utt]}")
        wav[utt], spk[utt] = str(p.resolve()), s
    if max_utts is not None:
        keep = sorted(wav)[:max_utts]
        wav, spk = {u: wav[u] for u in keep}, {u: spk[u] for u in keep}
    for u in wav:
        try:
            dur[u] = sf.info(wav[u]).duration
        except RuntimeError as e:
            raise DataDirError(f"{wav[u]} (utterance {u}): unreadable audio: {e}") from None
    text = pseudo_transcripts(wav, pseudo_asr) if pseudo_asr else None
    if text is not None:
        empty = sorted(u for u, t in text.items() if not t.strip())
        if empty:  # nothing to recover: a clip the ASR hears as silence gives no target
            log.warning("%d clip(s) without a pseudo-reference (the ASR wrote nothing) left out: %s", len(empty),
                        ", ".join(empty[:10]))
            keep = [u for u in wav if u not in set(empty)]
            wav, spk, dur = ({u: d[u] for u in keep} for d in (wav, spk, dur))
            text = {u: text[u] for u in keep}
    d = DataDir(wav_scp=wav, utt2spk=spk, text=text, utt2dur=dur)
    save_data_dir(d, out_dir)
    if pseudo_asr:
        (Path(out_dir) / "text.source").write_text(
            f"pseudo-reference: the greedy transcript of each clean clip by {pseudo_asr}\n", encoding="utf-8")
    log.info("%s: %d utterances, %d speakers -> %s%s", root, len(wav), len(set(spk.values())), out_dir,
             f" (pseudo-references by {pseudo_asr})" if pseudo_asr else "")
    return d
