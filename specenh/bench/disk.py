"""Disk and stage-2/3 job time of a recipe's data, precomputed vs online training pairs.

Measured on a finished precomputed run (``python -m specenh.bench.disk --recipe-dir egs/mini ...``):

- ``clean``: the clean audio files of the train, validation and test sets (``wav.scp``), needed by both;
- per degraded set ``<set>_<cond>``: its wavs and side outputs (``dump/wav``), its features
  (``dump/feats``) and its data dir (``data``), and the job seconds of its stage-2 and stage-3 jobs
  (the ``elapsed time`` of their run.pl logs; one thread per job);
- per clean set: its features (``dump/feats/<set>``).

Online (``--train_data online``) keeps the clean audio, the test sets under the test conditions and a
validation subset of ``valid_subset`` utterances under the training conditions (its share of the
validation set's bytes and job seconds, by audio duration), and the clean features of the test sets,
the subset and, when the recipe trains its own ASR, of the training and validation sets.

Extrapolation to a corpus of ``H_train`` training, ``H_valid`` validation, ``H_sub`` validation-subset
and ``H_test`` test hours, with ``C_train`` / ``C_test`` conditions, from the measured per-hour rates
``b`` (bytes of one degraded hour: wav + features + data dir, the mean over the measured training
conditions), ``f`` (bytes of one hour of clean features) and ``t2``/``t3`` (stage-2 / stage-3 job
seconds per degraded hour)::

    precomputed bytes = b (H_train + H_valid) C_train + b H_test C_test + f (H_train + H_valid + H_test)
    online bytes      = b H_sub C_train + b H_test C_test + f (H_sub + H_test) [+ f (H_train + H_valid): own ASR]
    job seconds       = (t2 + t3) x the degraded hours of the same terms (+ t3 x the clean hours)

The clean corpus itself is the same in both and left out of the extrapolation.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from specenh.data.kaldi import read_kv

GB = 2 ** 30  # GiB, as du -h counts


def du(paths: Iterable[str | Path]) -> int:
    """Bytes allocated on disk (``du``: 512-byte blocks) by the files under ``paths`` (each counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for p in paths:
        p = Path(p)
        files = [p] if p.is_file() else [Path(r) / f for r, _, fs in os.walk(p) for f in fs] if p.is_dir() else []
        for f in files:
            st = f.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def hours(data_dir: Path, utts: Iterable[str] | None = None) -> float:
    d = {u: float(v) for u, v in read_kv(data_dir / "utt2dur").items()}
    keep = d if utts is None else {u: d[u] for u in utts}
    return sum(keep.values()) / 3600.0


def job_seconds(pattern: str) -> float:
    """Sum of the ``elapsed time N seconds`` lines of the run.pl logs matching ``pattern``."""
    total = 0.0
    for f in glob.glob(pattern):
        m = re.findall(r"elapsed time (\d+) seconds", Path(f).read_text(errors="replace"))
        total += float(m[-1]) if m else 0.0
    return total


@dataclass
class Part:
    name: str
    hours: float
    wav_bytes: int      # dump/wav/<name> (+ side outputs); the clean audio for clean sets
    feat_bytes: int
    data_bytes: int
    stage2_s: float
    stage3_s: float

    @property
    def bytes(self) -> int:
        return self.wav_bytes + self.feat_bytes + self.data_bytes


def measure(recipe: Path, train_set: str, valid_set: str, test_sets: Sequence[str], train_conds: Sequence[str],
            test_conds: Sequence[str]) -> dict[str, Part]:
    """Every clean and degraded set of a finished precomputed run of ``recipe``."""
    parts: dict[str, Part] = {}
    for s in [train_set, valid_set, *test_sets]:
        wavs = read_kv(recipe / "data" / s / "wav.scp").values()
        parts[s] = Part(s, hours(recipe / "data" / s), du(wavs), du([recipe / "dump" / "feats" / s]),
                        du([recipe / "data" / s]), 0.0, job_seconds(str(recipe / "dump/feats" / s / "log/extract.*.log")))
    pairs = [(s, c) for s in (train_set, valid_set) for c in train_conds] + [(s, c) for s in test_sets for c in test_conds]
    for s, c in pairs:
        n = f"{s}_{c}"
        parts[n] = Part(n, hours(recipe / "data" / s), du([recipe / "dump" / "wav" / n]),
                        du([recipe / "dump" / "feats" / n]), du([recipe / "data" / n]),
                        job_seconds(str(recipe / "data" / n / "log/degrade.*.log")),
                        job_seconds(str(recipe / "dump/feats" / n / "log/extract.*.log")))
    return parts


def scaled(p: Part, share: float, name: str) -> Part:
    return Part(name, p.hours * share, int(p.wav_bytes * share), int(p.feat_bytes * share), int(p.data_bytes * share),
                p.stage2_s * share, p.stage3_s * share)


def layouts(parts: dict[str, Part], recipe: Path, train_set: str, valid_set: str, test_sets: Sequence[str],
            train_conds: Sequence[str], test_conds: Sequence[str], valid_subset: int, seed: int,
            own_asr: bool) -> dict[str, dict[str, float]]:
    """Totals (GB, job hours) of the precomputed and the online layouts, by kind."""
    from specenh.data.kaldi import load_data_dir
    from specenh.data.subset import subset_utts

    dev = load_data_dir(recipe / "data" / valid_set)
    sub = subset_utts(dev.utt_ids, valid_subset, seed)
    share = hours(recipe / "data" / valid_set, sub) / parts[valid_set].hours
    clean_audio = sum(parts[s].wav_bytes for s in [train_set, valid_set, *test_sets])
    tests = [parts[f"{s}_{c}"] for s in test_sets for c in test_conds]
    train_deg = [parts[f"{train_set}_{c}"] for c in train_conds]
    valid_deg = [parts[f"{valid_set}_{c}"] for c in train_conds]
    sub_deg = [scaled(p, share, p.name.replace(valid_set, f"{valid_set}_sub{valid_subset}", 1)) for p in valid_deg]

    def clean_feats(names: list[str], extra: Sequence[Part] = ()) -> tuple[int, float]:
        ps = [parts[n] for n in names] + list(extra)
        return sum(p.feat_bytes + p.data_bytes for p in ps), sum(p.stage3_s for p in ps)

    def total(deg: list[Part], cf: tuple[int, float]) -> dict[str, float]:
        return {"clean_audio_gb": clean_audio / GB, "degraded_wav_gb": sum(p.wav_bytes for p in deg) / GB,
                "degraded_feats_gb": sum(p.feat_bytes + p.data_bytes for p in deg) / GB, "clean_feats_gb": cf[0] / GB,
                "total_gb": (clean_audio + sum(p.bytes for p in deg) + cf[0]) / GB,
                "stage2_job_h": sum(p.stage2_s for p in deg) / 3600, "stage3_job_h": (sum(p.stage3_s for p in deg) + cf[1]) / 3600}

    pre = total(train_deg + valid_deg + tests, clean_feats([train_set, valid_set, *test_sets]))
    sub_clean = scaled(parts[valid_set], share, f"{valid_set}_sub{valid_subset}")
    on_clean = clean_feats(([train_set, valid_set] if own_asr else []) + list(test_sets), [sub_clean])
    onl = total(sub_deg + tests, on_clean)
    return {"precomputed": pre, "online": onl, "subset_hours": sub_clean.hours, "subset_utts": len(sub)}


def rates(parts: dict[str, Part], train_set: str, train_conds: Sequence[str], clean_sets: Sequence[str]) -> dict[str, float]:
    """Per-hour rates: b (bytes per degraded hour), f (clean-feature bytes per hour), t2/t3 (job s per hour)."""
    deg = [parts[f"{train_set}_{c}"] for c in train_conds]
    h = sum(p.hours for p in deg)
    clean = [parts[s] for s in clean_sets]
    hc = sum(p.hours for p in clean)
    return {"b": sum(p.bytes for p in deg) / h, "f": sum(p.feat_bytes + p.data_bytes for p in clean) / hc,
            "t2": sum(p.stage2_s for p in deg) / h, "t3": sum(p.stage3_s for p in deg) / h,
            "t3_clean": sum(p.stage3_s for p in clean) / hc}


def extrapolate(r: dict[str, float], *, h_train: float, h_valid: float, h_sub: float, h_test: float, c_train: int,
                c_test: int, own_asr: bool = False) -> dict[str, dict[str, float]]:
    """The module docstring's formulas: GB and job hours of stages 2+3, precomputed and online."""
    def cost(deg_h: float, clean_h: float) -> dict[str, float]:
        return {"total_gb": (r["b"] * deg_h + r["f"] * clean_h) / GB,
                "stage23_job_h": ((r["t2"] + r["t3"]) * deg_h + r["t3_clean"] * clean_h) / 3600}

    pre = cost((h_train + h_valid) * c_train + h_test * c_test, h_train + h_valid + h_test)
    onl = cost(h_sub * c_train + h_test * c_test, h_sub + h_test + ((h_train + h_valid) if own_asr else 0.0))
    return {"precomputed": pre, "online": onl}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe-dir", required=True, help="a recipe after a precomputed run (read only)")
    p.add_argument("--train-set", default="train")
    p.add_argument("--valid-set", default="dev")
    p.add_argument("--test-sets", nargs="+", default=["test"])
    p.add_argument("--train-conditions", nargs="+", required=True)
    p.add_argument("--test-conditions", nargs="+", required=True)
    p.add_argument("--valid-subset", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--own-asr", action="store_true", help="the recipe trains its ASR (clean train/dev features stay)")
    p.add_argument("--extrapolate", nargs="*", default=[], metavar="NAME:H_TRAIN:H_VALID:H_SUB:H_TEST:C_TRAIN:C_TEST",
                   help="corpora to extrapolate to, e.g. ls100:100.6:5.4:0.2:10.7:7:11")
    p.add_argument("--out", default=None, help="JSON with every figure")
    a = p.parse_args(argv)
    recipe = Path(a.recipe_dir)
    parts = measure(recipe, a.train_set, a.valid_set, a.test_sets, a.train_conditions, a.test_conditions)
    lay = layouts(parts, recipe, a.train_set, a.valid_set, a.test_sets, a.train_conditions, a.test_conditions,
                  a.valid_subset, a.seed, a.own_asr)
    r = rates(parts, a.train_set, a.train_conditions, [a.train_set, a.valid_set, *a.test_sets])
    print(f"hours: train {parts[a.train_set].hours:.3f}, {a.valid_set} {parts[a.valid_set].hours:.3f} "
          f"(subset of {lay['subset_utts']}: {lay['subset_hours']:.3f}), test "
          f"{sum(parts[s].hours for s in a.test_sets):.3f}")
    print("| layout | clean audio | degraded wavs | degraded feats | clean feats | total GiB | stage-2 job h | stage-3 job h |")
    print("|---|---|---|---|---|---|---|---|")
    for k in ("precomputed", "online"):
        t = lay[k]
        print(f"| {k} | {t['clean_audio_gb']:.2f} | {t['degraded_wav_gb']:.2f} | {t['degraded_feats_gb']:.2f} | "
              f"{t['clean_feats_gb']:.2f} | {t['total_gb']:.2f} | {t['stage2_job_h']:.3f} | {t['stage3_job_h']:.3f} |")
    print(f"rates: b {r['b'] / GB:.3f} GiB per degraded hour, f {r['f'] / GB:.3f} GiB per clean feature hour, "
          f"t2 {r['t2']:.0f} s, t3 {r['t3']:.0f} s per degraded hour, t3 {r['t3_clean']:.0f} s per clean hour")
    ext = {}
    for spec in a.extrapolate:
        name, *vals = spec.split(":")
        ht, hv, hs, hte, ct, cte = (float(v) for v in vals)
        ext[name] = extrapolate(r, h_train=ht, h_valid=hv, h_sub=hs, h_test=hte, c_train=int(ct), c_test=int(cte))
        e = ext[name]
        print(f"{name}: precomputed {e['precomputed']['total_gb']:.0f} GiB, {e['precomputed']['stage23_job_h']:.1f} job h; "
              f"online {e['online']['total_gb']:.1f} GiB, {e['online']['stage23_job_h']:.2f} job h (stages 2+3, "
              f"corpus audio not counted)")
    if a.out:
        Path(a.out).write_text(json.dumps({"parts": {k: asdict(v) for k, v in parts.items()}, "layouts": lay,
                                           "rates": r, "extrapolated": ext}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
