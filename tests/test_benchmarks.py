"""The benchmark harness in its smallest mode on the demo data, so it cannot rot (not timed)."""
import json
import os
import pathlib
import re
import sys

import pytest

from conftest import background_job, one


@background_job("benchmark_smoke", last=True)
def _benchmark_smoke(folder):
    from conftest import LANE

    r = LANE.run([sys.executable, "-m", "benchmarks.run", "--smoke", "--out", os.path.join(folder, "out"),
                  "--work", os.path.join(folder, "work")], cwd=folder, timeout=900)
    return r, pathlib.Path(folder)


@pytest.fixture
def benchmark_smoke(background):
    """`python -m benchmarks.run --smoke` in its own folder, run on the background lane."""
    return background.result("benchmark_smoke")


@pytest.mark.slow
def test_benchmark_harness_smoke(benchmark_smoke):
    r, tmp_path = benchmark_smoke
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    md = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "FAILED" not in md, md
    for section in ("## features", "## pipeline", "## predict", "## memory", "## quality"):
        assert section in md, section
    assert re.search(r"^\| training pipeline / in-memory ceiling \| \d+\.\d+ \|", md, re.M)
    assert re.search(r"^\| kit cold / public-kernel way \| \d+\.\d+ \|", md, re.M)
    assert re.search(r"peak RSS of that training run .* \| \d+\.\d+ GB \|", md)
    assert (tmp_path / "out" / "pipeline.png").stat().st_size > 1000


def test_kernel_time_scales_only_the_test_stages_and_divides_only_the_model_stage():
    from benchmarks.kernel_time import scale

    rows = scale({"finding the data and the models": 4.0, "inputs of 80 test samples": 8.0,
                  "scoring 80 test samples with 5 fold(s)": 20.0}, n_here=80, n_full=3360, gpu_speedup=10)
    assert rows == [("finding the data and the models", 4.0, 4.0), ("inputs of 80 test samples", 8.0, 336.0),
                    ("scoring 80 test samples with 5 fold(s)", 20.0, 84.0)]


def test_qd_tta_rescore_reproduces_the_runs_validation(qd_tiny):
    """The tiny cnn run validated with the raster models' default test-time mirror: re-scored
    with it, its fold's MAP@3 is the one it recorded; without it, another score of the same drawings."""
    from benchmarks.qd_tta import rescore

    m = json.load(open(one("work/demo-quickdraw-*/cnn/fold0/metrics.json")))
    out = rescore(None, "work", "cnn")
    assert out["tta-flip"] == pytest.approx(m["val_map3"], abs=1e-6)
    assert 0 <= out["plain"] <= 1
    # distorted copies at zero range are the drawings themselves: the extra arm scores as the mirror alone
    same = rescore(None, "work", "cnn", aug=2, aug_frac=0.0)
    assert same["tta-flip+aug2"] == pytest.approx(out["tta-flip"], abs=1e-6)
