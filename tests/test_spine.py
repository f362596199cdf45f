"""The one spine: what both competitions get from kit/competition.py by construction (validated
submissions, a NaN model refused by name, --epochs obeyed, Quick Draw's blend), the shape of
the source tree (no import circle, a competition-agnostic kit) and the commands the docs show."""
import ast
import glob
import importlib
import json
import os
import pathlib
import re
import shlex

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, background_job, one
from src.kit import cv as kit_cv, predict as kit_predict, submission
from src.kit.errors import KitError
from src.kit.fold_runner import FoldRun
from src.quickdraw import blend as qd_blend, predict as qd_predict
from src.quickdraw.competition import check_rows, format_rows, per_label

QD_TINY = ["--per-class", "12", "--batch-size", "32", "--n-folds", "2", "--no-jit", "--model", "cnn",
           "--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2"]


# ------------------------------------------------------------------------------------------ units

def test_rows_come_in_sample_order_once_each_or_not_at_all():
    rows = pd.DataFrame({"id": ["b", "a", "c"], "v": [2, 1, 3]})
    assert submission.in_sample_order(rows, ["a", "b", "c"], "id", "x.csv")["v"].tolist() == [1, 2, 3]
    with pytest.raises(KitError, match="1 id.s. predicted twice: a"):
        submission.in_sample_order(pd.concat([rows, rows.iloc[[1]]]), ["a", "b", "c"], "id", "x.csv")
    with pytest.raises(KitError, match=r"1 of sample_submission.csv's ids have no row \(d\); 1 rows are not in "
                                       r"sample_submission.csv \(c\)"):
        submission.in_sample_order(rows, ["a", "b", "d"], "id", "x.csv")


def test_refused_submission_writes_nothing(tmp_path):
    path = tmp_path / "sub.csv"
    rows = pd.DataFrame({"key_id": ["1", "2"], "word": ["a b c", "a a b"]})
    with pytest.raises(KitError, match=r"1 submission row\(s\) do not hold three distinct known words \(2\)"):
        submission.write(str(path), rows, ["1", "2"], "key_id", lambda df: check_rows(df, ["a", "b", "c"]))
    assert not path.exists()


def test_quickdraw_rows_are_the_three_best_words_and_checked():
    rows = format_rows(["k1", "k2"], np.array([[0.1, 0.5, 0.2, 0.2], [0.4, 0.3, 0.2, 0.1]]),
                       ["ant", "bee", "stop sign", "cat"])
    assert rows["word"].tolist() == ["bee stop_sign cat", "ant bee stop_sign"]      # ties: the earlier word first
    check_rows(rows, ["ant", "bee", "stop sign", "cat"])
    for bad in ("ant bee", "ant ant bee", "ant bee owl", ""):
        with pytest.raises(KitError, match="three distinct known words"):
            check_rows(pd.DataFrame({"key_id": ["k"], "word": [bad]}), ["ant", "bee", "stop sign", "cat"])


def test_quickdraw_per_label_map3_by_hand():
    truth = np.eye(3)[[0, 0, 1]]
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])       # ranks 1, 2, 3
    s = per_label(truth, scores, ["a", "b", "c"])
    assert s.to_dict() == pytest.approx({"a": (1 + 1 / 2) / 2, "b": 1 / 3})


def test_label_prior_of_the_blend_is_aligned_by_name():
    from src.kit.runs import Fold

    found = {"r1": [Fold("r1", 0, "", {"labels": ["a", "b"], "label_prior": [0.25, 0.75]}, {})],
             "r2": [Fold("r2", 0, "", {"labels": ["b", "a"], "label_prior": [0.5, 0.5]}, {}),
                    Fold("r2", 1, "", {"labels": ["b", "a"], "label_prior": [0.7, 0.3]}, {})]}
    np.testing.assert_allclose(kit_predict.label_prior(found, ["a", "b"], {"r1": 0.5, "r2": 0.5}),
                               [(0.25 + 0.4) / 2, (0.75 + 0.6) / 2])


def test_bad_test_allowance_is_a_fraction_but_at_least_one():
    assert [kit_predict.bad_allowance(n, 0.01) for n in (4, 100, 250, 3361)] == [1, 1, 2, 33]
    assert kit_predict.bad_allowance(80, 1.0) == 80


def test_explicit_epochs_turn_the_small_data_stretch_off():
    from src.quickdraw.config import QDConfig

    cfg, given = kit_cv.epochs_rule(QDConfig(epochs=2), {"epochs": 2})
    assert (cfg.epochs, cfg.min_steps, given) == (2, 0, {"epochs": 2, "min_steps": 0})
    cfg, given = kit_cv.epochs_rule(QDConfig(), {})
    assert (cfg.epochs, cfg.min_steps, given) == (15, 600, {})


def test_the_plan_line_says_when_min_steps_stretched_the_epochs(tmp_path, capsys):
    config = {"epochs": 4, "min_steps": 40, "patience": 2, "labels": ["a"], "folds_sha1": "x"}
    with FoldRun(str(tmp_path / "fold0"), "m") as run:
        assert run.plan(config, 5, False, "fold 0") == (8, 4)
    assert "8 epochs of 5 steps (--epochs 4 stretched so that training takes at least --min-steps 40 batches" \
        in capsys.readouterr().out
    with FoldRun(str(tmp_path / "fold1"), "m") as run:
        assert run.plan({**config, "min_steps": 0}, 5, False, "fold 1") == (4, 2)
    assert "stretched" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ the tree

def _module_imports(path: str, module: str) -> set[str]:
    """Modules of src imported at module level (not inside functions) by the file."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    pkg = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}".replace(".", "/") + ".py" in SOURCES else base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "src" or m.startswith("src.")}


SOURCES = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "src", "**", "*.py"), recursive=True)}


def _graph() -> dict[str, set[str]]:
    mods = {p[:-3].replace("/", ".").removesuffix(".__init__"): p for p in SOURCES}
    return {m: {i for i in _module_imports(os.path.join(ROOT, p), m) if i in mods and i != m} for m, p in mods.items()}


def test_no_import_circle_in_src():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_kit_knows_no_competition():
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("src.kit"):
            assert all(d.startswith("src.kit") or d == "src" for d in deps), (m, deps)
    for p in sorted(s for s in SOURCES if s.startswith("src/kit/")):
        text = open(os.path.join(ROOT, p), encoding="utf-8").read()
        assert not re.search(r"freesound|quickdraw|fat2019", text), p


def _doc_commands() -> list[tuple[str, list[str]]]:
    """(file, [module, first argument]) of every `python -m src...`/`benchmarks...` command in the
    README's and docs' code blocks and inline code."""
    found = []
    for path in ["README.md", *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]:
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        blocks = re.findall(r"```.*?\n(.*?)```", text, re.S) + re.findall(r"((?:^    .*\n)+)", text, re.M) + \
            [" ".join(span.split()) for span in re.findall(r"(?<!`)`([^`]*python -m [^`]*)`(?!`)", text)]
        for block in blocks:
            for part in re.split(r"&&|\n|;|\|", block):
                m = re.search(r"python -m ((?:src|benchmarks)[\w.]*)(.*)", part)
                if m:
                    found.append((os.path.basename(path), [m.group(1)] + shlex.split(m.group(2).split("#")[0])[:1]))
    return found


def test_every_command_in_the_readme_and_docs_answers_help(capsys):
    cmds = _doc_commands()
    assert len({c[1][0] for c in cmds}) >= 12, cmds                  # the parser found the docs' commands
    for where, (module, *first) in sorted({(w, tuple(c)) for w, c in cmds}):
        mod = importlib.import_module(module)
        assert hasattr(mod, "main"), f"{where}: python -m {module} has no main()"
        sub = module == "src.kernels" and first and re.fullmatch(r"[a-z]+", first[0])      # not '...' or 'NAME'
        argv = [first[0], "--help"] if sub else ["--help"]
        with pytest.raises(SystemExit) as e:
            mod.main(argv)
        assert e.value.code == 0, f"{where}: python -m {module} {' '.join(argv)}"
        assert "usage:" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ end to end

@background_job("qd_two_runs", last=True)
def _qd_two_runs(folder):
    """Two tiny Quick Draw runs on every fold of the demo (the blend needs every sample scored by
    both), by the background lane's worker."""
    import conftest

    for argv in (["--fold", "all", "--epochs", "2", "--eager"] + QD_TINY,
                 ["--fold", "all", "--epochs", "1", "--name", "cnn8", "--eager"] + QD_TINY[:-4] + ["--cnn-filters", "8",
                                                                                               "--cnn-blocks", "2"]):
        r = conftest.LANE.module("src.quickdraw.cv", argv, folder)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return pathlib.Path(folder)


@pytest.fixture
def qd_two_runs(background):
    return background.result("qd_two_runs")


@pytest.mark.slow
def test_epochs_given_means_that_many_epochs(qd_two_runs):
    """--epochs 2 with the default --min-steps 600 (which would stretch it to many more epochs here)."""
    for k in (0, 1):
        hist = pd.read_csv(one(str(qd_two_runs / "work" / "*" / "cnn" / f"fold{k}" / "history.csv")))
        assert hist["epoch"].tolist() == [1, 2]
        cfg = json.load(open(one(str(qd_two_runs / "work" / "*" / "cnn" / f"fold{k}" / "config.json"))))
        assert (cfg["epochs"], cfg["min_steps"]) == (2, 0)


@pytest.mark.slow
def test_quickdraw_blend_chooses_weights_out_of_fold_and_predict_uses_them(qd_two_runs, monkeypatch, capsys):
    monkeypatch.chdir(qd_two_runs)
    assert qd_blend.main([]) == 0
    out = capsys.readouterr().out
    doc = json.load(open(one("work/*/blend.json")))
    assert set(doc["weights"]) == {"cnn", "cnn8"} and doc["metric"] == "map@3"
    assert doc["samples"] == len(pd.read_csv(one("folds/*.csv")))              # every drawing, out of fold
    assert abs(sum(doc["weights"].values()) - 1) < 1e-6 and f"blend: out-of-fold map@3 over {doc['samples']} " in out
    assert os.path.getsize(one("work/*/blend_per_label.png")) > 1000
    assert qd_predict.main(["--out", "blended.csv"]) == 0
    out = capsys.readouterr().out
    for run, w in doc["weights"].items():
        assert f"predict: {run}: 2 fold(s) (0, 1), weight {w:.2f}" in out
    assert re.search(r"out-of-fold map@3 over \d+ drawings: cnn [01]\.\d{4}, cnn8 [01]\.\d{4}, blend [01]\.\d{4}", out)


@pytest.mark.slow
def test_a_model_that_outputs_nan_stops_predict_by_name_and_writes_nothing(qd_two_runs, tmp_path, monkeypatch,
                                                                           capsys):
    import shutil

    shutil.copytree(qd_two_runs, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    weights = one("work/*/cnn8/fold1/best.weights.h5")
    with h5py.File(weights, "r+") as f:                  # every float weight of the fold becomes NaN
        def poison(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
                obj[...] = np.nan
        f.visititems(poison)
    assert qd_predict.main(["--out", "nan.csv"]) == 1
    err = capsys.readouterr().err
    assert "run cnn8 fold 1" in err and "non-finite" in err and "refusing to write a submission" in err
    assert not os.path.exists("nan.csv")
    assert qd_predict.main(["--out", "ok.csv", "--models", "cnn"]) == 0              # the other run still serves
