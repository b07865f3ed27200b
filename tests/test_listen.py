"""The listening page (exp/report/index.html): audio players per condition x front-end, panels, marked
hypotheses, relative links; rendered in headless Chromium where it is installed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specenh.report.listen import marked, write_listening_page


def _fake_exp(root: Path) -> Path:
    exp = root / "exp"
    for fe, domain in (("identity", "logmel"), ("specsub", "wave")):
        d = exp / "resynth" / f"test_noise_{fe}"
        (d / "wav").mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"set": "test_noise", "frontend": fe, "domain": domain}))
        for u in ("u1", "u2"):
            for kind in ("clean", "degraded", "enhanced") + (("input_resynth",) if domain == "logmel" else ()):
                sf.write(d / "wav" / f"{u}.{kind}.wav", np.zeros(1600, np.float32), 16000)
        sc = exp / "decode" / f"test_noise_{fe}" / "scoring"
        sc.mkdir(parents=True)
        sc.joinpath("hyp.jsonl").write_text("".join(json.dumps({"utt_id": u, "text": "the cat sat", "pred_text": h}) + "\n"
                                                    for u, h in (("u1", "the bat sat down"), ("u2", "cat sat"))))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.imsave(exp / "resynth" / "panel_test_noise.png", np.random.default_rng(0).random((20, 40)))
    return exp


def test_marked_errors():
    h = marked("the cat sat", "the bat sat down")
    assert '<span class="sub" title="ref: cat">bat</span>' in h and '<span class="ins">down</span>' in h
    assert '<span class="del">the</span>' in marked("the cat sat", "cat sat")


def test_page_links_and_players(tmp_path):
    exp = _fake_exp(tmp_path)
    page = write_listening_page(exp, exp / "report" / "index.html", ["identity", "specsub"])
    text = page.read_text()
    # 2 utterances x (identity: 4 players incl. the vocoder control, specsub: 3)
    assert text.count("<audio") == 2 * (4 + 3)
    for link in re.findall(r'(?:src|href)="([^"#]+)"', text):
        assert (page.parent / link).is_file(), link  # relative, and it resolves
    assert "input_resynth (control)" in text and 'class="sub"' in text and "panel_test_noise.png" in text


def test_page_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it where it can)")
    exp = _fake_exp(tmp_path)
    page = write_listening_page(exp, exp / "report" / "index.html", ["identity", "specsub"])
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                        "--allow-file-access-from-files", "--virtual-time-budget=3000", "--dump-dom",
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("<audio") == 14  # the DOM the browser built: every player is there
    # the page has no script: any console message (Chromium logs them as INFO:CONSOLE) is a problem
    console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l]
    assert not console, console
    # every file the page links resolves (the browser does not log missing media without a script)
    assert all((page.parent / link).is_file() for link in re.findall(r'(?:src|href)="([^"#]+)"', r.stdout))
