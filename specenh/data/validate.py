"""Validate and repair Kaldi data directories.

``validate_data_dir`` checks a data dir the way downstream stages rely on it and raises one
:class:`DataDirError` listing every problem found, each naming the file and, where there is one,
the line and the utterance. ``fix_data_dir`` repairs the common problems (files out of sync,
unsorted files, empty transcripts, missing audio, and with ``check_audio`` unreadable, truncated,
empty, NaN or silent audio) by dropping the affected utterances.

Transcript length: CTC needs at least one encoder frame per output token. Without the ASR's
tokenizer at hand the check is deliberately conservative: an utterance is too short when its
feature frames (``utt2num_frames``, else ``utt2dur`` at FRAME_SHIFT_S, else the decoded audio with
``check_audio``), divided by the encoder's subsampling factor (SUBSAMPLING, rounded up), are fewer
than the words of its normalised transcript (every word is at least one token; characters would be
an upper bound and reject real data).

Files keyed by utterance are ``wav.scp``, ``utt2spk``, ``text`` and the optional ``utt2dur``,
``utt2num_frames``, ``feats.scp``, ``clean.scp``, ``vad.scp`` and any other ``utt2<word>`` file; files
keyed by speaker are ``spk2utt``, ``spk2gender`` and ``cmvn.scp``. Other files are left alone.
Paths in scp files are taken relative to the current directory, as Kaldi does. ``segments``
files (recordings cut into utterances) are not supported: wav.scp is keyed by utterance.
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from specenh.data.kaldi import DataDirError, c_sort_key, is_pipe, spk2utt_from_utt2spk, write_kv

log = logging.getLogger(__name__)

REQUIRED_FILES = ("wav.scp", "utt2spk")
#: optional files keyed by utterance, besides any ``utt2*`` file
UTT_FILES = ("text", "utt2dur", "utt2num_frames", "feats.scp", "clean.scp", "vad.scp")
#: optional files keyed by speaker (``spk2utt`` is handled on its own)
SPK_FILES = ("spk2gender", "cmvn.scp")
#: scp files whose values are files on disk that must exist
PATH_FILES = ("wav.scp", "clean.scp", "feats.scp", "vad.scp")
MAX_LISTED = 10  # utterances named per mismatch message before "... and N more"
FRAME_SHIFT_S = 0.01  # feature hop of the transcript-length check (NeMo's default window_stride)
SUBSAMPLING = 4  # encoder subsampling of the transcript-length check (conf/asr: subsampling_factor)

_ARK_OFFSET = re.compile(r"^(?P<file>.+):(?P<offset>\d+)$")
_UTT2_NAME = re.compile(r"^utt2[A-Za-z0-9_]+$")  # utt2dur, utt2cond; not utt2dur.bak or utt2dur~


# --------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Line:
    lineno: int
    key: str
    value: str


@dataclass(frozen=True)
class _Problem:
    """A line-level problem. ``kind``: utf8, empty_line, no_value, duplicate, conflict."""

    lineno: int
    key: str | None
    kind: str
    message: str


@dataclass
class _KVFile:
    """A ``<key> <value>`` file read leniently: every problem recorded, never raised."""

    path: Path
    lines: list[_Line] = field(default_factory=list)
    entries: dict[str, _Line] = field(default_factory=dict)  # first occurrence of each key
    problems: list[_Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def values(self) -> dict[str, str]:
        return {k: ln.value for k, ln in self.entries.items()}


def _decode_key(raw: bytes) -> str | None:
    """The first token of an undecodable line, if that token alone is valid UTF-8."""
    parts = raw.split(maxsplit=1)
    if not parts:
        return None
    try:
        return parts[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _scan(path: Path, *, empty_value_kind: str = "no_value") -> _KVFile:
    """Read ``path`` line by line, recording malformed lines as problems."""
    out = _KVFile(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                key = _decode_key(raw)
                who = f" (utterance {key!r})" if key else ""
                out.problems.append(_Problem(lineno, key, "utf8", f"{path}:{lineno}: not valid UTF-8{who}: "
                                             f"{e.reason} at byte {e.start}"))
                continue
            parts = line.split(maxsplit=1)
            if not parts:
                out.problems.append(_Problem(lineno, None, "empty_line", f"{path}:{lineno}: empty line"))
                continue
            key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            _add_line(out, _Line(lineno, key, value), empty_value_kind)
    return out


def _add_line(out: _KVFile, ln: _Line, empty_value_kind: str) -> None:
    where = f"{out.path}:{ln.lineno}"
    first = out.entries.get(ln.key)
    out.lines.append(ln)
    if first is not None:
        kind = "duplicate" if first.value == ln.value else "conflict"
        what = "repeated" if kind == "duplicate" else "with a different value"
        out.problems.append(_Problem(ln.lineno, ln.key, kind, f"{where}: duplicate id {ln.key!r} {what} "
                                     f"(first on line {first.lineno})"))
        return
    out.entries[ln.key] = ln
    if not ln.value:
        msg = "empty transcript" if empty_value_kind == "empty_transcript" else "no value"
        out.problems.append(_Problem(ln.lineno, ln.key, empty_value_kind, f"{where}: {msg} for utterance {ln.key!r}"))


def utt_file_names(path: str | Path) -> list[str]:
    """Optional per-utterance files present in ``path`` (known names and ``utt2*``), sorted."""
    path = Path(path)
    names = {n for n in UTT_FILES if (path / n).is_file()}
    names |= {p.name for p in path.glob("utt2*") if p.is_file() and _UTT2_NAME.match(p.name) and p.name != "utt2spk"}
    return sorted(names)


def _refuse_segments(path: Path) -> None:
    if (path / "segments").is_file():
        raise DataDirError(f"{path / 'segments'}: segments files are not supported; wav.scp must be keyed by "
                           f"utterance (cut the recordings into one file per utterance)")


def _scan_dir(path: Path, names: Iterable[str]) -> dict[str, _KVFile]:
    return {n: _scan(path / n, empty_value_kind="empty_transcript" if n == "text" else "no_value") for n in names}


def _entry_file(value: str) -> str | None:
    """The on-disk file an scp value refers to: None for a command; ``x.ark`` for ``x.ark:123``."""
    if is_pipe(value):
        return None
    m = _ARK_OFFSET.match(value)
    if m and not Path(value).exists():
        return m.group("file")
    return value


def _parse_duration(value: str) -> float | None:
    try:
        d = float(value)
    except ValueError:
        return None
    return d if math.isfinite(d) and d > 0 else None


def _parse_frames(value: str) -> int | None:
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


# ------------------------------------------------------------------------------------ validation


class _Report:
    """Collects error messages; raised as one DataDirError at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.count = 0
        self.audio_problems = False  # then the hint names fix-data-dir --check-audio

    def add(self, msg: str) -> None:
        self.errors.append(msg)
        self.count += 1

    def add_listed(self, msgs: list[str], what: str) -> None:
        """Add at most MAX_LISTED messages of one kind, then a count of the rest."""
        self.errors.extend(msgs[:MAX_LISTED])
        self.count += len(msgs)
        if len(msgs) > MAX_LISTED:
            self.errors.append(f"... and {len(msgs) - MAX_LISTED} more {what}")

    def raise_if_any(self) -> None:
        if self.errors:
            fix = "fix-data-dir --check-audio" if self.audio_problems else "fix-data-dir"
            head = f"data dir {self.path} is invalid ({self.count} problem(s)); {fix} repairs most:"
            raise DataDirError("\n  ".join([head, *self.errors]))


def _check_sorted(f: _KVFile, report: _Report) -> None:
    prev: _Line | None = None
    for ln in f.lines:
        if prev is not None and c_sort_key(ln.key) < c_sort_key(prev.key):
            report.add(f"{f.path}:{ln.lineno}: not sorted in C order: {ln.key!r} comes after {prev.key!r} "
                       f"(sort with LC_ALL=C sort, or run fix-data-dir)")
            return
        prev = ln


def _check_keys(ref: _KVFile, other: _KVFile, report: _Report) -> None:
    """Both directions of a key-set mismatch between wav.scp (``ref``) and another utterance file."""
    extra = [f"{other.path}:{ln.lineno}: utterance {ln.key!r} is not in {ref.name}"
             for k, ln in other.entries.items() if k not in ref.entries]
    missing = [f"{other.path}: utterance {k!r} ({ref.name} line {ln.lineno}) is missing"
               for k, ln in ref.entries.items() if k not in other.entries]
    report.add_listed(extra, f"utterances of {other.name} not in {ref.name}")
    report.add_listed(missing, f"utterances missing from {other.name}")


def _check_paths(f: _KVFile, report: _Report) -> None:
    msgs = []
    for k, ln in f.entries.items():
        target = _entry_file(ln.value) if ln.value else None
        if target is not None and not Path(target).exists():
            head, _, last = ln.value.rpartition(" ")
            if head and not is_pipe(ln.value) and Path(last).exists():  # "spk1 utt 7 /x.wav": the id had spaces
                msgs.append(f"{f.path}:{ln.lineno}: utterance id {k + ' ' + head!r} contains whitespace (ids end at the "
                            f"first space, so this line's id reads as {k!r}): use '_' or '-' in ids")
            else:
                msgs.append(f"{f.path}:{ln.lineno}: file of utterance {k!r} not found: {target}")
    report.add_listed(msgs, f"missing files in {f.name}")


def _check_numbers(f: _KVFile, report: _Report) -> None:
    """utt2dur: positive finite seconds; utt2num_frames: positive integers."""
    parse, what = (_parse_duration, "duration") if f.name == "utt2dur" else (_parse_frames, "frame count")
    msgs = [f"{f.path}:{ln.lineno}: {what} of utterance {k!r} is not a positive number: {ln.value!r}"
            for k, ln in f.entries.items() if ln.value and parse(ln.value) is None]
    report.add_listed(msgs, f"bad values in {f.name}")


def _check_speakers(utt2spk: _KVFile, report: _Report) -> None:
    msgs = [f"{utt2spk.path}:{ln.lineno}: speaker id of utterance {k!r} contains whitespace: {ln.value!r}"
            for k, ln in utt2spk.entries.items() if len(ln.value.split()) > 1]
    report.add_listed(msgs, "bad speaker ids")
    odd = [k for k, ln in utt2spk.entries.items() if ln.value and not k.startswith(ln.value)]
    if odd:
        log.warning("%s: %d utterance id(s) do not start with their speaker id (e.g. %r -> %r); Kaldi tools that "
                    "sort by speaker prefer they do", utt2spk.path, len(odd), odd[0], utt2spk.entries[odd[0]].value)


def _check_spk2utt(spk2utt: _KVFile, utt2spk: _KVFile, report: _Report) -> None:
    """spk2utt must list exactly the utterances utt2spk gives each speaker."""
    u2s = utt2spk.values()
    msgs: list[str] = []
    seen: set[str] = set()
    for spk, ln in spk2utt.entries.items():
        for utt in ln.value.split():
            where = f"{spk2utt.path}:{ln.lineno}"
            if utt in seen:
                msgs.append(f"{where}: utterance {utt!r} listed twice")
            elif utt not in u2s:
                msgs.append(f"{where}: utterance {utt!r} of speaker {spk!r} is not in utt2spk")
            elif u2s[utt] != spk:
                msgs.append(f"{where}: utterance {utt!r} listed under speaker {spk!r} but utt2spk says {u2s[utt]!r}")
            seen.add(utt)
    for utt, ln in utt2spk.entries.items():
        if utt not in seen:
            msgs.append(f"{spk2utt.path}: utterance {utt!r} (utt2spk line {ln.lineno}, speaker {ln.value!r}) "
                        f"is not listed")
    report.add_listed(msgs, "spk2utt inconsistencies")


def _check_spk_file(f: _KVFile, speakers: set[str], report: _Report) -> None:
    msgs = [f"{f.path}:{ln.lineno}: speaker {k!r} is not in utt2spk" for k, ln in f.entries.items()
            if k not in speakers]
    msgs += [f"{f.path}: speaker {s!r} is missing" for s in sorted(speakers, key=c_sort_key) if s not in f.entries]
    report.add_listed(msgs, f"speaker mismatches in {f.name}")


def _check_frames_vs_durations(frames: _KVFile, durs: _KVFile, report: _Report) -> None:
    """utt2num_frames must follow utt2dur at one frame rate (catches features of the wrong audio)."""
    pairs = {}
    for k, ln in frames.entries.items():
        n = _parse_frames(ln.value)
        d = _parse_duration(durs.entries[k].value) if k in durs.entries else None
        if n is not None and d is not None:
            pairs[k] = (n, d)
    if not pairs:
        return
    rate = statistics.median(n / d for n, d in pairs.values())
    msgs = [f"{frames.path}:{frames.entries[k].lineno}: utterance {k!r} has {n} frames but utt2dur says {d:.3f} s "
            f"(~{rate * d:.0f} frames at the data dir's {rate:.1f} frames/s)"
            for k, (n, d) in pairs.items() if abs(n - rate * d) > max(3.0, 0.05 * n)]
    report.add_listed(msgs, "frame-count mismatches")


def _audio_problem(path: str, utt: str, dur: float | None) -> tuple[str, str, float | None]:
    """Decode one wav.scp entry: ``(short reason, message, seconds)``; reason "" when the audio is fine.

    Problems: unreadable, truncated, empty, NaN/inf or silent audio, and a duration differing from
    ``dur`` (utt2dur) by more than 20 ms and 1 %.
    """
    from specenh.data.audio import AudioError, load_audio  # lazy: needs soundfile/numpy

    try:
        wave, sr = load_audio(path, target_sr=None, utt=utt, allow_silent=False)
    except AudioError as e:
        msg = str(e)
        return msg.split(" (", 1)[0], msg, None
    seconds = len(wave) / sr
    if dur is not None and abs(seconds - dur) > max(0.02, 0.01 * dur):
        return ("audio duration differs from utt2dur",
                f"utterance {utt!r} lasts {seconds:.3f} s in {path} but utt2dur says {dur:.3f} s "
                f"(stale utt2dur? run compute-utt2dur)", seconds)
    return "", "", seconds


def _check_audio(wav: _KVFile, durs: _KVFile | None, report: _Report) -> dict[str, float]:
    """Decode every wav.scp entry (load_audio); compare with utt2dur when present. Returns the durations."""
    msgs: list[str] = []
    seconds: dict[str, float] = {}
    for utt, ln in wav.entries.items():
        if is_pipe(ln.value):
            log.warning("%s:%d: utterance %r is a command entry; its audio is not checked", wav.path, ln.lineno, utt)
            continue
        if not ln.value or not Path(ln.value).exists():
            continue  # already reported by the path check
        dur = _parse_duration(durs.entries[utt].value) if durs is not None and utt in durs.entries else None
        reason, msg, secs = _audio_problem(ln.value, utt, dur)
        if reason:
            where = f"{durs.path}:{durs.entries[utt].lineno}" if secs is not None and durs is not None else \
                f"{wav.path}:{ln.lineno}"
            msgs.append(f"{where}: {msg}")
        if secs is not None:
            seconds[utt] = secs
    if msgs:
        report.audio_problems = True
    report.add_listed(msgs, "audio problems")
    return seconds


def _normalized_words(text: _KVFile) -> dict[str, int]:
    """utt -> number of words of its transcript after the scoring normaliser (textnorm)."""
    from specenh.metrics.textnorm import normalize_text

    return {k: len(normalize_text(ln.value).split()) for k, ln in text.entries.items() if ln.value}


def _check_text(text: _KVFile, report: _Report) -> None:
    """A transcript that the scoring normaliser empties (punctuation only) cannot be scored."""
    from specenh.metrics.textnorm import NORMALIZER_NAME

    words = _normalized_words(text)
    msgs = [f"{text.path}:{text.entries[k].lineno}: transcript of utterance {k!r} is empty after the scoring "
            f"normaliser ({NORMALIZER_NAME}): {text.entries[k].value!r}" for k, n in words.items() if n == 0]
    report.add_listed(msgs, "transcripts empty after normalisation")
    _warn_digits(text)


def _warn_digits(text: _KVFile) -> None:
    """A warning (not an error) when transcripts hold digits after normalisation: ASRs trained on
    spelled-out text (LibriSpeech, the synthetic corpus, Whisper's spoken normaliser) write "twenty three",
    so every digit string scores as errors and the WER is inflated for every front-end alike."""
    from specenh.metrics.textnorm import normalize_text

    with_digits = [(k, ln) for k, ln in text.entries.items() if ln.value and any(c.isdigit() for c in
                                                                                 normalize_text(ln.value))]
    if with_digits:
        k, ln = with_digits[0]
        log.warning("%s: %d of %d transcripts contain digits after normalisation (e.g. line %d, utterance %r: %r); "
                    "the ASR writes numbers as words, so each digit string scores as an error: spell numbers out "
                    "as the ASR's training text does", text.path, len(with_digits), len(text.entries), ln.lineno, k,
                    ln.value)


def _frames_for_check(files: dict[str, _KVFile], audio_seconds: dict[str, float]) -> dict[str, tuple[int, str]]:
    """utt -> (feature frames, where the count comes from) for the transcript-length check."""
    out: dict[str, tuple[int, str]] = {}
    for utt, secs in audio_seconds.items():
        out[utt] = (int(secs / FRAME_SHIFT_S), f"{secs:.3f} s of audio")
    if "utt2dur" in files:
        for utt, ln in files["utt2dur"].entries.items():
            d = _parse_duration(ln.value)
            if d is not None:
                out[utt] = (int(d / FRAME_SHIFT_S), f"{d:.3f} s in utt2dur")
    if "utt2num_frames" in files:
        for utt, ln in files["utt2num_frames"].entries.items():
            n = _parse_frames(ln.value)
            if n is not None:
                out[utt] = (n, "utt2num_frames")
    return out


def _too_short(words: dict[str, int], frames: dict[str, tuple[int, str]], subsampling: int) -> dict[str, str]:
    """utt -> why its audio cannot hold its transcript (see the module docstring)."""
    out = {}
    for utt, n_words in words.items():
        if utt not in frames or n_words == 0:
            continue
        n, src = frames[utt]
        enc = -(-n // max(1, subsampling))  # ceil: the generous side
        if enc < n_words:
            out[utt] = (f"{n} feature frame(s) ({src}), {enc} after {subsampling}x subsampling, cannot hold a "
                        f"{n_words}-word transcript (CTC needs at least one frame per token)")
    return out


def _check_lengths(files: dict[str, _KVFile], audio_seconds: dict[str, float], subsampling: int,
                   report: _Report) -> None:
    text = files["text"]
    short = _too_short(_normalized_words(text), _frames_for_check(files, audio_seconds), subsampling)
    msgs = [f"{text.path}:{text.entries[u].lineno}: utterance {u!r} is too short for its transcript: {why}"
            for u, why in short.items()]
    report.add_listed(msgs, "utterances too short for their transcripts")


def validate_data_dir(path: str | Path, *, require_text: bool = True, check_audio: bool = False,
                      check_sorted: bool = True, subsampling: int = SUBSAMPLING) -> None:
    """Check a Kaldi data dir; raise one DataDirError that lists every problem (file, line, utterance).

    Errors: missing ``wav.scp``/``utt2spk`` (or ``text`` when ``require_text``), empty or non-UTF-8
    lines, empty transcripts, duplicate ids, files not in C order (``check_sorted``), utterance sets
    that differ between wav.scp and any other utterance file, ``spk2utt`` not matching ``utt2spk``,
    speaker files with unknown speakers, audio/feature files missing on disk, non-positive or
    non-numeric durations and frame counts, frame counts inconsistent with durations, transcripts
    empty after the scoring normaliser (punctuation only), utterances too short for their
    transcripts (see the module docstring; ``subsampling`` is the encoder's factor), and with
    ``check_audio`` audio that cannot be decoded, is truncated, empty, NaN/inf or silent, or
    differs from ``utt2dur``. Utterance ids that do not start with their speaker id, and a missing
    ``spk2utt``, are only warnings.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"data dir not found: {path}")
    _refuse_segments(path)
    report = _Report(path)
    required = REQUIRED_FILES + (("text",) if require_text else ())
    for name in required:
        if not (path / name).is_file():
            report.add(f"{path / name}: missing (required in a data dir)")
    report.raise_if_any()

    utt_names = ["wav.scp", "utt2spk", *utt_file_names(path)]
    spk_names = [n for n in ("spk2utt", *SPK_FILES) if (path / n).is_file()]
    files = _scan_dir(path, utt_names + spk_names)
    for f in files.values():
        report.add_listed([p.message for p in f.problems], f"line problems in {f.name}")
        if check_sorted:
            _check_sorted(f, report)

    wav, utt2spk = files["wav.scp"], files["utt2spk"]
    for name in utt_names[1:]:
        _check_keys(wav, files[name], report)
    for name in PATH_FILES:
        if name in files:
            _check_paths(files[name], report)
    for name in ("utt2dur", "utt2num_frames"):
        if name in files:
            _check_numbers(files[name], report)
    if "utt2num_frames" in files and "utt2dur" in files:
        _check_frames_vs_durations(files["utt2num_frames"], files["utt2dur"], report)
    if "feats.scp" in files and "utt2num_frames" not in files:
        log.warning("%s: feats.scp without utt2num_frames; length bucketing will have to read every matrix", path)
    _check_speakers(utt2spk, report)
    if "spk2utt" in files:
        _check_spk2utt(files["spk2utt"], utt2spk, report)
    else:
        log.warning("%s: no spk2utt (fix-data-dir or utils/utt2spk_to_spk2utt.py makes it)", path)
    speakers = {ln.value for ln in utt2spk.entries.values()}
    for name in SPK_FILES:
        if name in files:
            _check_spk_file(files[name], speakers, report)
    audio_seconds = _check_audio(wav, files.get("utt2dur"), report) if check_audio else {}
    if "text" in files:
        _check_text(files["text"], report)
        _check_lengths(files, audio_seconds, subsampling, report)
    report.raise_if_any()
    log.info("%s: valid data dir (%d utterances, %d speakers)", path, len(wav.entries), len(speakers))


# ---------------------------------------------------------------------------------------- fixing


def _line_problem_reason(p: _Problem, name: str) -> str | None:
    """Why a line problem drops its utterance (None: the problem is repaired without dropping)."""
    return {
        "utf8": f"invalid UTF-8 in {name}",
        "no_value": f"no value in {name}",
        "empty_transcript": "empty transcript",
        "conflict": f"conflicting duplicate lines in {name}",
    }.get(p.kind)


def _value_reason(name: str, value: str) -> str | None:
    """Why an utterance's value in file ``name`` makes it unusable (None: fine)."""
    if name in PATH_FILES:
        target = _entry_file(value)
        if target is not None and not Path(target).exists():
            return "audio file not found" if name in ("wav.scp", "clean.scp") else f"file in {name} not found"
    elif name == "utt2dur" and _parse_duration(value) is None:
        return "invalid duration in utt2dur"
    elif name == "utt2num_frames" and _parse_frames(value) is None:
        return "invalid frame count in utt2num_frames"
    elif name == "utt2spk" and len(value.split()) > 1:
        return "invalid speaker id in utt2spk"
    return None


def _find_drops(files: dict[str, _KVFile]) -> dict[str, str]:
    """utt -> the first reason it must go, checking line problems, key sets, then values."""
    drops: dict[str, str] = {}
    for name, f in files.items():
        for p in f.problems:
            reason = _line_problem_reason(p, name)
            if p.key is not None and reason is not None:
                drops.setdefault(p.key, reason)
            elif p.kind in ("utf8", "empty_line"):
                log.warning("%s (line removed)", p.message)
    all_utts = sorted(set().union(*(f.entries for f in files.values())), key=c_sort_key)
    for name, f in files.items():
        for utt in all_utts:
            if utt not in f.entries:
                drops.setdefault(utt, f"missing from {name}")
    for name, f in files.items():
        for utt, ln in f.entries.items():
            reason = _value_reason(name, ln.value) if ln.value else None
            if reason is not None:
                drops.setdefault(utt, reason)
    return drops


def _find_content_drops(files: dict[str, _KVFile], drops: dict[str, str], *, check_audio: bool,
                        subsampling: int) -> None:
    """Add to ``drops`` what only the contents show: transcripts empty after normalisation, with
    ``check_audio`` unusable audio (each logged with its file), and utterances too short for their
    transcripts."""
    wav = files["wav.scp"]
    words = _normalized_words(files["text"]) if "text" in files else {}
    for utt, n in words.items():
        if n == 0:
            drops.setdefault(utt, "empty transcript after normalisation")
    audio_seconds: dict[str, float] = {}
    if check_audio:
        durs = files.get("utt2dur")
        for utt, ln in wav.entries.items():
            if utt in drops or not ln.value or is_pipe(ln.value):
                continue
            dur = _parse_duration(durs.entries[utt].value) if durs is not None and utt in durs.entries else None
            reason, msg, secs = _audio_problem(ln.value, utt, dur)
            if reason:
                log.warning("%s:%d: %s", wav.path, ln.lineno, msg)
                drops.setdefault(utt, reason)
            elif secs is not None:
                audio_seconds[utt] = secs
    short = _too_short(words, _frames_for_check(files, audio_seconds), subsampling)
    for utt, why in short.items():
        if utt not in drops:
            log.warning("%s: utterance %r: %s", files["text"].path, utt, why)
            drops[utt] = "too short for its transcript"


def _backup(path: Path, names: Iterable[str]) -> Path:
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name in names:
        if (path / name).is_file():
            shutil.copy2(path / name, backup / name)
    return backup


def fix_data_dir(path: str | Path, *, check_audio: bool = False, subsampling: int = SUBSAMPLING
                 ) -> dict[str, list[str]]:
    """Repair a data dir in place; return ``{reason: [dropped utterances]}``.

    Keeps only the utterances present, well-formed and usable in every utterance file (wav.scp,
    utt2spk, and text, utt2dur, utt2num_frames, feats.scp, clean.scp, ``utt2*`` when present);
    drops utterances with empty transcripts (also after the scoring normaliser), missing audio, bad
    durations, conflicting duplicate lines, transcripts too long for the audio and, with
    ``check_audio``, audio that is unreadable, truncated, empty, NaN/inf, silent or of another
    duration than utt2dur says (each logged with its file); removes repeated identical lines; sorts every file in C order; regenerates spk2utt and
    restricts speaker files to the remaining speakers. The originals are copied to ``path/.backup/``
    first. Reasons are e.g. ``"empty transcript"``, ``"missing from text"``, ``"audio file not
    found"``, ``"invalid duration in utt2dur"``, ``"silent audio"``. Raises DataDirError (changing nothing) when
    wav.scp/utt2spk are missing or no utterance would be left.
    """
    path = Path(path)
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise DataDirError(f"{path / name}: missing (required in a data dir)")
    _refuse_segments(path)
    utt_names = ["wav.scp", "utt2spk", *utt_file_names(path)]
    spk_names = [n for n in SPK_FILES if (path / n).is_file()]
    files = _scan_dir(path, utt_names)
    drops = _find_drops(files)
    _find_content_drops(files, drops, check_audio=check_audio, subsampling=subsampling)
    keep = [u for u in files["wav.scp"].entries if u not in drops]
    if not keep:
        raise DataDirError(f"{path}: no utterance would be left after fixing ({len(drops)} dropped; first: "
                           f"{next(iter(drops.items()), None)}); nothing changed")

    backup = _backup(path, [*utt_names, "spk2utt", *spk_names])
    keep_set = set(keep)
    for name, f in files.items():
        write_kv(path / name, {k: v for k, v in f.values().items() if k in keep_set})
    utt2spk = {k: v for k, v in files["utt2spk"].values().items() if k in keep_set}
    write_kv(path / "spk2utt", {s: " ".join(us) for s, us in spk2utt_from_utt2spk(utt2spk).items()})
    speakers = set(utt2spk.values())
    for name in spk_names:
        spk_file = _scan(path / name)
        write_kv(path / name, {k: v for k, v in spk_file.values().items() if k in speakers and v})

    reasons: dict[str, list[str]] = {}
    for utt in sorted(drops, key=c_sort_key):
        log.warning("%s: dropped utterance %r: %s", path, utt, drops[utt])
        reasons.setdefault(drops[utt], []).append(utt)
    log.info("%s: kept %d utterances, dropped %d; originals in %s", path, len(keep), len(drops), backup)
    return reasons
