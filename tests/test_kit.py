"""src/kit on its own: config precedence, atomic writes, data-dir resolution, locks, averaging,
blend weights, strict CSV reading, the folds-file policy. No TensorFlow here."""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from src.kit import atomic, blend, configio, datadir, foldfile, lock, runs, tables
from src.kit.configio import field
from src.kit.errors import KitError, KitWarning, cli, warn
from src.kit.fold_runner import training_length
from src.kit.metrics import lwlrap


@dataclasses.dataclass
class Toy:
    lr: float = field(0.1, "learning rate")
    epochs: int = field(10, "epochs")
    mode: str = field("a", "mode", ["a", "b"], aliases={"--use-b": "b"})
    flag: bool = field(False, "a switch")


def parse(argv):
    ap = argparse.ArgumentParser()
    configio.add_config_args(ap, Toy)
    return ap.parse_args(argv)


def test_config_precedence_defaults_then_saved_then_flags(tmp_path):
    saved = Toy(lr=0.5, epochs=3)
    configio.save(saved, str(tmp_path / "config.json"), labels=["x"])
    base = configio.load(Toy, str(tmp_path / "config.json"))              # extra keys (labels) ignored
    assert base == saved
    cfg = configio.from_args(Toy, parse(["--epochs", "7"]), base)
    assert (cfg.lr, cfg.epochs, cfg.mode) == (0.5, 7, "a")                 # saved < flags given now
    assert configio.from_args(Toy, parse([])) == Toy()                     # nothing saved: defaults
    assert configio.from_args(Toy, parse(["--use-b", "--flag"])).mode == "b"   # an alias sets its value
    with pytest.raises(SystemExit):
        parse(["--mode", "c"])                                             # the CLI lists the choices
    with pytest.raises(ValueError, match="clash"):
        configio.save(saved, str(tmp_path / "x.json"), lr=1)


def test_atomic_write_failure_leaves_the_old_file(tmp_path):
    p = tmp_path / "out.csv"
    atomic.write_text(str(p), "old\n")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic.atomic_path(str(p)) as tmp:
            open(tmp, "w").write("half")
            raise Boom()
    assert p.read_text() == "old\n"
    assert [f.name for f in tmp_path.iterdir()] == ["out.csv"]             # no temporary file left


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".best.keras.{dead}.abc123.tmp.keras").write_bytes(b"x" * 10)
    live = tmp_path / f".x.{os.getpid()}.def456.tmp"
    live.write_bytes(b"y")
    removed = atomic.clean_stale(str(tmp_path))
    assert len(removed) == 1 and live.exists()


def test_replace_dir_swaps_a_finished_folder_in(tmp_path):
    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold0" / "a").write_text("old")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "a").write_text("new")
    atomic.replace_dir(str(tmp_path / "new"), str(tmp_path / "fold0"))
    assert (tmp_path / "fold0" / "a").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["fold0"]


def test_data_dir_resolution_order_and_dataset_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []

    def demo(d):
        os.makedirs(d, exist_ok=True)
        made.append(d)
        return os.path.abspath(d)

    ident = lambda p: [b"same content"]                                    # noqa: E731
    path, name = datadir.resolve_data_dir(None, "comp", demo, "data/demo-x", "X", ident)
    assert made and path.endswith("data/demo-x") and name.startswith("demo-x-")
    (tmp_path / "data" / "comp").mkdir(parents=True)
    path, name = datadir.resolve_data_dir(None, "comp", demo, "data/demo-x", "X", ident)
    assert path == str(tmp_path / "data" / "comp") and name.startswith("comp-")     # ./data before the demo
    (tmp_path / "a" / "fat").mkdir(parents=True)
    (tmp_path / "b" / "fat").mkdir(parents=True)
    _, na = datadir.resolve_data_dir("a/fat", "comp", demo, "data/demo-x", "X", ident)
    _, nb = datadir.resolve_data_dir("b/fat", "comp", demo, "data/demo-x", "X", ident)
    assert na != nb and na.startswith("fat-") and nb.startswith("fat-")   # same base name, two datasets
    _, nc = datadir.resolve_data_dir("a/fat", "comp", demo, "data/demo-x", "X", lambda p: [b"other"])
    assert nc != na                                                        # other contents, another name
    with pytest.raises(KitError, match="no such folder"):
        datadir.resolve_data_dir("nowhere", "comp", demo, "data/demo-x", "X", ident)


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
    p = str(tmp_path / "fold0.lock")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {os.getcwd()!r})
from src.kit import lock
with lock.exclusive({p!r}, "x"):
    print("held", flush=True)
    time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(KitError, match=rf"in use by another process \(pid {holder.pid} .*time.sleep|pid {holder.pid}"):
            with lock.exclusive(p, "fold folder x"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with lock.exclusive(p, "fold folder x"):                               # its holder died: taken over
        assert json.load(open(p))["pid"] == os.getpid()
    assert not os.path.exists(p)


def test_weighted_mean_and_bad_weights():
    a, b = np.zeros((2, 2)), np.ones((2, 2))
    np.testing.assert_allclose(runs.weighted_mean([a, b], [1, 3]), 0.75)
    for w in ([1, -1], [0, 0], [1]):
        with pytest.raises(ValueError):
            runs.weighted_mean([a, b], w)


def test_aligned_by_name_never_by_position():
    df = pd.DataFrame([[0.1, 0.9]], columns=["b", "a"])
    np.testing.assert_allclose(runs.aligned(df, ["a", "b", "c"]), [[0.9, 0.1, 0.0]])


def test_training_length_follows_the_data():
    assert training_length(15, 1000, 600, 6) == (15, 6)                    # big data: epochs rule
    assert training_length(15, 10, 600, 6) == (60, 24)                     # small data: 600 steps, patience x4
    assert training_length(40, 5, 0, 10) == (40, 10)


def test_simplex_grid():
    g = blend.simplex_grid(3, 0.5)
    assert len(g) == 6 and np.allclose(g.sum(axis=1), 1) and (g >= 0).all()


def test_blend_weights_beat_equal_on_a_constructed_case_and_stay_non_negative():
    rng = np.random.default_rng(0)
    n, c = 300, 6
    y = np.zeros((n, c))
    y[np.arange(n), rng.integers(0, c, n)] = 1
    good = y + rng.normal(0, 0.35, (n, c))                                 # informative
    noise = rng.random((n, c))                                             # useless
    anti = 1 - y + rng.normal(0, 0.1, (n, c))                              # harmful
    fit = blend.fit({"good": good, "noise": noise, "anti": anti}, y, lwlrap)
    assert (fit.weights >= 0).all() and fit.weights.sum() == pytest.approx(1)
    assert fit.scores["used"] > fit.scores["equal"] + 0.05
    assert fit.as_dict["good"] >= 0.8 and fit.as_dict["anti"] == 0
    same = blend.fit({"a": good, "b": good.copy()}, y, lwlrap)             # nothing to gain: stays equal
    assert list(same.weights) == [0.5, 0.5]


def test_blend_json_is_used_only_for_the_runs_it_names(tmp_path):
    y = np.eye(3)[[0, 1, 2, 0]]
    fit = blend.fit({"a": y, "b": y[::-1]}, y, lwlrap)
    blend.save(str(tmp_path), fit, "geo", 4, "lwlrap")
    w, how = blend.load(str(tmp_path), ["b", "a"])
    assert set(w) == {"a", "b"} and how == "geo"
    with pytest.warns(KitWarning, match="equal weights"):
        assert blend.load(str(tmp_path), ["a", "c"]) == (None, "mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                   # one run: nothing to blend, no warning
        assert blend.load(str(tmp_path), ["a"]) == (None, "mean")


def test_strict_csv_reading(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("fname,A,B,A\nx.wav,0,1,0\n")
    with pytest.raises(KitError, match="duplicate column.*A"):
        tables.read_csv(str(p), ["fname"])
    p.write_text("fname,labels\nx.wav,A\ny.wav,B\nx.wav,B\n")
    with pytest.raises(KitError, match="1 duplicate fname.*x.wav"):
        tables.read_csv(str(p), ["fname"], id_column="fname")
    for bad in ("../x.wav", "/etc/passwd", "a/b.wav", "..", ""):
        assert not tables.is_plain_name(bad)
    assert tables.is_plain_name("0a1b2c.wav")
    with pytest.raises(KitError, match="not plain file names.*'../x.wav'"):
        tables.check_plain_names(["ok.wav", "../x.wav"], "train.csv")


def test_folds_file_is_made_once_and_refused_when_it_does_not_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make = lambda: pd.DataFrame({"id": list("abcdef"), "fold": [0, 1, 2, 0, 1, 2]})   # noqa: E731
    fold_of, sha = foldfile.ensure("ds", "id", list("abcdef"), 3, make, "rebuild-cmd")
    assert fold_of.tolist() == [0, 1, 2, 0, 1, 2] and len(sha) == 40
    sub, sha2 = foldfile.ensure("ds", "id", list("ace"), 3, make, "rebuild-cmd")      # a subset is fine
    assert sub.tolist() == [0, 2, 1] and sha2 == sha
    with pytest.raises(KitError, match="1 of the 7 ids now loaded have no fold.*rebuild-cmd"):
        foldfile.ensure("ds", "id", list("abcdefg"), 3, make, "rebuild-cmd")
    with pytest.raises(KitError, match="has 3 folds but --n-folds is 5"):
        foldfile.ensure("ds", "id", list("abc"), 5, make, "rebuild-cmd")


def test_cli_wrapper_and_warnings(capsys):
    @cli
    def main():
        warn("something to know")
        raise KitError("bad input", exit_code=3)

    with pytest.warns(KitWarning, match="something to know"):
        assert main() == 3
    assert capsys.readouterr().err.strip() == "error: bad input"


def test_two_processes_making_the_folds_file_at_once_agree(tmp_path):
    code = f"""
import sys, time
sys.path.insert(0, {os.getcwd()!r})
import pandas as pd
from src.kit import foldfile
def make():
    time.sleep(1.0)                       # both processes inside the critical section at once, without the lock
    return pd.DataFrame({{"id": list("abcdef"), "fold": [0, 1, 2, 0, 1, 2]}})
print(foldfile.ensure("ds", "id", list("abcdef"), 3, make, "x")[1])
"""
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    shas = [p.communicate(timeout=120)[0].strip().splitlines()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs) and shas[0] == shas[1] and len(shas[0]) == 40
    assert sorted(os.listdir(tmp_path / "folds")) == ["ds.csv"]           # no lock or temp file left
