"""NeMo JSON-lines manifests from and to Kaldi data dirs.

One JSON object per line: ``audio_filepath`` (absolute), ``duration`` (seconds), ``text``, plus
``utt_id`` (the Kaldi utterance id) and, when features are given, ``feature_filepath`` (the
feats.scp value, e.g. ``/abs/feats.1.ark:1234``).
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator

from specenh.data.kaldi import DataDir, DataDirError, audio_duration, is_pipe, load_data_dir, read_kv, save_data_dir
from specenh.utils.io import atomic_path

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("audio_filepath", "duration")


class ManifestError(DataDirError):
    """A malformed manifest line; the message names the file and line."""


def _abs_feature_path(value: str) -> str:
    """Make the file part of ``path`` or ``path.ark:offset`` absolute, keeping the offset."""
    head, sep, offset = value.rpartition(":")
    if sep and offset.isdigit() and head:
        return f"{os.path.abspath(head)}:{offset}"
    return os.path.abspath(value)


def _manifest_entry(d: DataDir, utt: str, feats: dict[str, str] | None) -> dict[str, Any]:
    wav = d.wav_scp[utt]
    if is_pipe(wav):
        raise DataDirError(f"wav.scp: utterance {utt!r} is a command entry, which NeMo cannot read: {wav!r}")
    if d.text is not None and utt not in d.text:
        raise DataDirError(f"text: utterance {utt!r} is missing")
    if d.utt2dur is not None and utt in d.utt2dur:
        duration = d.utt2dur[utt]
    else:
        duration = audio_duration(wav, utt)
    entry: dict[str, Any] = {
        "audio_filepath": os.path.abspath(wav),
        "duration": round(duration, 4),
        "text": d.text[utt] if d.text is not None else "",
        "utt_id": utt,
    }
    if feats is not None:
        if utt not in feats:
            raise DataDirError(f"feats.scp: utterance {utt!r} is missing")
        entry["feature_filepath"] = _abs_feature_path(feats[utt])
    return entry


def data_dir_to_manifest(data_dir: str | Path, out_path: str | Path, *,
                         feats_scp: str | Path | None = None) -> int:
    """Write a NeMo manifest for every utterance of ``data_dir`` (C order); return the count.

    Durations come from ``utt2dur``, or from the audio headers where it is absent (logged).
    ``text`` is empty when the data dir has no ``text``. Raises DataDirError naming the utterance
    for command entries in wav.scp, missing transcripts or features, and unreadable audio.
    """
    d = load_data_dir(data_dir)
    if d.utt2dur is None:
        log.info("%s has no utt2dur: reading durations from the audio headers", data_dir)
    feats = read_kv(feats_scp) if feats_scp is not None else None
    entries = [_manifest_entry(d, utt, feats) for utt in d.utt_ids]
    with atomic_path(out_path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for e in entries:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
    log.info("wrote %s (%d utterances, %.2f h)", out_path, len(entries),
             sum(e["duration"] for e in entries) / 3600)
    return len(entries)


def _check_entry(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise ManifestError(f"{where}: missing key {key!r}")
    if not isinstance(entry["audio_filepath"], str) or not entry["audio_filepath"]:
        raise ManifestError(f"{where}: 'audio_filepath' must be a non-empty string")
    dur = entry["duration"]
    if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not math.isfinite(dur) or dur < 0:
        raise ManifestError(f"{where}: 'duration' must be a non-negative number, got {dur!r}")
    if "text" in entry and not isinstance(entry["text"], str):
        raise ManifestError(f"{where}: 'text' must be a string, got {type(entry['text']).__name__}")
    return entry


def read_manifest(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the entries of a JSON-lines manifest (blank lines skipped).

    Raises ManifestError (a DataDirError) naming the file and line for invalid JSON, a non-object,
    a missing ``audio_filepath``/``duration``, a bad duration or a non-string ``text``.
    """
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
            yield _check_entry(entry, where)


def manifest_to_data_dir(manifest: str | Path, data_dir: str | Path) -> DataDir:
    """Build a data dir from a manifest: ids from ``utt_id`` (else the audio file stem), speaker
    from ``speaker``/``spk`` (else the utterance id), durations into utt2dur. Returns it, written."""
    wav_scp: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2dur: dict[str, float] = {}
    for lineno, e in enumerate(read_manifest(manifest), 1):
        utt = str(e.get("utt_id") or Path(e["audio_filepath"]).stem)
        if utt in wav_scp or not utt or len(utt.split()) != 1:
            raise ManifestError(f"{manifest}: entry {lineno}: utterance id {utt!r} is duplicate or not one token")
        wav_scp[utt] = e["audio_filepath"]
        utt2spk[utt] = str(e.get("speaker", e.get("spk", utt)))
        text[utt] = e.get("text", "")
        utt2dur[utt] = float(e["duration"])
    d = DataDir(wav_scp=wav_scp, utt2spk=utt2spk, text=text, utt2dur=utt2dur)
    save_data_dir(d, data_dir)
    return d
