"""Synthesis jobs of the synthetic corpus: the worker, the process pool and resuming.

One espeak-ng engine per process (:func:`_engine`); :func:`synthesize_all` spreads utterances over
``num_jobs`` spawned processes. ``wav_dir/<set>/.prepare_mini.json`` records a fingerprint of
everything that determines the set's audio: :func:`synthesize_set` re-run with the same fingerprint
keeps the wavs that exist (they were written atomically) and synthesises only the missing ones.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence

from specenh.data.synthetic.constants import GENERATOR_VERSION
from specenh.data.synthetic.espeak import Espeak, EspeakError, espeak_paths
from specenh.data.synthetic.plan import UttSpec
from specenh.data.synthetic.waveform import MARGIN_S, PEAK_DBFS, postprocess

log = logging.getLogger(__package__)  # "specenh.data.synthetic", the logger of the former single module

_ENGINE: Espeak | None = None


def _engine() -> Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak(*espeak_paths())
    return _ENGINE


def synthesize_utterance(spec: UttSpec, sample_rate: int) -> int:
    """Synthesise, post-process and write one wav; returns its number of samples."""
    from specenh.data.audio import write_wav

    eng = _engine()
    pcm = eng.synthesize(spec)
    try:
        wave = postprocess(pcm, eng.sample_rate, sample_rate)
    except ValueError as e:
        raise EspeakError(f"utterance {spec.utt}: {e} ({spec.voice}, {spec.tts_text!r})") from None
    write_wav(spec.wav, wave, sample_rate)
    return len(wave)


def _work(args: tuple[list[UttSpec], int]) -> list[tuple[str, int]]:
    specs, sample_rate = args
    return [(s.utt, synthesize_utterance(s, sample_rate)) for s in specs]


def _chunks(items: Sequence[UttSpec], size: int) -> Iterator[list[UttSpec]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def synthesize_all(specs: Sequence[UttSpec], sample_rate: int, num_jobs: int, desc: str = "") -> dict[str, int]:
    """Synthesise ``specs`` with ``num_jobs`` processes (one espeak instance each); utt -> samples."""
    from tqdm import tqdm

    out: dict[str, int] = {}
    if not specs:
        return out
    tasks = [(c, sample_rate) for c in _chunks(specs, 16)]
    with tqdm(total=len(specs), desc=desc, unit="utt", disable=None) as bar:
        if num_jobs <= 1:
            for t in tasks:
                for utt, n in _work(t):
                    out[utt] = n
                bar.update(len(t[0]))
        else:
            # spawn: a fresh interpreter per job, never a copy of a parent's library state or threads
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(num_jobs) as pool:
                for res in pool.imap_unordered(_work, tasks):
                    for utt, n in res:
                        out[utt] = n
                    bar.update(len(res))
    return out



_MARKER = ".prepare_mini.json"


def _fingerprint(specs: Sequence[UttSpec], sample_rate: int, espeak_version: str) -> str:
    h = hashlib.sha256()
    h.update(f"v{GENERATOR_VERSION} sr={sample_rate} espeak={espeak_version} margin={MARGIN_S} "
             f"peak={PEAK_DBFS}\n".encode())
    for s in specs:  # the folder is left out: a moved wav dir stays valid
        h.update(json.dumps(asdict(s) | {"wav": Path(s.wav).name}, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_marker(path: Path, fingerprint: str, complete: bool) -> None:
    from specenh.utils.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "complete": complete}) + "\n")


def _wav_samples(path: str) -> int:
    import soundfile as sf

    return sf.info(path).frames


def synthesize_set(split: str, specs: Sequence[UttSpec], set_wav_dir: Path, sample_rate: int,
                   num_jobs: int) -> dict[str, int]:
    """Make sure every wav of the set exists; resume from a previous run with the same plan."""
    eng_version = _engine().version
    fp = _fingerprint(specs, sample_rate, eng_version)
    marker_path = set_wav_dir / _MARKER
    marker = _read_marker(marker_path)
    set_wav_dir.mkdir(parents=True, exist_ok=True)
    if marker.get("fingerprint") == fp:
        todo = [s for s in specs if not Path(s.wav).is_file()]
        if marker.get("complete") and not todo:
            log.info("%s: all %d wavs already there (%s), nothing to synthesise", split, len(specs), set_wav_dir)
        elif todo:
            log.info("%s: resuming, %d of %d wavs missing", split, len(todo), len(specs))
    else:
        todo = list(specs)
        _write_marker(marker_path, fp, complete=False)
    samples = synthesize_all(todo, sample_rate, num_jobs, desc=f"synth {split}")
    for s in specs:
        if s.utt not in samples:
            samples[s.utt] = _wav_samples(s.wav)
    _write_marker(marker_path, fp, complete=True)
    return samples
