"""egs/ljspeech on the real LJSpeech subset: stages 1-3 and a smoke decode with a tiny trained model."""
from __future__ import annotations

import json
import time

import pytest

from specenh.data.kaldi import read_kv
from specenh.features.io import read_feats_scp
from test_recipe_mini import TINY_ASR, make_recipe_copy, run_recipe


@pytest.mark.e2e
def test_ljspeech_stages_1_to_5(ljspeech_root, tmp_path, monkeypatch):
    d = make_recipe_copy(tmp_path, "ljspeech")
    monkeypatch.chdir(d)
    t0 = time.time()
    r = run_recipe(d, "--stage", "1", "--stop-stage", "3", "--nj", "2",
                   "--local_data_opts", f"--ljspeech_root {ljspeech_root} --num_dev 10 --num_test 20",
                   "--train_conditions", "noise_5db", "--test_conditions", "bandlimit_2k",
                   "--asr_args", TINY_ASR, "--frontends", "identity")
    t_1_3 = time.time() - t0
    assert r.returncode == 0, r.stderr[-4000:]
    for s, n in (("train", 156), ("dev", 10), ("test", 20), ("test_bandlimit_2k", 20), ("train_noise_5db", 156)):
        scp = read_kv(d / "dump" / "feats" / s / "feats.scp")
        assert len(scp) == n, s
    x = read_feats_scp(d / "dump" / "feats" / "test" / "feats.scp")["LJ001-0186"]
    assert x.shape[1] == 80 and x.shape[0] > 100  # 22.05 kHz audio resampled to 16 kHz, 10 ms frames
    r = run_recipe(d, "--stage", "5", "--stop-stage", "5", "--nj", "2", "--test_conditions", "bandlimit_2k",
                   "--frontends", "identity")
    assert r.returncode == 0, r.stderr[-4000:]
    sc = json.loads((d / "exp" / "decode" / "test_bandlimit_2k_identity" / "scoring" / "scores.json").read_text())
    assert sc["num_utts"] == 20 and sc["num_ref_words"] > 100
    print(f"egs/ljspeech stages 1-3 on {ljspeech_root}: {t_1_3:.0f} s")
