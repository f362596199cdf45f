"""Prediction for any competition: trusted folds of every run, blended, checked, written.

What counts: a fold is used only when finished (metrics.json), has its weights and was trained on
labels the data has and on the folds file the data has now; anything else is named once and left
out (--strict: refused). Each fold's scores are checked finite (a model that outputs NaN stops
the run, naming the run and fold), averaged over a run's folds, then blended over runs with
work/<dataset>/blend.json's weights when it names exactly these runs, else equally. A test sample
the competition cannot read gets the training label frequencies and is named; more than
--max-bad-test of them stop the run (exit 2) before anything is written. The submission is
checked row by row (kit.submission) and written atomically.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Callable, ContextManager

import numpy as np
import pandas as pd

from . import blend, runs, submission
from .competition import Competition, Data
from .errors import KitError, cli, list_some, warn


def ensemble_labels(found: dict, labels: list[str]) -> list[str]:
    """The data's labels that some run knows, in the data's order: the columns of the blend."""
    known = {w for folds in found.values() for f in folds for w in f.labels}
    return [w for w in labels if w in known]


def oof_report(comp: Competition, found: dict, data: Data, labels: list[str], weights: dict | None) -> str:
    """Each run's and the blend's out-of-fold score, and the blend's (or the one run's) over each
    of the competition's sample groups (comp.groups: FAT2019's single- and multi-label clips)."""
    scores, ids, mats, y = runs.oof_scores(found, labels, lambda i: comp.truth(data, i, labels), comp.metric,
                                           weights)
    line = runs.report_line(scores, len(ids), comp.metric_name, comp.samples)
    if ids and mats:
        w = [weights.get(n, 0.0) for n in mats] if weights and len(mats) > 1 else None
        blended = runs.weighted_mean(list(mats.values()), w)
        parts = [f"{name} {comp.metric(y[mask], blended[mask]):.4f} over {int(mask.sum())}"
                 for name, mask in comp.groups(y).items() if mask.any()]
        if len(parts) > 1:
            line += f" ({'blend' if len(mats) > 1 else next(iter(mats))}: {'; '.join(parts)})"
    return line


def checked_ensemble(found: dict, labels: list[str], weights: dict | None, fold_how: str):
    """`ensemble(predict)` for the wing: runs.ensemble, each fold's output checked finite first."""
    def ensemble(predict) -> np.ndarray:
        def predict_checked(fold: runs.Fold) -> pd.DataFrame:
            out = predict(fold)
            bad = ~np.isfinite(out.to_numpy(dtype=np.float64))
            if bad.any():
                raise KitError(f"run {fold.run} fold {fold.fold} ({fold.path}): its model output {int(bad.sum())} "
                               f"non-finite score(s) on {int(bad.any(axis=1).sum())} test sample(s); refusing to "
                               f"write a submission (retrain the fold or leave the run out with --models)", exit_code=1)
            return out
        return runs.ensemble(found, predict_checked, labels, weights, fold_how)
    return ensemble


def label_prior(found: dict, labels: list[str], weights: dict | None) -> np.ndarray:
    """Training label frequencies of the blend (each fold's config.json `label_prior`, aligned by
    name): the scores of a test sample nothing is known about."""
    per_run = []
    for folds in found.values():
        rows = [pd.DataFrame([f.config.get("label_prior") or [0.0] * len(f.labels)], columns=f.labels) for f in folds]
        per_run.append(runs.fold_mean([runs.aligned(r, labels) for r in rows]))
    return runs.weighted_mean(per_run, [weights[n] for n in found] if weights else None)[0]


def bad_allowance(n: int, fraction: float) -> int:
    """How many unreadable test samples --max-bad-test allows: the fraction of n, at least 1."""
    return max(1, int(np.floor(fraction * n + 1e-9)))


def loaded(found: dict, load, strict: bool) -> tuple[dict, dict]:
    """({run: folds whose model loads}, {fold key: model}): a fold whose weights do not fit its
    config.json is left out and named (strict: refused), like any other untrusted fold."""
    models, kept, bad = {}, {}, []
    for run, folds in found.items():
        for f in folds:
            try:
                models[f.key] = load(f)
            except Exception as e:   # noqa: BLE001 - whatever Keras raises on a mismatched file is this fold's fault
                why = f"{e.__class__.__name__}: {str(e).strip()[:160]}"
                if strict and isinstance(e, KitError):
                    raise
                if strict:
                    raise KitError(f"run {run} fold {f.fold} ({f.path}): its model does not load ({why})") from e
                bad.append(f"{run}/fold{f.fold} ({why})")
                continue
            kept.setdefault(run, []).append(f)
    if bad:
        warn(f"left out, their models do not load: {list_some(bad, 10)}")
    if not kept:
        raise KitError("no fold's model loads; retrain them")
    return kept, models


def write_submission(comp: Competition, data: Data, found: dict, weights: dict | None, fold_how: str, out: str,
                     args: argparse.Namespace, load=None, strict: bool | None = None,
                     stage: Callable[[str], ContextManager] = lambda what: contextlib.nullcontext()) -> pd.DataFrame:
    """Score the test set with `found`, check the rows, write `out`. `load(fold)` builds a fold's
    model (default comp.load_model; the kernel passes one that checks reference outputs, with
    `strict` so that any failure stops it). Every model is loaded (and checked) before any test
    sample is scored, after the competition's CPU work on the test inputs (comp.prepare_test:
    its workers fork before TensorFlow starts). `stage(what)` times each step (the kernel's log)."""
    sample_ids = data.sample_ids()
    n, k = len(sample_ids), sum(map(len, found.values()))
    with stage(f"inputs of {n} test samples"):
        comp.prepare_test(data, found, args)
    with stage(f"loading{' and checking' if strict else ''} {k} fold(s)"):
        found, models = loaded(found, load or comp.load_model, args.strict if strict is None else strict)
    if weights:
        weights = {n_: w for n_, w in weights.items() if n_ in found}
        if sum(weights.values()) <= 0:
            warn("the blend's weighted runs were left out: equal weights for the rest")
            weights = None
    labels = ensemble_labels(found, data.labels)
    if len(labels) < 3 and comp.labels_subset_ok:
        raise KitError(f"the trained runs know only {len(labels)} of the data's classes; three guesses need 3")

    def load_once(fold: runs.Fold):
        return models[fold.key]

    ids_all, scores_all, failed = [], [], {}
    ensemble = checked_ensemble(found, labels, weights, fold_how)
    with stage(f"scoring {n} test samples with {sum(map(len, found.values()))} fold(s)"):
        for ids, scores, bad in comp.score_test(data, found, ensemble, load_once, args):
            ids_all += list(ids)
            scores_all.append(np.asarray(scores, dtype=np.float64).reshape(len(ids), len(labels)))
            failed.update(bad)
    allowed = bad_allowance(len(sample_ids), args.max_bad_test)
    if len(failed) > allowed:
        first = sorted(failed.items())[:5]
        raise KitError(f"{len(failed)} of {len(sample_ids)} test samples could not be used (--max-bad-test "
                       f"{args.max_bad_test} allows {allowed}): " + "; ".join(f"{i}: {why}" for i, why in first) +
                       ("; ..." if len(failed) > 5 else "") + f". Nothing written to {out}")
    if failed:
        prior = label_prior(found, labels, weights)
        named = [f"{i} ({why})" for i, why in sorted(failed.items())]
        warn(f"{len(failed)} test sample(s) without usable input get the training label frequencies: "
             f"{list_some(named, 10)}")
        ids_all += sorted(failed)
        scores_all.append(np.tile(prior, (len(failed), 1)))
    scores = np.concatenate(scores_all) if scores_all else np.zeros((0, len(labels)))
    rows = comp.format_rows(ids_all, scores, labels)
    sub = submission.write(out, rows, sample_ids, comp.id_column, lambda df: comp.check_rows(df, labels),
                           float_format="%.6f")
    print(f"predict: wrote {out} ({len(sub)} rows x {len(labels)} classes; {len(found)} run(s), "
          f"{sum(len(v) for v in found.values())} fold(s); {len(failed)} without usable input)", flush=True)
    return sub


def parser(comp: Competition) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m {comp.modules['predict']}",
                                 description=f"Predict the {comp.title} test set with every trusted fold of every "
                                             f"run and write the submission.\n\n" + __doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as cv finds it)")
    ap.add_argument("--work-dir", default="work", help="where cv wrote its runs (default: work)")
    ap.add_argument("--models", default=None, help="comma-separated run names (default: every finished run)")
    ap.add_argument("--out", default=comp.default_out, help=f"submission path (default: {comp.default_out})")
    ap.add_argument("--fold-mean", choices=["mean", "geo"], default=None,
                    help="average of a run's folds: arithmetic or geometric (default: blend.json's, else mean)")
    ap.add_argument("--no-blend", action="store_true", help="ignore blend.json: equal weights")
    ap.add_argument("--strict", action="store_true", help="refuse, instead of leaving out, unfinished or foreign folds")
    ap.add_argument("--max-bad-test", type=float, default=0.01,
                    help="stop (exit 2, nothing written) when more than this fraction of the test samples (at "
                         "least 1) cannot be read; below it they get the training label frequencies (default 0.01)")
    comp.add_predict_args(ap)
    return ap


def run(comp: Competition, args: argparse.Namespace) -> int:
    t0 = time.time()
    data = comp.open_data(args.data_dir)
    comp.check_test(data, args)                  # bad test inputs stop the run before any model loads
    found = comp.find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    weights, fold_how = (None, "mean") if args.no_blend else blend.load(os.path.join(args.work_dir, data.name),
                                                                        list(found))
    fold_how = args.fold_mean or fold_how
    for name, folds in found.items():
        print(f"predict: {name}: {len(folds)} fold(s) ({', '.join(str(f.fold) for f in folds)})"
              f"{f', weight {weights[name]:.2f}' if weights else ''}", flush=True)
    labels = ensemble_labels(found, data.labels)
    print(f"predict: {oof_report(comp, found, data, labels, weights)}", flush=True)
    write_submission(comp, data, found, weights, fold_how, args.out, args)
    print(f"predict: done in {time.time() - t0:.0f}s", flush=True)
    return 0


def main(comp: Competition, argv: list[str] | None = None) -> int:
    return cli(lambda: run(comp, parser(comp).parse_args(argv)))()


def defaults(comp: Competition, **overrides) -> argparse.Namespace:
    """The predict options with their defaults (what a kernel uses), `overrides` on top."""
    args = parser(comp).parse_args([])
    for k, v in overrides.items():
        setattr(args, k, v)
    return args


