"""Kaggle's hardware, decided and used: the strategy/precision choice from the visible GPUs, and a
fold trained in mixed precision that still predicts, and passes the kernel's reference check, in
float32 on a CPU."""
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import TINY_FLAGS, one
from src import cv, predict
from src.kit import distribute
from src.ship import kernels

T4, P100 = ("Tesla T4", (7, 5)), ("Tesla P100-PCIE-16GB", (6, 0))


@pytest.mark.parametrize("gpus, expected", [
    ([], ("default", False)),                            # a CPU: one device, float32 (float16 is slower there)
    ([T4], ("default", True)),
    ([T4, T4], ("mirrored", True)),                      # Kaggle's T4 x2
    ([P100], ("default", False)),                        # no tensor cores
    ([T4, P100], ("mirrored", False)),                   # every GPU must gain from float16
    ([("unknown", None)], ("default", False)),
])
def test_strategy_and_precision_follow_the_visible_gpus(gpus, expected):
    assert distribute.choose(gpus) == expected


@pytest.mark.parametrize("gpus, flags, mixed, xla", [
    ([T4], set(), True, True),                           # tensor cores: float16, XLA
    ([P100], {"amx_bf16"}, False, True),                 # a GPU trains: the CPU's flags do not matter
    ([], {"avx512f", "avx512_bf16", "amx_bf16"}, False, False),  # AMX: oneDNN without XLA, float32
    ([], {"avx2", "avx512f", "avx512_bf16"}, False, True),       # no AMX tiles: float32 with XLA
    ([], set(), False, True),                            # flags unknown
])
def test_unset_precision_and_xla_follow_the_hardware(gpus, flags, mixed, xla):
    assert distribute.auto_speed(gpus, flags)[:2] == (mixed, xla)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert distribute.cpu_flags(str(info)) == {"fpu", "avx512f", "amx_bf16", "amx_tile"}
    assert distribute.cpu_flags(str(tmp_path / "absent")) == set()
    assert distribute.mixed_policy([]) == "mixed_bfloat16" and distribute.mixed_policy([T4]) == "mixed_float16"


@pytest.mark.slow
def test_a_mixed_precision_fold_predicts_and_passes_the_reference_check_in_float32(tiny, tmp_path, capsys):
    import keras

    assert cv.main(["--data-dir", "fat", *TINY_FLAGS, "--eager", "--fold", "0", "--epochs", "1", "--mixed-precision"]) == 0
    out = capsys.readouterr().out
    assert "precision mixed_bfloat16" in out and "steps/s" in out             # a CPU: bfloat16 (float16 is slow there)
    assert json.load(open(one("work/fat-*/cnn/fold0/config.json")))["mixed_precision"] is True
    assert json.load(open(one("work/fat-*/cnn/fold0/metrics.json")))["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"           # back to float32 after the fold
    assert predict.main(["--data-dir", "fat", "--out", "local.csv"]) == 0
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", "me", "--data-dir", "fat"]) == 0
    assert kernels.main(["build", "freesound", "--owner", "me", "--data-dir", "fat"]) == 0
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    os.symlink(os.path.abspath("fat"), root / "input" / "freesound-audio-tagging-2019")
    shutil.copytree("kernels/freesound/dataset", root / "input" / "models")
    r = subprocess.run([sys.executable, os.path.abspath("kernels/freesound/build/kernel.py")], cwd=root / "working",
                       capture_output=True, text=True, env={**os.environ, "KAGGLE_KIT_ROOT": str(root)}, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "cnn fold 0 loaded, reference outputs match" in r.stdout
    kernel = pd.read_csv(root / "working" / "submission.csv").set_index("fname")
    local = pd.read_csv(tmp_path / "local.csv").set_index("fname")
    pd.testing.assert_frame_equal(kernel, local.loc[kernel.index])
