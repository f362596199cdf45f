"""The benchmark harness in its smallest mode on the demo data, so it cannot rot (not timed)."""
import re

from conftest import run_module


def test_benchmark_harness_smoke(tmp_path):
    r = run_module("benchmarks.run", "--smoke", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                   cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    md = (tmp_path / "out" / "RESULTS.md").read_text()
    for section in ("## features", "## pipeline", "## predict", "## memory", "## quality"):
        assert section in md, section
    assert re.search(r"^\| training pipeline / in-memory ceiling \| \d+\.\d+ \|", md, re.M)
    assert re.search(r"^\| kit cold / public-kernel way \| \d+\.\d+ \|", md, re.M)
    assert re.search(r"peak RSS of that training run .* \| \d+\.\d+ GB \|", md)
    assert (tmp_path / "out" / "pipeline.png").stat().st_size > 1000
