"""``specenh enhance-audio``: a trained front-end on your own recordings.

Input: a folder of audio files (``*.wav``, ``*.flac``, ``*.ogg``, searched recursively; any sample rate,
mono or multi-channel) or a Kaldi data dir (``wav.scp``). Output: one enhanced 16 kHz (the front-end's
feature rate) wav per input, same relative path, plus ``enhance_audio.tsv`` recording for every file its
original rate, channel count, duration, what was done to it (resampled, mixed down), the candidate chosen
(``auto``'s member, the observation-adding weight; stage 5's rule and margin) with the frozen ASR's
confidence in it, and its status.

Log-mel front-ends enhance the ASR-matched log-mel and go through the project's vocoder (``--vocoder``:
fgla / gla; Griffin-Lim phase, so judge them by ear and by WER, not by waveform metrics); waveform
front-ends run on the audio directly. With ``--asr-model`` the transcripts of the input and of the output
are written side by side (``transcripts.tsv``), and front-ends that choose per utterance (``auto``, an
observation-adding grid) can choose. A file that cannot be read gets a clear error naming it and the
others go on (``--strict``: stop at the first); the exit status says whether any failed.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from specenh.data.audio import AudioError, load_audio, write_wav
from specenh.features.logmel import FeatureConfig, LogMelExtractor
from specenh.frontends.base import FrontEnd, parse_options, resolve
from specenh.stages.batch_enhancer import run_candidates, run_frontend

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
OTHER_AUDIO = (".mp3", ".m4a", ".aac", ".opus", ".wma", ".aiff", ".aif", ".mp4", ".webm")  # named when skipped


@dataclass
class Item:
    key: str          # utterance id (data dir) or relative path (folder)
    path: Path
    out: Path


def list_inputs(src: str | Path, out_dir: str | Path) -> list[Item]:
    """The files to enhance and where each goes: a data dir's ``wav.scp`` or a folder's audio files."""
    src, out_dir = Path(src), Path(out_dir)
    if (src / "wav.scp").is_file():
        from specenh.data.kaldi import read_kv

        items = [Item(u, Path(p), out_dir / f"{u}.wav") for u, p in sorted(read_kv(src / "wav.scp").items())]
        check_outputs(items)
        return items
    if not src.is_dir():
        raise FileNotFoundError(f"enhance-audio: {src} is neither a folder of audio files nor a data dir (wav.scp)")
    others = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() not in AUDIO_SUFFIXES
                    and p.suffix.lower() in OTHER_AUDIO)
    if others:
        log.warning("enhance-audio: %d file(s) skipped, not %s (convert them first, e.g. with ffmpeg): %s",
                    len(others), "/".join(AUDIO_SUFFIXES), ", ".join(str(p.relative_to(src)) for p in others[:5]))
    inside = out_dir.resolve().is_relative_to(src.resolve())
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not (inside and p.resolve().is_relative_to(out_dir.resolve())))  # not last run's outputs
    if not files:
        raise FileNotFoundError(f"enhance-audio: no {'/'.join(AUDIO_SUFFIXES)} files under {src}")
    items = [Item(str(p.relative_to(src)), p, (out_dir / p.relative_to(src)).with_suffix(".wav")) for p in files]
    check_outputs(items)
    return items


def check_outputs(items: list[Item]) -> None:
    """Refuse what would lose a file: an output that is one of the inputs (``--out-dir`` = ``--input``), or two
    inputs with one output (``a.wav`` and ``a.flac``). ValueError naming the files, before anything is written."""
    ins = {it.path.resolve() for it in items}
    clobber = [it for it in items if it.out.resolve() in ins]
    if clobber:
        raise ValueError(f"enhance-audio: the output of {clobber[0].path} would overwrite an input "
                         f"({clobber[0].out}); {len(clobber)} file(s) in all: choose an --out-dir outside --input")
    seen: dict[Path, Item] = {}
    for it in items:
        o = it.out.resolve()
        if o in seen:
            raise ValueError(f"enhance-audio: {seen[o].path} and {it.path} would both be written to {it.out}: "
                             f"rename one of them")
        seen[o] = it


def enhance_audio(src: str | Path, frontend: str, out_dir: str | Path, *, frontend_opts: list[str] | None = None,
                  asr_model: str | None = None, feature_config: FeatureConfig | None = None,
                  vocoder: str = "fgla", n_iter: int = 32, device: str = "cpu", strict: bool = False,
                  runtime: str = "pytorch") -> dict:
    """Enhance every input; returns ``{"done": n, "failed": [(key, error)], "out_dir": ...}``. ``runtime``:
    ``onnx`` runs the front-end's network in onnxruntime (:mod:`specenh.stages.runtime`)."""
    from specenh.stages.runtime import with_runtime

    out_dir = Path(out_dir)
    items = list_inputs(src, out_dir)
    fe = with_runtime(resolve(frontend, parse_options(frontend_opts)).to(device).eval(), runtime, spec=frontend,
                      threads=max(1, torch.get_num_threads()))
    asr = None
    if asr_model:
        from specenh.asr.base import load_asr

        asr = load_asr(asr_model, device=device)
    n_cands = sum(len(m.obs_alpha) if m.obs_alpha else 1 for _, m in fe.members())
    if asr is None and n_cands > 1:  # once, not file by file
        raise ValueError(f"enhance-audio: front-end {frontend!r} chooses among {n_cands} outputs per file with the "
                         f"frozen ASR's confidence: pass --asr-model (the ASR it was trained and tuned for)")
    cfg = feature_config or (asr.feat_config if asr is not None else FeatureConfig())
    extractor = LogMelExtractor(cfg).to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, str]] = []
    rows, trans = [], []
    for it in tqdm(items, desc="enhance-audio", unit="file", disable=None):
        try:
            if it.path.stat().st_size == 0:
                raise AudioError("empty file (0 bytes)")
            info = sf.info(str(it.path))
            wave, _ = load_audio(it.path, cfg.sample_rate, utt=it.key)
            if len(wave) < cfg.hop_length:
                raise AudioError(f"{info.frames} sample(s) ({1000 * info.duration:.1f} ms at {info.samplerate} Hz): "
                                 f"shorter than one {1000 * cfg.hop_length / cfg.sample_rate:.0f}-ms frame hop of the "
                                 f"ASR's features, nothing to enhance")
            y_wave, hyp_in, hyp_out, choice, conf = _enhance_one(fe, wave, it.key, extractor, cfg, asr, vocoder,
                                                                 n_iter, device)
            write_wav(it.out, y_wave, cfg.sample_rate)
        except (AudioError, ValueError, RuntimeError, OSError) as e:
            msg = f"{it.path} ({it.key}): {e}"
            if strict:
                raise RuntimeError(f"enhance-audio: {msg}") from None
            log.error("enhance-audio: %s", msg)
            failed.append((it.key, str(e)))
            rows.append([it.key, str(it.path), "", "", "", "", "", "", "failed: " + str(e).replace("\t", " ")])
            continue
        done = [f"resampled {info.samplerate}->{cfg.sample_rate} Hz" if info.samplerate != cfg.sample_rate else "",
                f"mixed {info.channels}->1 channels" if info.channels > 1 else ""]
        rows.append([it.key, str(it.path), info.samplerate, info.channels, f"{info.duration:.3f}",
                     "; ".join(d for d in done if d) or "-", choice or "-", "-" if conf is None else f"{conf:.6f}",
                     str(it.out)])
        if asr is not None:
            trans.append([it.key, hyp_in, hyp_out])
    with open(out_dir / "enhance_audio.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["key", "input", "sample_rate", "channels", "duration_s", "conversion", "choice", "confidence",
                    "output_or_status"])
        w.writerows(rows)
    if asr is not None:
        with open(out_dir / "transcripts.tsv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["key", "input", "enhanced"])
            w.writerows(trans)
    log.info("enhance-audio: %d of %d files enhanced with %s -> %s%s", len(items) - len(failed), len(items), frontend,
             out_dir, f"; {len(failed)} failed (see enhance_audio.tsv)" if failed else "")
    return {"done": len(items) - len(failed), "failed": failed, "out_dir": str(out_dir)}


#: files longer than this (seconds) log each step of their enhancement
LONG_FILE_S = 30.0


@torch.inference_mode()
def _enhance_one(fe: FrontEnd, wave, key: str, extractor: LogMelExtractor, cfg: FeatureConfig, asr, vocoder: str,
                 n_iter: int, device: str) -> tuple:
    """-> (enhanced 16 kHz wave, input transcript, output transcript, chosen candidate, its confidence) for one
    utterance. Every candidate stage 5 would decode (each member of ``auto``, waveform members through the ASR's
    feature extractor, each observation-adding weight) is built and the choice is stage 5's
    (:func:`specenh.stages.decode.decode_and_choose`, with ``auto``'s margin); a waveform candidate is written
    as it is, a log-mel one through the vocoder."""
    from specenh.stages.decode import decode_and_choose
    from specenh.vocoder import logmel_to_wave

    import time

    t0, long_file = time.perf_counter(), len(wave) > LONG_FILE_S * cfg.sample_rate

    def progress(what: str) -> None:  # a long file shows where it is (a tqdm bar only counts whole files)
        if long_file:
            log.info("enhance-audio: %s (%.0f s of audio): %s (%.0f s so far)", key, len(wave) / cfg.sample_rate, what,
                     time.perf_counter() - t0)

    w = torch.from_numpy(wave)[None].to(device)
    wl = torch.tensor([w.shape[1]], device=device)
    x, xl = extractor(w, wl)
    progress("features done; running the front-end")
    cands = []  # (label, feats [1, D, T], frames [1], (wave [1, N], samples [1]) of a waveform candidate)
    for label, m in fe.members():
        if m.domain == "wave":
            ew, ewl = run_frontend(m, w, wl, [key], device=device)
            cands.append((label, *extractor(ew, ewl), (ew, ewl)))
        else:
            for sub, y, yl in run_candidates(m, x, xl, [key], device=device):
                cands.append(("/".join(p for p in (label, sub) if p), y, yl, None))
    progress(f"{len(cands)} candidate output(s)" + ("; decoding them with the frozen ASR" if asr is not None else ""))
    hyp_in = asr.decode(x, xl)[0] if asr is not None else ""
    hyp_out, k, conf = "", 0, None
    if len(cands) > 1:
        if asr is None:
            raise ValueError(f"front-end {fe.name!r} chooses among {len(cands)} outputs with the frozen ASR: "
                             f"pass --asr-model")
        texts, best, confs, _ = decode_and_choose(asr, [c[:3] for c in cands], float(getattr(fe, "margin", 0.0)),
                                                  first_look=getattr(fe, "first_look", None))
        hyp_out, k = texts[0], best[0]
        conf = float(confs[k, 0])
    elif asr is not None:
        hyp_out = asr.decode(cands[0][1], cands[0][2])[0]
    label, y, yl, wav = cands[k]
    if wav is not None:
        ew, ewl = wav
    else:
        progress(f"chose {label or 'the output'}; vocoding it ({vocoder}, {n_iter} iterations)")
        ew, ewl = logmel_to_wave(y, yl, cfg, method=vocoder, n_iter=n_iter)
    out = ew[0, : int(ewl[0])].cpu().numpy()
    if len(out) < len(wave):  # the vocoder gives whole hops: the output is as long as the input
        out = np.pad(out, (0, len(wave) - len(out)))
    return out[: len(wave)], hyp_in, hyp_out, label, conf
