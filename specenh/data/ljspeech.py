"""LJSpeech-1.1 -> Kaldi data dirs.

Layout: ``<root>/metadata.csv`` (``id|raw text|normalised text``, numbers spelled out in the third
column) and ``<root>/wavs/<id>.wav`` (22.05 kHz; stage 2/3 resample to 16 kHz with a log line).
One reader; the chapter prefix (``LJ001``) is used as the Kaldi speaker so that utterance ids start
with their speaker id. The split is deterministic by position in metadata.csv: the last
``num_test`` utterances are test, the ``num_dev`` before them dev, the rest train.
"""
from __future__ import annotations

import logging
from pathlib import Path

from specenh.data.kaldi import DataDir, DataDirError, save_data_dir

log = logging.getLogger(__name__)


def read_metadata(root: str | Path) -> list[tuple[str, str]]:
    """[(id, normalised text)] from metadata.csv, with errors naming the line."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        raise DataDirError(f"LJSpeech metadata not found: {path}")
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataDirError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line:
                continue
            cols = line.split("|")
            if len(cols) < 2:
                raise DataDirError(f"{path}:{lineno}: expected 'id|text|normalised text', got {line[:60]!r}")
            text = (cols[2] if len(cols) > 2 and cols[2].strip() else cols[1]).strip()
            if not text:
                raise DataDirError(f"{path}:{lineno}: utterance {cols[0]!r} has an empty transcript")
            out.append((cols[0].strip(), text))
    return out


def prepare_ljspeech(root: str | Path, out_dir: str | Path, *, num_dev: int = 100, num_test: int = 500,
                     with_durations: bool = True) -> dict[str, DataDir]:
    """Write ``out_dir/{train,dev,test}``; returns the data dirs."""
    import soundfile as sf

    root = Path(root)
    items = read_metadata(root)
    if num_dev + num_test >= len(items):
        raise DataDirError(f"{root}: {len(items)} utterances cannot give {num_dev} dev + {num_test} test and a train set")
    splits = {"train": items[: len(items) - num_dev - num_test],
              "dev": items[len(items) - num_dev - num_test : len(items) - num_test],
              "test": items[len(items) - num_test :]}
    out = {}
    for name, its in splits.items():
        wav, text, spk, dur = {}, {}, {}, {}
        for utt, t in its:
            p = root / "wavs" / f"{utt}.wav"
            if not p.is_file():
                raise DataDirError(f"{root}/metadata.csv: audio of utterance {utt!r} missing ({p})")
            wav[utt], text[utt], spk[utt] = str(p.resolve()), t, utt.split("-")[0]
            if with_durations:
                dur[utt] = sf.info(str(p)).duration
        d = DataDir(wav_scp=wav, utt2spk=spk, text=text, utt2dur=dur if with_durations else None)
        save_data_dir(d, Path(out_dir) / name)
        out[name] = d
        log.info("ljspeech %s: %d utterances", name, len(wav))
    return out
