"""Top level of the synthetic corpus: :func:`prepare_mini` (text, voices, plan, audio, Kaldi data dirs)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from specenh.data.kaldi import DataDir, c_sort_key, save_data_dir, write_kv
from specenh.data.synthetic.constants import SETS
from specenh.data.synthetic.espeak import check_voices, espeak_paths
from specenh.data.synthetic.grammar import generate_sentences
from specenh.data.synthetic.jobs import _engine, synthesize_set
from specenh.data.synthetic.plan import plan_set
from specenh.data.synthetic.voices import Voice, build_voices

log = logging.getLogger(__package__)  # "specenh.data.synthetic", the logger of the former single module


def prepare_mini(out_dir: str | Path, wav_dir: str | Path, *, seed: int = 0, num_train: int = 3000,
                 num_dev: int = 200, num_test: int = 300, num_jobs: int = 2,
                 sample_rate: int = 16000) -> dict[str, DataDir]:
    """Generate the synthetic corpus: Kaldi data dirs ``out_dir/{train,dev,test}`` and 16-bit mono
    wavs ``wav_dir/<set>/<utt>.wav``. Deterministic in ``seed``; resumable; returns the data dirs.

    Also writes ``spk2gender`` in each data dir and ``out_dir/voices.json`` (the voice table).
    """
    t0 = time.time()
    out_dir, wav_dir = Path(out_dir), Path(wav_dir).resolve()
    counts = {"train": num_train, "dev": num_dev, "test": num_test}
    for name, n in counts.items():
        if n < 0:
            raise ValueError(f"num_{name} must be >= 0, got {n}")
    if num_jobs < 1:
        raise ValueError(f"num_jobs must be >= 1, got {num_jobs}")
    lib_path, data_path = espeak_paths()
    voices = build_voices(seed)
    check_voices([v for vs in voices.values() for v in vs], data_path)
    sentences = generate_sentences(seed, counts)
    log.info("text: %s distinct sentences generated in %.1f s",
             " / ".join(f"{k} {len(v)}" for k, v in sentences.items()), time.time() - t0)
    _engine()  # load once here: a missing/broken library fails before any worker starts

    result: dict[str, DataDir] = {}
    for split in SETS:
        specs = plan_set(split, sentences[split], voices[split], wav_dir, seed)
        samples = synthesize_set(split, specs, wav_dir / split, sample_rate, num_jobs)
        d = DataDir(wav_scp={s.utt: s.wav for s in specs}, utt2spk={s.utt: s.spk for s in specs},
                    text={s.utt: s.text for s in specs},
                    utt2dur={s.utt: samples[s.utt] / sample_rate for s in specs})
        save_data_dir(d, out_dir / split)
        used = {s.spk for s in specs}
        write_kv(out_dir / split / "spk2gender", {v.vid: v.gender for v in voices[split] if v.vid in used})
        hours = sum(d.utt2dur.values()) / 3600
        log.info("%s: %d utterances, %d voices, %.2f h of audio", split, len(d), len(used), hours)
        result[split] = d
    _write_voice_table(out_dir / "voices.json", voices)
    log.info("synthetic corpus ready in %.1f s: %s", time.time() - t0, out_dir)
    return result


def _write_voice_table(path: Path, voices: dict[str, list[Voice]]) -> None:
    from specenh.utils.io import atomic_path

    table = [asdict(v) | {"espeak_name": v.espeak_name} for s in SETS for v in voices[s]]
    table.sort(key=lambda v: c_sort_key(v["vid"]))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(table, indent=1) + "\n")
