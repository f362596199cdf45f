"""One fold's training life, the same for both competitions: an exclusive lock, a private
folder, scoring after every epoch, the best and last checkpoints, early stopping, a time limit,
resume, and the move into place once finished.

Layout under work/<dataset>/<run>/:
  fold<K>/          a finished fold (metrics.json present): the only thing predict, blending and
                    kernels read
  fold<K>.partial/  the fold being trained, or killed: what --resume continues
  fold<K>.lock      pid and command line of the process training it

Files of a fold: config.json (the config, the labels and the folds file's hash), best.weights.h5
(the best epoch's weights: with config.json the portable form of the model, loaded into an
architecture rebuilt from code), best.keras (the same model whole, for notebooks), last.keras
(model + optimizer, for --resume), state.json, history.csv + history.png, oof.csv (out-of-fold
scores of the best epoch), metrics.json, and per_label.png when the competition gives per-label
scores.

Kill safety: state.json is the commit record. Each epoch's checkpoints are written under
epoch-stamped names (last.e0007.keras), then state.json names that epoch, then they are renamed
to their plain names; a start after a kill finishes or discards the pending renames according to
state.json. So the plain names always belong to the epoch state.json names. A fresh run never
touches the finished fold; it replaces it only when it has finished itself.
"""
from __future__ import annotations

import glob
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import atomic, distribute, lock, plots
from .errors import KitError, kill_point

# (plain name, stamped pattern): the checkpoints committed by state.json
_LAST = ("last.keras", "last.e{:04d}.s{:06d}.keras")     # epochs done, batches done into the next
_FINAL_STOPS = ("early", "perfect", "nan")     # stops that --resume does not train past
_BEST = [("best.weights.h5", "best.e{:04d}.weights.h5"), ("oof.csv", "oof.e{:04d}.csv")]
# Flags --resume may change: they change neither the network, nor its inputs, nor how it is scored.
RESUME_SAFE = ("epochs", "patience", "max_minutes", "min_steps", "checkpoint_minutes", "workers", "feature_ram_gb",
               "cache_dir", "work_dir", "data_dir", "jit", "eager", "strategy", "threads", "chunk_size",
               "mixed_precision")
# What a fold records about its data beside the config (labels and folds hash are checked on their own).
_META = ("labels", "folds_sha1", "label_prior", "kit_version", "dataset", "competition")


@dataclass
class EpochScore:
    """What a competition's `evaluate(model)` hook returns after each epoch."""
    score: float                 # the validation metric (higher is better): picks the best epoch
    oof: pd.DataFrame            # first column the sample id, then one score column per label
    extra: dict = field(default_factory=dict)   # other validation figures, kept in history.csv


def training_length(epochs: int, steps_per_epoch: int, min_steps: int, patience: int) -> tuple[int, int]:
    """(epochs, patience) so that training takes at least `min_steps` optimisation steps.

    On small data an epoch is a handful of steps and a fixed epoch count stops while the model
    still improves; on big data `epochs` rules. Patience stretches by the same factor.
    """
    need = math.ceil(min_steps / max(steps_per_epoch, 1)) if min_steps else 0
    if need <= epochs:
        return epochs, patience
    return need, math.ceil(patience * need / max(epochs, 1))


def fresh_state() -> dict:
    return {"epoch": 0, "step": 0, "best": -math.inf, "best_epoch": 0, "wait": 0, "stopped": None, "done": False,
            "seconds": 0.0}


def is_finished(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "metrics.json"))


class FoldRun:
    """Use as `with FoldRun(fold_dir, "val_lwlrap") as run:`; see the module docstring."""

    def __init__(self, final_dir: str, metric: str, chief: bool = True):
        """`chief`: False on the other workers of a multi-worker run, which train alike but write
        into a private temporary folder, removed at the end: only the chief's outputs remain."""
        self._private = None if chief else tempfile.mkdtemp(prefix="kit-worker-")
        if self._private:
            final_dir = os.path.join(self._private, os.path.basename(final_dir.rstrip("/")))
        self.final = final_dir.rstrip("/")
        self.partial = self.final + ".partial"
        self.metric = metric
        self.state = fresh_state()
        self.history: list[dict] = []
        self.resuming = False
        self._lock = lock.exclusive(self.final + ".lock", f"fold folder {self.final}")

    # ------------------------------------------------------------------ folder life

    def __enter__(self) -> "FoldRun":
        self._lock.__enter__()
        atomic.clean_stale(os.path.dirname(self.final) or ".")
        if is_finished(self.partial):                     # killed while finishing: it is complete and newest
            state_path = os.path.join(self.partial, "state.json")
            atomic.write_json(state_path, {**atomic.read_json(state_path), "done": True})
            atomic.replace_dir(self.partial, self.final)
        return self

    def __exit__(self, *exc) -> None:
        if getattr(self, "_mixed", False):          # the next fold or prediction in this process: float32
            import keras  # TensorFlow starts here, on first use: after any feature workers forked

            keras.mixed_precision.set_global_policy("float32")
        self._lock.__exit__(*exc)
        if self._private:
            shutil.rmtree(self._private, ignore_errors=True)

    @classmethod
    def open(cls, final_dir: str, metric: str, strategy: str, resume: bool, max_minutes: float) -> "FoldRun":
        """The fold's run for a tf.distribute strategy: under multiworker every worker trains, the
        chief writes (the others into a private folder), and nothing may differ between workers."""
        if strategy == "multiworker" and (resume or max_minutes):
            raise KitError("--strategy multiworker: --resume and --max-minutes are not supported (every worker "
                           "must take the same steps and stop at the same epoch)")
        return cls(final_dir, metric, chief=strategy != "multiworker" or distribute.is_chief())

    def plan(self, config: dict, steps: int, resume: bool, what: str, restart: bool = False) -> tuple[int, int] | None:
        """(epochs, patience) for `steps` batches per epoch (see training_length), with the fold's
        folder prepared for them (begin) and `what` it trains on said with them; None when
        --resume finds the fold finished, said aloud."""
        epochs, patience = training_length(config["epochs"], steps, config["min_steps"], config["patience"])
        if not self.begin(config, epochs, resume, must_match=("labels", "folds_sha1"), restart=restart):
            print(f"fold: already finished in {self.final} (--resume)", flush=True)
            return None
        why = (f" (--epochs {config['epochs']} stretched so that training takes at least --min-steps "
               f"{config['min_steps']} batches; give --epochs to train exactly that many)"
               if epochs > config["epochs"] else "")
        print(f"{what}; {epochs} epochs of {steps} steps{why}"
              f"{f'; resuming after epoch {self.epoch}' if self.resuming else ''} -> {self.final}", flush=True)
        return epochs, patience

    def model(self, strategy_name: str, batch_size: int, seed: int, build: Callable[[], object],
              jit: bool | None = None, mixed_precision: bool | None = None, eager: bool = False):
        """(model, strategy): the last checkpoint's model and optimizer when resuming, else
        `build()` (built and compiled), inside the strategy's scope, seeded.

        `jit`: XLA-compile the train step on one device (or not, even on a GPU); under a
        tf.distribute strategy Keras' own choice is kept. `mixed_precision`: mixed_float16 (GPU) or
        mixed_bfloat16 (CPU) while this fold trains (the weights stay float32, so the fold predicts
        in float32 anywhere); the global policy is float32 again when it ends. Either None: chosen
        for the hardware (distribute.auto_speed), said on the hardware line and kept in
        `self.hardware` for the fold's metrics.
        `eager`: no traced graph at all (nor XLA): Keras runs each step op by op."""
        import keras  # TensorFlow starts here, on first use: after any feature workers forked

        gpus = distribute.visible_gpus()
        if strategy_name == "auto":
            strategy_name = distribute.choose(gpus)[0]
        strategy = distribute.get_strategy(strategy_name)
        distribute.check_batch(batch_size, strategy)
        keras.utils.set_random_seed(seed)
        auto_mixed, auto_jit, why = distribute.auto_speed(gpus, distribute.cpu_flags())
        chosen = [name for name, v in (("precision", mixed_precision), ("XLA", jit)) if v is None]
        mixed_precision = auto_mixed if mixed_precision is None else mixed_precision
        jit = auto_jit if jit is None else jit
        if mixed_precision:
            keras.mixed_precision.set_global_policy(distribute.mixed_policy(gpus))
            self._mixed = True
        with strategy.scope():
            model = self.load_last() if self.resuming else build()
        if strategy_name == "default":
            model.jit_compile = jit
        if eager:                   # no graph to trace: the steps run op by op (a debugger can stop in them)
            model.jit_compile, model.run_eagerly = False, True
        distribute.prepare(model)
        n = strategy.num_replicas_in_sync
        devices = ", ".join(f"{g} (compute {cc})" for g, cc in gpus) if gpus else "CPU only"
        auto = f"; {' and '.join(chosen)} by default ({why})" if chosen else ""
        print(f"hardware: {devices}; strategy {strategy_name} ({n} replica(s)); precision "
              f"{keras.mixed_precision.global_policy().name}; XLA {model.jit_compile}{'; eager steps' if eager else ''}; batch {batch_size} "
              f"({batch_size // n} per replica){auto}", flush=True)
        self.hardware = {"precision": keras.mixed_precision.global_policy().name, "xla": bool(model.jit_compile)}
        return model, strategy

    def saved_config(self) -> dict | None:
        """The config.json of the fold --resume would continue (unfinished first), else None."""
        for d in (self.partial, self.final):
            if all(os.path.exists(os.path.join(d, n)) for n in ("config.json", "state.json")):
                return atomic.read_json(os.path.join(d, "config.json"))
        return None

    def begin(self, config: dict, epochs: int, resume: bool, must_match: tuple[str, ...] = (),
              restart: bool = False) -> bool:
        """Prepare the partial folder; False when --resume finds the fold already finished.

        `config` (the config plus what it was trained on) is written to config.json; the keys in
        `must_match` (labels, folds hash) must equal the saved fold's to resume it, and only the
        RESUME_SAFE fields may differ from its saved config. Without `resume`, unfinished progress
        is refused unless `restart` discards it.
        """
        self.epochs = epochs
        source = self._resumable() if resume else None
        if resume and source is None:
            print(f"resume: nothing to resume in {self.partial} or {self.final}; starting fresh", flush=True)
        if source is not None:
            saved = atomic.read_json(os.path.join(source, "config.json"))
            differ = [k for k in must_match if saved.get(k) != config.get(k)]
            if differ:
                raise KitError(f"cannot resume {source}: it was trained on other {' and '.join(differ)} than the "
                               f"data now; train it afresh (without --resume)")
            changed = [k for k in config if k in saved and k not in RESUME_SAFE + _META and saved[k] != config[k]]
            if changed:
                flags = "; ".join(f"--{k.replace('_', '-')} {config[k]!r} (trained with {saved[k]!r})" for k in changed)
                raise KitError(f"cannot resume {source} with {flags}: that changes the network, its inputs or its "
                               f"scoring. Resume with the saved values (only {', '.join(RESUME_SAFE)} may change), "
                               f"or train afresh under another --name (or --restart)")
            state = atomic.read_json(os.path.join(source, "state.json"))
            if source == self.final and (state.get("stopped") in _FINAL_STOPS or state["epoch"] >= epochs):
                self.state = state
                return False
            if source == self.final:                      # more epochs for a finished fold: work on a copy
                tmp = atomic.temp_name(self.partial)
                os.remove(tmp)
                shutil.copytree(self.final, tmp)
                os.remove(os.path.join(tmp, "metrics.json"))  # the copy is unfinished until it finishes itself
                shutil.rmtree(self.partial, ignore_errors=True)
                os.replace(tmp, self.partial)
            self.resuming = True
            self.state = {**fresh_state(), **state, "stopped": None, "done": False}
            if state.get("stopped") in _FINAL_STOPS:
                self.state["stopped"] = state["stopped"]
            self._settle()
            hist = os.path.join(self.partial, "history.csv")
            if os.path.exists(hist):
                self.history = [h for h in pd.read_csv(hist).to_dict("records") if h["epoch"] <= self.state["epoch"]]
        else:
            if os.path.exists(self.partial):
                done = self._progress(self.partial)
                if done and not restart:
                    raise KitError(f"{self.partial} holds unfinished training ({done} epoch(s) committed): continue "
                                   f"it with --resume, or discard it with --restart")
                if done:
                    print(f"restart: discarding {done} committed epoch(s) in {self.partial}", flush=True)
                shutil.rmtree(self.partial)
            os.makedirs(self.partial)
        atomic.write_json(os.path.join(self.partial, "config.json"), config)
        return True

    @staticmethod
    def _progress(folder: str) -> int:
        """Epochs committed in an unfinished folder (0: none, or nothing readable)."""
        try:
            return int(atomic.read_json(os.path.join(folder, "state.json")).get("epoch", 0))
        except (OSError, ValueError):
            return 0

    def _resumable(self) -> str | None:
        for d in (self.partial, self.final):
            if all(os.path.exists(os.path.join(d, n)) for n in ("config.json", "state.json")) and \
                    (os.path.exists(os.path.join(d, _LAST[0])) or glob.glob(os.path.join(d, "last.e*.keras"))):
                return d
        return None

    def _settle(self) -> None:
        """Give the plain names to the checkpoints of the position state.json names; drop others."""
        d = self.partial
        for plain, stamped, at in [(_LAST[0], _LAST[1], (self.state["epoch"], self.state.get("step", 0)))] + \
                [(p, s, (self.state["best_epoch"],)) for p, s in _BEST]:
            want = os.path.join(d, stamped.format(*at))
            if os.path.exists(want):
                os.replace(want, os.path.join(d, plain))
            pattern = re.escape(stamped).replace(r"\{:04d\}", r"\d{4}").replace(r"\{:06d\}", r"\d{6}")
            for p in os.listdir(d):
                if re.fullmatch(pattern, p):
                    os.remove(os.path.join(d, p))
        atomic.clean_stale(d)

    def load_last(self):
        """The model and optimizer of the last committed epoch (call inside the strategy scope)."""
        import keras  # TensorFlow starts here, on first use: after any feature workers forked

        return keras.models.load_model(os.path.join(self.partial, _LAST[0]))

    @property
    def epoch(self) -> int:
        """Epochs done: Keras' `initial_epoch`."""
        return int(self.state["epoch"])

    @property
    def last_epoch(self) -> int:
        """Keras' `epochs`: the planned length, or where a fold that already stopped (early, on a
        perfect score, or on a non-finite loss) but was killed before finishing stands."""
        return self.epoch if self.state["stopped"] in _FINAL_STOPS else self.epochs

    # ------------------------------------------------------------------ per epoch

    def callback(self, evaluate: Callable[[object], EpochScore], patience: int, max_minutes: float, seed: int,
                 best_possible: float = math.inf, steps: int = 0, checkpoint_minutes: float = 0.0):
        """The Keras callback that scores, checkpoints and stops; see `_monitor_class`.

        `best_possible` is the metric's ceiling (1.0 for lwlrap and MAP@3): once the best epoch
        reaches it no later epoch can be better, so the epochs patience would still wait are skipped;
        the kept weights and out-of-fold scores are the same as without the stop. `steps` (batches
        per epoch) and `checkpoint_minutes`: inside an epoch, a checkpoint every that many minutes,
        and --max-minutes checked after every batch (on big data an epoch takes hours)."""
        return _monitor_class()(self, evaluate, patience, max_minutes, seed, best_possible, steps, checkpoint_minutes)

    def end_epoch(self, model, result: EpochScore, seconds: float, loss: float = math.nan) -> bool:
        """Commit the next epoch of a model trained without Keras' fit (a classifier fitted in one
        go: one fit is its one epoch), as the callback commits one: scored, its checkpoints written
        with the model's save_weights / save, state.json the commit point. True when it is the best."""
        return self._end_epoch(model, self.epoch + 1, loss, 0.0, result, seconds)

    def _end_epoch(self, model, epoch: int, loss: float, lr: float, result: EpochScore, seconds: float) -> bool:
        st, d = self.state, self.partial
        row = {"epoch": epoch, "loss": loss, self.metric: result.score, **result.extra, "lr": lr,
               "seconds": round(seconds, 2)}
        self.history.append(row)
        better = bool(np.isfinite(result.score)) and result.score > st["best"] + 1e-9
        if better:
            st.update(best=float(result.score), best_epoch=epoch, wait=0)
            with atomic.atomic_path(os.path.join(d, _BEST[0][1].format(epoch)), suffix=".weights.h5") as tmp:
                model.save_weights(tmp)
            atomic.write_csv(os.path.join(d, _BEST[1][1].format(epoch)), result.oof, float_format="%.6g")
        else:
            st["wait"] += 1
        with atomic.atomic_path(os.path.join(d, _LAST[1].format(epoch, 0)), suffix=".keras") as tmp:
            model.save(tmp)
        atomic.write_csv(os.path.join(d, "history.csv"), pd.DataFrame(self.history))
        st["epoch"], st["step"] = epoch, 0
        st["seconds"] = round(st["seconds"] + seconds, 1)
        kill_point(f"before-state-{epoch}")
        atomic.write_json(os.path.join(d, "state.json"), st)      # the commit point of this epoch
        kill_point(f"after-state-{epoch}")
        self._settle()
        return better

    def _commit_step(self, model, step: int, seconds: float) -> None:
        """A checkpoint inside epoch state.epoch + 1, after `step` of its batches: model and
        optimizer only (no score: the epoch is not over). --resume continues from it."""
        st, d = self.state, self.partial
        with atomic.atomic_path(os.path.join(d, _LAST[1].format(st["epoch"], step)), suffix=".keras") as tmp:
            model.save(tmp)
        st["step"] = step
        st["seconds"] = round(st["seconds"] + seconds, 1)
        kill_point(f"before-step-state-{st['epoch'] + 1}-{step}")
        atomic.write_json(os.path.join(d, "state.json"), st)      # the commit point of this checkpoint
        kill_point(f"after-step-state-{st['epoch'] + 1}-{step}")
        self._settle()

    @property
    def step(self) -> int:
        """Batches of epoch `epoch + 1` already trained (a checkpoint inside an epoch)."""
        return int(self.state.get("step", 0))

    def fit(self, model, dataset_from: Callable[[int, int], object], steps: int, callbacks: list, until: int,
            verbose: int) -> None:
        """model.fit from the committed position to epoch `until`: first the rest of an epoch a
        checkpoint inside it left (`dataset_from(epoch, step)` skips the batches it trained), then
        whole epochs."""
        if self.step and self.epoch < until:
            print(f"resume: epoch {self.epoch + 1} from batch {self.step + 1} of {steps}", flush=True)
            model.fit(dataset_from(self.epoch, self.step), epochs=self.epoch + 1, initial_epoch=self.epoch,
                      steps_per_epoch=steps - self.step, shuffle=False, callbacks=callbacks, verbose=verbose)
            if self.state["stopped"] is not None or self.step:
                return
        if self.epoch < until:
            model.fit(dataset_from(self.epoch, 0), epochs=until, initial_epoch=self.epoch, steps_per_epoch=steps,
                      shuffle=False, callbacks=callbacks, verbose=verbose)

    # ------------------------------------------------------------------ end

    def finish(self, model, title: str, extra: dict | None = None,
               per_label: Callable[[pd.DataFrame], pd.Series] | None = None) -> dict:
        """Write metrics.json and the plots, mark the fold done and move it into place."""
        st, d = self.state, self.partial
        if st["epoch"] == 0 or st["best_epoch"] == 0:
            raise KitError(f"{d}: no epoch finished with a finite {self.metric}; nothing to keep")
        model.load_weights(os.path.join(d, _BEST[0][0]))
        with atomic.atomic_path(os.path.join(d, "best.keras"), suffix=".keras") as tmp:
            model.save(tmp)
        history = pd.DataFrame(self.history)
        plots.plot_history(history, os.path.join(d, "history.png"), self.metric, title)
        best_row = history[history["epoch"] == st["best_epoch"]].to_dict("records")
        extras = {k: v for k, v in (best_row[0] if best_row else {}).items()
                  if k not in ("epoch", "loss", "lr", "seconds", self.metric)}
        metrics = {"metric": self.metric, "score": st["best"], self.metric: st["best"], **extras,
                   "best_epoch": st["best_epoch"], "epochs_run": st["epoch"], "epochs_planned": self.epochs,
                   "stopped": st["stopped"], "train_seconds": st["seconds"], **(extra or {})}
        if per_label is not None:
            oof = pd.read_csv(os.path.join(d, "oof.csv"))
            scores = per_label(oof)
            metrics["per_label"] = {str(k): round(float(v), 4) for k, v in scores.items()}
            plots.plot_bars(scores, os.path.join(d, "per_label.png"), f"out-of-fold {self.metric} per label",
                            f"{title}: per label, worst first")
        atomic.write_json(os.path.join(d, "metrics.json"), metrics)
        kill_point("before-done")
        st["done"] = True
        atomic.write_json(os.path.join(d, "state.json"), st)
        kill_point("before-move")
        atomic.replace_dir(self.partial, self.final)
        return metrics

    def finished_metrics(self) -> dict:
        return atomic.read_json(os.path.join(self.final, "metrics.json"))


def _monitor_class():
    import keras  # TensorFlow starts here, on first use: after any feature workers forked

    class FoldMonitor(keras.callbacks.Callback):
        """Scores the validation data after each epoch and commits the fold's checkpoints.

        Not Keras' ModelCheckpoint/EarlyStopping/CSVLogger: they write in place (a kill leaves a
        torn file) and EarlyStopping's patience restarts at zero on resume. Dropout seeds are
        reset from (seed, epoch) at each epoch start, so a resumed run replays exactly what an
        uninterrupted one would have done.
        """

        def __init__(self, run: FoldRun, evaluate, patience: int, max_minutes: float, seed: int,
                     best_possible: float, steps: int, checkpoint_minutes: float):
            super().__init__()
            self.run, self.evaluate = run, evaluate
            self.patience, self.max_minutes, self.seed = patience, max_minutes, seed
            self.best_possible = best_possible
            self.steps, self.checkpoint_s = steps, 60 * checkpoint_minutes
            self.t_start = time.time()
            self.stopped_inside = False

        def on_epoch_begin(self, epoch, logs=None):
            self.t_epoch = self.t_commit = time.time()
            self.offset = self.run.step if epoch == self.run.epoch else 0     # the rest of a checkpointed epoch
            # Each seed generator draws once per training step (its second word counts the draws), so
            # the rest of a checkpointed epoch starts where the uninterrupted one would be.
            states = [v for v in self.model.non_trainable_variables if v.path.endswith("seed_generator_state")]
            for i, v in enumerate(states):
                v.assign(np.array([self.seed * 7919 + i, (epoch << 20) + self.offset], dtype=v.dtype))

        def on_train_batch_end(self, batch, logs=None):
            step = self.offset + batch + 1
            if not self.steps or step >= self.steps:
                return                  # the epoch's end commits it
            now = time.time()
            late = self.max_minutes and now - self.t_start > 60 * self.max_minutes
            if late or (self.checkpoint_s and now - self.t_commit >= self.checkpoint_s):
                self.run._commit_step(self.model, step, now - self.t_commit)
                self.t_commit = now
            if late:
                st = self.run.state
                st["stopped"] = "time"
                atomic.write_json(os.path.join(self.run.partial, "state.json"), st)
                print(f"stopping: --max-minutes {self.max_minutes} reached inside epoch {st['epoch'] + 1}, after "
                      f"batch {step} of {self.steps} (--resume continues from there)", flush=True)
                self.stopped_inside = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.stopped_inside:
                return                  # not a whole epoch: nothing to score
            train_s = time.time() - self.t_epoch
            logs = logs if logs is not None else {}
            result = self.evaluate(self.model)
            logs[self.run.metric] = result.score
            lr = self.model.optimizer.learning_rate
            lr = float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
            loss = float(logs.get("loss", math.nan))
            seconds = time.time() - self.t_commit
            better = self.run._end_epoch(self.model, epoch + 1, loss, lr, result, seconds)
            st = self.run.state
            extra = "".join(f" {k} {v:.4f}" for k, v in result.extra.items() if isinstance(v, float))
            steps = self.params.get("steps") or 0
            print(f"epoch {epoch + 1}/{self.run.epochs}: loss {loss:.4f} {self.run.metric} {result.score:.4f}{extra}"
                  f"{' *' if better else ''} (best {st['best']:.4f} at epoch {st['best_epoch']}) {seconds:.1f}s"
                  f"{f', {steps / train_s:.2f} steps/s' if steps and train_s > 0 else ''}", flush=True)
            stop = None
            if not math.isfinite(loss):
                stop = "nan"
            elif st["wait"] >= self.patience:
                stop = "early"
            elif st["best"] >= self.best_possible - 1e-9:
                stop = "perfect"
            elif self.max_minutes and time.time() - self.t_start > 60 * self.max_minutes:
                stop = "time"
            if stop:
                st["stopped"] = stop
                atomic.write_json(os.path.join(self.run.partial, "state.json"), st)
                print({"nan": "stopping: the loss is not finite (the best epoch so far is kept)",
                       "early": f"early stopping: no better {self.run.metric} for {self.patience} epochs",
                       "perfect": f"stopping: {self.run.metric} {st['best']:.4f} is the best possible; "
                                  f"no later epoch can beat it",
                       "time": f"stopping: --max-minutes {self.max_minutes} reached (--resume continues)"}[stop],
                      flush=True)
                self.model.stop_training = True

    return FoldMonitor


def parse_folds(text: str, n_folds: int) -> list[int]:
    """--fold: a fold number, or 'all'."""
    if text == "all":
        return list(range(n_folds))
    try:
        k = int(text)
    except ValueError:
        raise KitError(f"--fold {text!r}: expected a fold number or 'all'") from None
    if not 0 <= k < n_folds:
        raise KitError(f"--fold {k}: folds are 0-{n_folds - 1} (--n-folds {n_folds})")
    return [k]


def fit_verbosity() -> int:
    """Keras' progress bar on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 0
