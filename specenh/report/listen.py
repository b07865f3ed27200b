"""The listening page: ``exp/report/index.html``, a static page to hear and see before trusting a WER table.

Per condition (a degraded set), the spectrogram panel of stage 7 and, per front-end, audio players for the
example utterances stage 7 wrote (degraded, enhanced, clean, and for log-mel front-ends the vocoder's
``input_resynth`` control: the degraded features through the same vocoder), followed by the reference and
each front-end's hypothesis from stage 5 with the errors marked (substitutions, insertions, deletions).
Every link is relative to the page, so the folder can be copied or opened from disk. No JavaScript.
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}h2{border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
.sub{background:#fde2a8}.ins{background:#b9e6b1}.del{background:#f6b8b8;text-decoration:line-through}
audio{width:210px;height:32px}img{max-width:100%}.ref{color:#333}.legend span{padding:0 4px;margin-right:6px}"""


def marked(ref: str, hyp: str, normalizer: str = "default") -> str:
    """The hypothesis as HTML with its errors against ``ref`` marked (normalised text, word level;
    ``normalizer``: a name of :func:`specenh.metrics.textnorm.get_normalizer`)."""
    import jiwer

    from specenh.metrics.textnorm import get_normalizer

    norm = get_normalizer(normalizer)
    r, h = norm(ref), norm(hyp)
    if not r.split():
        return html.escape(h)
    if not h.split():
        return " ".join(f'<span class="del">{html.escape(w)}</span>' for w in r.split())
    out = jiwer.process_words(r, h)
    rw, hw = r.split(), h.split()
    parts = []
    for ch in out.alignments[0]:
        if ch.type == "equal":
            parts += [html.escape(w) for w in hw[ch.hyp_start_idx:ch.hyp_end_idx]]
        elif ch.type == "substitute":
            parts += [f'<span class="sub" title="ref: {html.escape(a)}">{html.escape(b)}</span>'
                      for a, b in zip(rw[ch.ref_start_idx:ch.ref_end_idx], hw[ch.hyp_start_idx:ch.hyp_end_idx])]
        elif ch.type == "insert":
            parts += [f'<span class="ins">{html.escape(w)}</span>' for w in hw[ch.hyp_start_idx:ch.hyp_end_idx]]
        else:
            parts += [f'<span class="del">{html.escape(w)}</span>' for w in rw[ch.ref_start_idx:ch.ref_end_idx]]
    return " ".join(parts)


def _hyps(decode_dir: Path, set_name: str, fe: str, path: Path | None = None) -> dict[str, tuple[str, str]]:
    p = path or decode_dir / f"{set_name}_{fe}" / "scoring" / "hyp.jsonl"
    if not p.is_file():
        return {}
    out = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out[r["utt_id"]] = (r["text"], r["pred_text"])
    return out


def _audio(path: Path, page_dir: Path, label: str) -> str:
    if not path.is_file():
        return "–"
    rel = os.path.relpath(path, page_dir)
    return f'<div>{html.escape(label)}<br><audio controls preload="none" src="{html.escape(rel)}"></audio></div>'


def write_listening_page(exp_dir: str | Path, out_html: str | Path, frontends: list[str],
                         title: str = "Listening report") -> Path | None:
    """Write the page from ``exp_dir/resynth`` (stage 7) and ``exp_dir/decode`` (stage 5); None when stage 7
    has written nothing yet."""
    exp_dir, out_html = Path(exp_dir), Path(out_html)
    resynth, decode = exp_dir / "resynth", exp_dir / "decode"
    summaries = {}
    for p in sorted(resynth.glob("*/summary.json")):
        sm = json.loads(p.read_text())
        name = p.parent.name
        fe = name[len(sm["set"]) + 1:] if name.startswith(sm["set"] + "_") else sm["frontend"]
        summaries[(sm["set"], fe)] = (p.parent, sm)
    if not summaries:
        return None
    page = out_html.parent
    page.mkdir(parents=True, exist_ok=True)
    sets = sorted({s for s, _ in summaries})
    fes = [f for f in frontends if any((s, f) in summaries for s in sets)]
    body = [f"<h1>{html.escape(title)}</h1>",
            '<p class="legend">Hypotheses (stage 5; <i>Whisper</i>: the judge of stage 7, when run) against the reference: <span class="sub">substitution</span>'
            '<span class="ins">insertion</span><span class="del">deletion</span>. Log-mel front-ends are heard '
            "through the vocoder (Griffin-Lim phase): compare them with their <i>input_resynth</i> control, the "
            "degraded features through the same vocoder.</p>",
            "<p>Conditions: " + ", ".join(f'<a href="#{html.escape(s)}">{html.escape(s)}</a>' for s in sets) + "</p>"]
    for s in sets:
        body.append(f'<h2 id="{html.escape(s)}">{html.escape(s)}</h2>')
        panel = resynth / f"panel_{s}.png"
        if panel.is_file():
            body.append(f'<img src="{html.escape(os.path.relpath(panel, page))}" alt="spectrograms of {html.escape(s)}">')
        utts = sorted({w.name.split(".")[0] for f in fes if (s, f) in summaries
                       for w in (summaries[(s, f)][0] / "wav").glob("*.enhanced.wav")})
        for u in utts:
            body.append(f"<h3>{html.escape(u)}</h3><table><tr><th>front-end</th><th>audio</th><th>hypothesis</th></tr>")
            ref_shown = False
            for f in fes:
                if (s, f) not in summaries:
                    continue
                d, sm = summaries[(s, f)]
                wav = d / "wav"
                players = [_audio(wav / f"{u}.degraded.wav", page, "degraded"),
                           _audio(wav / f"{u}.enhanced.wav", page, "enhanced"),
                           _audio(wav / f"{u}.clean.wav", page, "clean")]
                if sm.get("domain") == "logmel":
                    players.append(_audio(wav / f"{u}.input_resynth.wav", page, "input_resynth (control)"))
                hyps = _hyps(decode, s, f)
                judged = _hyps(decode, s, f, d / "judge" / "enhanced" / "hyp.jsonl")  # the Whisper judge (stage 7)
                known = hyps.get(u) or judged.get(u)
                if known and not ref_shown:
                    body.append(f'<tr><td>reference</td><td></td><td class="ref">{html.escape(known[0])}</td></tr>')
                    ref_shown = True
                hyp = marked(*hyps[u]) if u in hyps else "(not decoded)"
                if u in judged:
                    hyp += f"<br><i>Whisper:</i> {marked(*judged[u], normalizer='spoken')}"
                body.append(f"<tr><td>{html.escape(f)}</td><td>{''.join(players)}</td><td>{hyp}</td></tr>")
            body.append("</table>")
    out_html.write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title)
                        + f"</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n",
                        encoding="utf-8")
    return out_html
