"""Word and character error rates with per-utterance alignments and bootstrap confidence intervals.

Scoring conventions (recorded in every ``scores.json``):

* Both sides go through :func:`specenh.metrics.textnorm.normalize_text` first (or another named
  normaliser of :mod:`specenh.metrics.textnorm`, given to :func:`score`; its name is recorded).
* Alignment is jiwer's Levenshtein alignment (``jiwer.process_words`` / ``jiwer.process_characters``);
  WER = (S + D + I) / N with N the number of reference words (so WER can exceed 1).
* CER is computed on the normalised text **with the single spaces between words counted as
  characters** (the NeMo ``word_error_rate(use_cer=True)`` and ``jiwer.cer`` convention): a missed
  word boundary is one character error and N counts the spaces too. See ``CER_CONVENTION``.
* An empty reference (after normalisation) is an error: its error rate is undefined, and silently
  dropping it would change N. An empty hypothesis is valid: every reference word is a deletion.
* Rates are fractions (0.1234), never percentages; the report formats them.
* Confidence intervals: utterance-level bootstrap of the corpus rate (resample utterances with
  replacement, rate = sum(errors) / sum(reference lengths)), percentile interval.

Files written by :func:`write_results` into ``out_dir``:

``result.txt``  sclite-like: per utterance ``id:``, ``Scores: (#C #S #D #I)``, aligned ``REF:`` / ``HYP:``
                / ``Eval:`` lines (errors upper-cased, gaps ``***``), then a corpus summary block.
``ref.trn``, ``hyp.trn``  normalised text as scored, sclite trn format ``<text> (<utt>)``.
``ref.text``, ``hyp.text``  normalised text as scored, Kaldi format ``<utt> <text>``.
``hyp.jsonl``   NeMo JSON lines: ``utt_id``, ``text`` (raw reference), ``pred_text`` (raw hypothesis).
``scores.json`` the corpus numbers (schema in :meth:`ScoreResult.to_scores`); read with :func:`load_scores`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jiwer
import numpy as np

from specenh.data.kaldi import c_sort_key
from specenh.metrics.textnorm import Normalizer, get_normalizer, normalizer_info
from specenh.utils.io import atomic_path

SCORES_FORMAT_VERSION = 1
CER_CONVENTION = "characters of the normalised text including the single spaces between words (NeMo/jiwer convention)"
BOOTSTRAP_DESCRIPTION = ("utterance-level bootstrap: resample utterances with replacement, "
                         "rate = sum(errors)/sum(ref lengths), percentile interval")
_MAX_LISTED_IDS = 10
_BOOT_CHUNK_ELEMS = 4_000_000  # bound memory of the (resamples x utterances) index matrix

# one aligned position: (op, ref token or None, hyp token or None); op in C S D I
AlignedPair = tuple[str, "str | None", "str | None"]


class ScoringError(ValueError):
    """References and hypotheses cannot be scored together; the message names the utterances."""


# --------------------------------------------------------------------------------------------
# counts and results


@dataclass(frozen=True)
class ErrorCounts:
    """Per-utterance alignment counts (int arrays of equal length, one entry per utterance)."""

    hits: np.ndarray
    substitutions: np.ndarray
    deletions: np.ndarray
    insertions: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """S + D + I per utterance."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def ref_lengths(self) -> np.ndarray:
        """Reference length per utterance: C + S + D."""
        return self.hits + self.substitutions + self.deletions

    @property
    def rate(self) -> float:
        """Corpus error rate sum(S + D + I) / sum(N)."""
        return float(self.errors.sum() / self.ref_lengths.sum())

    def totals(self) -> dict[str, int]:
        """Corpus totals of every count."""
        return {"hits": int(self.hits.sum()), "substitutions": int(self.substitutions.sum()),
                "deletions": int(self.deletions.sum()), "insertions": int(self.insertions.sum()),
                "errors": int(self.errors.sum()), "num_ref": int(self.ref_lengths.sum())}


@dataclass(frozen=True)
class ScoreResult:
    """Everything :func:`score` found, in utterance order ``utt_ids`` (C-sorted)."""

    utt_ids: list[str]
    ref_norm: list[str]
    hyp_norm: list[str]
    words: ErrorCounts
    chars: ErrorCounts
    word_alignments: list[list[AlignedPair]]
    ci_wer: tuple[float, float] | None = None
    ci_cer: tuple[float, float] | None = None
    n_boot: int = 0
    alpha: float = 0.05
    seed: int = 0
    normalizer: dict[str, str] | None = None  # name/version/description; None: the default normaliser

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate

    @property
    def num_utts(self) -> int:
        return len(self.utt_ids)

    @property
    def ser(self) -> float:
        """Sentence error rate: fraction of utterances with at least one word error."""
        return float(np.mean(self.words.errors > 0))

    def to_scores(self) -> dict[str, Any]:
        """The ``scores.json`` content (JSON types only, so it equals what :func:`load_scores` reads).

        Keys: ``wer``, ``cer``, ``ser`` (fractions); ``ci_wer`` / ``ci_cer`` ([lo, hi] or null);
        ``num_utts``, ``num_ref_words``, ``num_ref_chars``; ``substitutions``, ``deletions``,
        ``insertions``, ``hits`` (word level); ``word_counts`` / ``char_counts`` (every total);
        ``bootstrap`` (n_boot, alpha, seed, method); ``normalizer`` (name, version, description);
        ``cer_convention``; ``format_version``.
        """
        w, c = self.words.totals(), self.chars.totals()
        return {
            "format_version": SCORES_FORMAT_VERSION,
            "wer": self.wer, "cer": self.cer, "ser": self.ser,
            "ci_wer": None if self.ci_wer is None else [float(x) for x in self.ci_wer],
            "ci_cer": None if self.ci_cer is None else [float(x) for x in self.ci_cer],
            "num_utts": self.num_utts, "num_ref_words": w["num_ref"], "num_ref_chars": c["num_ref"],
            "substitutions": w["substitutions"], "deletions": w["deletions"],
            "insertions": w["insertions"], "hits": w["hits"],
            "word_counts": w, "char_counts": c,
            "bootstrap": {"n_boot": self.n_boot, "alpha": self.alpha, "seed": self.seed,
                          "method": BOOTSTRAP_DESCRIPTION},
            "normalizer": self.normalizer or normalizer_info(),
            "cer_convention": CER_CONVENTION,
        }


# --------------------------------------------------------------------------------------------
# scoring


def _list_ids(ids: Iterable[str]) -> str:
    """``'a', 'b', ... (N more)`` for error messages."""
    ids = sorted(ids, key=c_sort_key)
    shown = ", ".join(repr(u) for u in ids[:_MAX_LISTED_IDS])
    more = len(ids) - _MAX_LISTED_IDS
    return shown + (f" ... ({more} more)" if more > 0 else "")


def check_keys(refs: Mapping[str, str], hyps: Mapping[str, str]) -> list[str]:
    """Utterance ids in C order; ScoringError if a reference lacks a hypothesis or vice versa."""
    missing = set(refs) - set(hyps)
    extra = set(hyps) - set(refs)
    problems = []
    if missing:
        problems.append(f"{len(missing)} reference utterance(s) have no hypothesis: {_list_ids(missing)}")
    if extra:
        problems.append(f"{len(extra)} hypothesis utterance(s) have no reference: {_list_ids(extra)}")
    if problems:
        raise ScoringError("; ".join(problems))
    if not refs:
        raise ScoringError("nothing to score: no reference utterances")
    return sorted(refs, key=c_sort_key)


def _normalise_pairs(utt_ids: Sequence[str], refs: Mapping[str, str], hyps: Mapping[str, str],
                     norm: Normalizer) -> tuple[list[str], list[str]]:
    """Normalised references and hypotheses; ScoringError naming the utterances with empty references."""
    ref_norm = [norm(refs[u]) for u in utt_ids]
    hyp_norm = [norm(hyps[u]) for u in utt_ids]
    empty = [u for u, r in zip(utt_ids, ref_norm) if not r]
    if empty:
        raise ScoringError(f"empty reference after text normalisation (error rate undefined) for "
                           f"{len(empty)} utterance(s): {_list_ids(empty)}; fix or drop them from the reference")
    return ref_norm, hyp_norm


def _counts_from_alignments(alignments: Sequence[Sequence[Any]]) -> ErrorCounts:
    """Per-utterance C/S/D/I counts from jiwer's alignment chunks."""
    n = len(alignments)
    arr = {op: np.zeros(n, dtype=np.int64) for op in ("equal", "substitute", "delete", "insert")}
    for i, chunks in enumerate(alignments):
        for ch in chunks:
            length = (ch.hyp_end_idx - ch.hyp_start_idx) if ch.type == "insert" else (ch.ref_end_idx - ch.ref_start_idx)
            arr[ch.type][i] += length
    return ErrorCounts(hits=arr["equal"], substitutions=arr["substitute"], deletions=arr["delete"],
                       insertions=arr["insert"])


def _aligned_pairs(ref: Sequence[str], hyp: Sequence[str], chunks: Sequence[Any]) -> list[AlignedPair]:
    """Expand jiwer chunks into one (op, ref_token, hyp_token) per aligned position."""
    out: list[AlignedPair] = []
    for ch in chunks:
        r = ref[ch.ref_start_idx:ch.ref_end_idx]
        h = hyp[ch.hyp_start_idx:ch.hyp_end_idx]
        if ch.type == "equal":
            out.extend(("C", a, b) for a, b in zip(r, h))
        elif ch.type == "substitute":
            out.extend(("S", a, b) for a, b in zip(r, h))
        elif ch.type == "delete":
            out.extend(("D", a, None) for a in r)
        elif ch.type == "insert":
            out.extend(("I", None, b) for b in h)
        else:  # pragma: no cover - jiwer has exactly these four
            raise ValueError(f"unknown jiwer alignment type {ch.type!r}")
    return out


def score(refs: Mapping[str, str], hyps: Mapping[str, str], *, n_boot: int = 1000, alpha: float = 0.05,
          seed: int = 0, normalizer: str | Normalizer | None = None) -> ScoreResult:
    """Score utterance-keyed hypotheses against references (WER, CER, per-utterance counts, CIs).

    Every reference id needs a hypothesis and vice versa (ScoringError listing the ids otherwise).
    An empty normalised reference raises ScoringError (a ValueError) naming the utterance; an empty
    hypothesis counts as deletions of the whole reference. ``n_boot`` resamples give the
    ``1 - alpha`` bootstrap intervals ``ci_wer`` / ``ci_cer``; ``n_boot=0`` skips them. ``normalizer``:
    a name or :class:`~specenh.metrics.textnorm.Normalizer` (default: the project's one normaliser).
    """
    norm = get_normalizer(normalizer)
    utt_ids = check_keys(refs, hyps)
    ref_norm, hyp_norm = _normalise_pairs(utt_ids, refs, hyps, norm)
    wout = jiwer.process_words(ref_norm, hyp_norm)
    cout = jiwer.process_characters(ref_norm, hyp_norm)
    words = _counts_from_alignments(wout.alignments)
    chars = _counts_from_alignments(cout.alignments)
    pairs = [_aligned_pairs(r, h, a) for r, h, a in zip(wout.references, wout.hypotheses, wout.alignments)]
    ci_wer = ci_cer = None
    if n_boot > 0:
        ci_wer = bootstrap_ci(words.errors, words.ref_lengths, n_boot=n_boot, alpha=alpha, seed=seed)
        ci_cer = bootstrap_ci(chars.errors, chars.ref_lengths, n_boot=n_boot, alpha=alpha, seed=seed)
    return ScoreResult(utt_ids=utt_ids, ref_norm=ref_norm, hyp_norm=hyp_norm, words=words, chars=chars,
                       word_alignments=pairs, ci_wer=ci_wer, ci_cer=ci_cer, n_boot=n_boot, alpha=alpha, seed=seed,
                       normalizer=norm.info())


# --------------------------------------------------------------------------------------------
# bootstrap


def _check_per_utt(ref_lens: Any, *errs: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """Validate per-utterance arrays: 1-D, same non-zero length, errors >= 0, ref lengths > 0."""
    lens = np.asarray(ref_lens, dtype=np.float64)
    arrays = [np.asarray(e, dtype=np.float64) for e in errs]
    if lens.ndim != 1 or lens.size == 0:
        raise ValueError(f"per-utterance reference lengths must be a non-empty 1-D array, got shape {lens.shape}")
    for e in arrays:
        if e.shape != lens.shape:
            raise ValueError(f"per-utterance errors have shape {e.shape}, reference lengths {lens.shape}")
        if np.any(e < 0):
            raise ValueError("per-utterance error counts must be >= 0")
    if np.any(lens <= 0):
        raise ValueError("per-utterance reference lengths must be > 0 (empty references cannot be scored)")
    return lens, arrays


def _resampled_sums(rng: np.random.Generator, n_boot: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """For ``n_boot`` resamples of the utterances (with replacement, shared by every array), the sum
    of each array over the resample. Vectorised in chunks of resamples to bound memory."""
    n = arrays[0].size
    chunk = max(1, _BOOT_CHUNK_ELEMS // n)
    sums = [np.empty(n_boot) for _ in arrays]
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for s, a in zip(sums, arrays):
            s[start:stop] = a[idx].sum(axis=1)
    return sums


def _check_boot_args(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def bootstrap_ci(per_utt_errors: Any, per_utt_ref_lengths: Any, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """``1 - alpha`` percentile confidence interval of the corpus error rate by utterance-level bootstrap.

    Each of ``n_boot`` resamples draws as many utterances as there are, with replacement, and
    computes sum(errors) / sum(reference lengths) over the draw (the corpus rate, not a mean of
    per-utterance rates); the interval is the (alpha/2, 1 - alpha/2) quantiles of those rates.
    """
    _check_boot_args(n_boot, alpha)
    lens, (errs,) = _check_per_utt(per_utt_ref_lengths, per_utt_errors)
    rng = np.random.default_rng(seed)
    e_sum, n_sum = _resampled_sums(rng, n_boot, errs, lens)
    lo, hi = np.quantile(e_sum / n_sum, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def paired_bootstrap(errs_a: Any, errs_b: Any, ref_lens: Any, n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> dict[str, Any]:
    """Paired bootstrap test of system B against system A on the same utterances (Bisani & Ney, 2004).

    Definitions (rates are corpus rates sum(errors) / sum(ref lengths)):

    * ``delta = rate_a - rate_b``: the observed improvement of B over A (> 0 means B is better).
    * Each of ``n_boot`` resamples draws utterances with replacement, **the same draw for both
      systems**, and computes ``delta*`` on it.
    * ``p_value`` = fraction of resamples with ``delta* <= 0``, i.e. where B is *not* better than A
      (ties count against B): the probability that the observed improvement is due to chance.
      ``prob_improvement = 1 - p_value`` is Bisani & Ney's "probability of improvement".
      Identical systems give ``p_value = 1``.
    * ``p_worse`` = fraction of resamples with ``delta* >= 0`` (B not worse than A): small when B is
      significantly worse. Identical systems give ``p_worse = 1`` too: a tie is neither better nor worse.
    * ``ci_delta``: ``1 - alpha`` percentile interval of ``delta*``.
    """
    _check_boot_args(n_boot, alpha)
    lens, (ea, eb) = _check_per_utt(ref_lens, errs_a, errs_b)
    rng = np.random.default_rng(seed)
    sa, sb, sn = _resampled_sums(rng, n_boot, ea, eb, lens)
    deltas = (sa - sb) / sn
    rate_a, rate_b = float(ea.sum() / lens.sum()), float(eb.sum() / lens.sum())
    p_value = float(np.mean(deltas <= 0))
    p_worse = float(np.mean(deltas >= 0))
    lo, hi = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return {
        "rate_a": rate_a, "rate_b": rate_b, "delta": rate_a - rate_b,
        "relative_improvement": (rate_a - rate_b) / rate_a if rate_a > 0 else None,
        "ci_delta": [float(lo), float(hi)],
        "p_value": p_value, "p_worse": p_worse, "prob_improvement": 1.0 - p_value,
        "n_boot": n_boot, "seed": seed, "alpha": alpha, "num_utts": int(lens.size),
        "definition": "delta = rate_a - rate_b (>0: B better); p_value = fraction of paired utterance "
                      "resamples with delta* <= 0 (B not better than A); p_worse = fraction with delta* >= 0 (B not worse)",
    }


# --------------------------------------------------------------------------------------------
# writers


def _align_columns(pairs: Sequence[AlignedPair]) -> tuple[str, str, str]:
    """sclite-style REF / HYP / Eval lines: errors upper-cased, gaps as ``***``, columns padded."""
    ref_cols, hyp_cols, eval_cols = [], [], []
    for op, r, h in pairs:
        r_txt = r if op == "C" else (r.upper() if r is not None else None)
        h_txt = h if op == "C" else (h.upper() if h is not None else None)
        width = max(len(r_txt or ""), len(h_txt or ""), 3 if (r_txt is None or h_txt is None) else 0)
        ref_cols.append((r_txt if r_txt is not None else "*" * width).ljust(width))
        hyp_cols.append((h_txt if h_txt is not None else "*" * width).ljust(width))
        eval_cols.append(("" if op == "C" else op).ljust(width))
    return " ".join(ref_cols), " ".join(hyp_cols), " ".join(eval_cols).rstrip()


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}"


def _ci_txt(ci: tuple[float, float] | None, alpha: float) -> str:
    if ci is None:
        return "(no CI)"
    return f"[{100 * (1 - alpha):g}% CI {_pct(ci[0])}, {_pct(ci[1])}]"


def format_summary(result: ScoreResult) -> str:
    """The corpus summary block of ``result.txt``."""
    w, c = result.words.totals(), result.chars.totals()
    norm = result.normalizer or normalizer_info()
    lines = [
        "=" * 24 + " SUMMARY " + "=" * 24,
        f"utterances:      {result.num_utts}",
        f"reference words: {w['num_ref']}",
        f"reference chars: {c['num_ref']}",
        f"WER: {_pct(result.wer)}% {_ci_txt(result.ci_wer, result.alpha)}  "
        f"(C={w['hits']} S={w['substitutions']} D={w['deletions']} I={w['insertions']})",
        f"CER: {_pct(result.cer)}% {_ci_txt(result.ci_cer, result.alpha)}  "
        f"(C={c['hits']} S={c['substitutions']} D={c['deletions']} I={c['insertions']})",
        f"SER: {_pct(result.ser)}%",
        f"CER convention: {CER_CONVENTION}",
        f"bootstrap: n_boot={result.n_boot} seed={result.seed}; {BOOTSTRAP_DESCRIPTION}",
        f"normaliser: {norm['name']} v{norm['version']}: {norm['description']}",
    ]
    return "\n".join(lines) + "\n"


def format_result_txt(result: ScoreResult) -> str:
    """The whole sclite-like ``result.txt``: per-utterance alignments, then the summary."""
    blocks = []
    w = result.words
    for i, utt in enumerate(result.utt_ids):
        ref_line, hyp_line, eval_line = _align_columns(result.word_alignments[i])
        blocks.append(
            f"id: ({utt})\n"
            f"Scores: (#C #S #D #I) {w.hits[i]} {w.substitutions[i]} {w.deletions[i]} {w.insertions[i]}\n"
            f"REF:  {ref_line}\n"
            f"HYP:  {hyp_line}\n"
            f"Eval: {eval_line}".rstrip() + "\n"
        )
    return "\n".join(blocks) + "\n" + format_summary(result)


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically with ``\\n`` line ends."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def _kaldi_lines(utt_ids: Sequence[str], texts: Sequence[str]) -> str:
    return "".join(f"{u} {t}".rstrip() + "\n" for u, t in zip(utt_ids, texts))


def _trn_lines(utt_ids: Sequence[str], texts: Sequence[str]) -> str:
    return "".join(f"{t} ({u})".lstrip() + "\n" for u, t in zip(utt_ids, texts))


def write_results(out_dir: str | Path, refs: Mapping[str, str], hyps: Mapping[str, str],
                  result: ScoreResult) -> Path:
    """Write ``result.txt``, ``ref.trn``/``hyp.trn``, ``ref.text``/``hyp.text``, ``hyp.jsonl`` and
    ``scores.json`` into ``out_dir`` (each atomically); returns ``out_dir``.

    ``refs`` / ``hyps`` are the raw (unnormalised) texts given to :func:`score`, used for ``hyp.jsonl``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if set(refs) != set(result.utt_ids) or set(hyps) != set(result.utt_ids):
        raise ScoringError("write_results: refs/hyps do not have the utterance ids of the result")
    ids = result.utt_ids
    _write_text(out / "result.txt", format_result_txt(result))
    _write_text(out / "ref.trn", _trn_lines(ids, result.ref_norm))
    _write_text(out / "hyp.trn", _trn_lines(ids, result.hyp_norm))
    _write_text(out / "ref.text", _kaldi_lines(ids, result.ref_norm))
    _write_text(out / "hyp.text", _kaldi_lines(ids, result.hyp_norm))
    _write_text(out / "hyp.jsonl", "".join(
        json.dumps({"utt_id": u, "text": refs[u], "pred_text": hyps[u]}, ensure_ascii=False) + "\n" for u in ids))
    _write_text(out / "scores.json", json.dumps(result.to_scores(), indent=2, ensure_ascii=False) + "\n")
    return out


def load_scores(path: str | Path) -> dict[str, Any]:
    """Read a ``scores.json`` (or the one inside a scoring directory); ValueError if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "scores.json"
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    required = ("wer", "cer", "num_utts", "num_ref_words", "normalizer")
    missing = [k for k in required if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{path}: not a specenh scores.json (missing {', '.join(missing)})")
    return data
