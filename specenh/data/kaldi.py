"""Kaldi data directories: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2dur`` (+ extras).

Every file is ``<key> <value>`` per line, sorted in C-locale (byte) order, as Kaldi tools expect.
Errors name the file and the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from specenh.utils.io import atomic_path


class DataDirError(ValueError):
    """A data directory file is malformed; the message names the file and line."""


def c_sort_key(key: str) -> bytes:
    """Sort key equal to ``LC_ALL=C sort`` on the UTF-8 bytes."""
    return key.encode("utf-8")


def read_kv(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a ``<key> <value>`` file into an insertion-ordered dict.

    Raises DataDirError on a non-UTF-8 line, a missing value, or a duplicate key.
    """
    path = Path(path)
    out: dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataDirError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: utterance {key!r} has no value")
            if key in out:
                raise DataDirError(f"{path}:{lineno}: duplicate key {key!r}")
            out[key] = value
    return out


def write_kv(path: str | Path, mapping: Mapping[str, object]) -> None:
    """Write ``<key> <value>`` lines sorted in C order, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for k in sorted(mapping, key=c_sort_key):
                f.write(f"{k} {mapping[k]}\n")


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_sort_key):
        out.setdefault(utt2spk[utt], []).append(utt)
    return out


@dataclass
class DataDir:
    """In-memory Kaldi data dir. Keys are utterance ids; ``extra`` holds other ``<utt> <value>`` files
    (e.g. ``clean.scp``, ``utt2cond``) by file name."""

    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    text: dict[str, str] | None = None
    utt2dur: dict[str, float] | None = None
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def utt_ids(self) -> list[str]:
        return sorted(self.wav_scp, key=c_sort_key)

    def __len__(self) -> int:
        return len(self.wav_scp)

    def subset(self, utts: Iterable[str]) -> "DataDir":
        keep = set(utts)
        pick = lambda d: None if d is None else {k: v for k, v in d.items() if k in keep}  # noqa: E731
        return DataDir(
            wav_scp=pick(self.wav_scp), utt2spk=pick(self.utt2spk), text=pick(self.text),
            utt2dur=pick(self.utt2dur), extra={n: pick(d) for n, d in self.extra.items()},
        )


KNOWN_FILES = ("wav.scp", "utt2spk", "spk2utt", "text", "utt2dur")


def load_data_dir(path: str | Path, extra: Iterable[str] = ()) -> DataDir:
    """Read a data dir; ``wav.scp`` and ``utt2spk`` are required, the rest optional."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"data dir not found: {path}")
    for req in ("wav.scp", "utt2spk"):
        if not (path / req).is_file():
            raise DataDirError(f"{path / req}: missing (required in a data dir)")
    text = read_kv(path / "text", allow_empty_value=True) if (path / "text").is_file() else None
    utt2dur = None
    if (path / "utt2dur").is_file():
        utt2dur = {}
        for lineno, (k, v) in enumerate(read_kv(path / "utt2dur").items(), 1):
            try:
                utt2dur[k] = float(v)
            except ValueError:
                raise DataDirError(f"{path / 'utt2dur'}:{lineno}: duration of {k!r} is not a number: {v!r}") from None
    extras = {name: read_kv(path / name) for name in extra if (path / name).is_file()}
    return DataDir(wav_scp=read_kv(path / "wav.scp"), utt2spk=read_kv(path / "utt2spk"), text=text,
                   utt2dur=utt2dur, extra=extras)


def save_data_dir(d: DataDir, path: str | Path) -> None:
    """Write every present file (sorted, atomic) and derive ``spk2utt``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_kv(path / "wav.scp", d.wav_scp)
    write_kv(path / "utt2spk", d.utt2spk)
    write_kv(path / "spk2utt", {s: " ".join(u) for s, u in spk2utt_from_utt2spk(d.utt2spk).items()})
    if d.text is not None:
        write_kv(path / "text", d.text)
    if d.utt2dur is not None:
        write_kv(path / "utt2dur", {k: f"{v:.3f}" for k, v in d.utt2dur.items()})
    for name, m in d.extra.items():
        write_kv(path / name, m)


def is_pipe(entry: str) -> bool:
    """True for a Kaldi ``wav.scp`` command entry (``sox in.flac -t wav - |``), which is not a path."""
    return entry.rstrip().endswith("|")


def audio_duration(path: str | Path, utt: str | None = None) -> float:
    """Duration in seconds from the file header (no decoding); DataDirError names the utterance.

    A wav holding less data than its header declares (truncated) is an error, not a shorter duration.
    """
    import soundfile as sf  # lazy: reading a data dir must not need libsndfile

    who = f"utterance {utt!r}, file {path}" if utt else f"file {path}"
    if is_pipe(str(path)):
        raise DataDirError(f"cannot get the duration of a command entry ({who}); write utt2dur yourself")
    from specenh.data.audio import AudioError, check_truncated

    try:
        info = sf.info(str(path))
    except Exception as e:  # LibsndfileError / RuntimeError / FileNotFoundError
        raise DataDirError(f"cannot read audio header ({who}): {e}") from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise DataDirError(f"empty audio ({who})")
    try:
        check_truncated(path, info.frames, info.samplerate, utt)
    except AudioError as e:
        raise DataDirError(str(e)) from None
    return info.frames / info.samplerate


def compute_utt2dur(path: str | Path, *, write: bool = True) -> dict[str, float]:
    """Durations of every ``wav.scp`` entry from the audio headers; writes ``path/utt2dur`` if ``write``."""
    path = Path(path)
    if not (path / "wav.scp").is_file():
        raise DataDirError(f"{path / 'wav.scp'}: missing (required in a data dir)")
    wav_scp = read_kv(path / "wav.scp")
    durs = {utt: audio_duration(wav, utt) for utt, wav in wav_scp.items()}
    if write:
        write_kv(path / "utt2dur", {k: f"{v:.3f}" for k, v in durs.items()})
    return durs
