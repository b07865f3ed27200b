"""LibriSpeech (OpenSLR 12) -> Kaldi data dirs.

Standard layout: ``<root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac`` with one
``<spk>-<chapter>.trans.txt`` per chapter. Speaker-chapter is the Kaldi speaker (as in Kaldi's
recipe), so utterance ids start with their speaker id. Audio stays in flac (read by soundfile).
"""
from __future__ import annotations

import logging
from pathlib import Path

from specenh.data.kaldi import DataDir, DataDirError, save_data_dir

log = logging.getLogger(__name__)

SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean", "test-other")


def _find_subset(root: Path, subset: str) -> Path:
    for cand in (root / "LibriSpeech" / subset, root / subset):
        if cand.is_dir():
            return cand
    raise DataDirError(f"LibriSpeech subset {subset!r} not found under {root} (expected {root}/LibriSpeech/{subset})")


def prepare_librispeech_subset(root: str | Path, subset: str, out_dir: str | Path, *,
                               with_durations: bool = True) -> DataDir:
    """One subset -> ``out_dir`` (wav.scp, text, utt2spk, spk2utt, utt2dur)."""
    import soundfile as sf

    sdir = _find_subset(Path(root), subset)
    wav, text, spk, dur = {}, {}, {}, {}
    for trans in sorted(sdir.glob("*/*/*.trans.txt")):
        chapter_dir = trans.parent
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise DataDirError(f"{trans}:{lineno}: no transcript for {parts[0]!r}")
            utt, words = parts
            flac = chapter_dir / f"{utt}.flac"
            if not flac.is_file():
                raise DataDirError(f"{trans}:{lineno}: audio of utterance {utt!r} missing ({flac})")
            s, c, _ = utt.split("-")
            wav[utt], text[utt], spk[utt] = str(flac.resolve()), words.strip(), f"{s}-{c}"
            if with_durations:
                dur[utt] = sf.info(str(flac)).duration
    if not wav:
        raise DataDirError(f"no transcripts found under {sdir}")
    d = DataDir(wav_scp=wav, utt2spk=spk, text=text, utt2dur=dur if with_durations else None)
    save_data_dir(d, out_dir)
    log.info("%s: %d utterances, %d speakers -> %s", subset, len(wav), len(set(spk.values())), out_dir)
    return d


def prepare_librispeech(root: str | Path, out_dir: str | Path, subsets: list[str]) -> dict[str, DataDir]:
    """Each subset -> ``out_dir/<subset with _>`` (e.g. ``data/test_clean``)."""
    return {s: prepare_librispeech_subset(root, s, Path(out_dir) / s.replace("-", "_")) for s in subsets}
