"""Seconds and GFLOP per training step of the kit's networks, side by side in one process.

    python -m benchmarks.step_time [--variants fat:standard:32:jit,fat:standard:32:nojit:bf16,qd:cnn:nojit]

Each variant is fat:CONV:WIDTH:XLA[:bf16] (a FAT2019 CNN: --conv, --width; batch 32 of 64-mel x
128-frame crops, the defaults' shape, 16 labels) or qd:MODEL:XLA[:bf16] (a Quick Draw model at its
defaults, batch 64, 32 categories); XLA is jit or nojit, and bf16 trains in mixed_bfloat16 (what
--mixed-precision means on a CPU), else float32. Random inputs; one warm-up call of two steps off
the clock (tracing, XLA compiling), then the best of three timed pairs of steps. FLOPs are counted
by src.kit.flops.training_gflop. Run it alone: it measures the CPU it shares.
"""
from __future__ import annotations

import argparse
import time

DEFAULT = ("fat:standard:32:jit,fat:standard:32:nojit,fat:standard:32:nojit:bf16,fat:standard:32:jit:bf16,"
           "fat:standard:16:jit,fat:standard:16:nojit:bf16,fat:separable:32:nojit,fat:separable:32:nojit:bf16,"
           "qd:cnn:jit,qd:cnn:nojit,qd:cnn:nojit:bf16,qd:convlstm:jit,qd:convlstm:nojit,qd:convlstm:nojit:bf16")


def build(spec: list[str]):
    """(model, batch size, inputs shape, labels, description) for one variant's fields."""
    if spec[0] == "fat":
        from src.fat2019 import models
        from src.fat2019.config import FatConfig

        conv, width = spec[1], int(spec[2])
        cfg = FatConfig(width=width, conv=conv)
        m = models.build(cfg, 16)
        m.compile(optimizer="adamw", loss=models.loss(cfg))
        return m, 32, (64, 128, 1), 17, f"FAT2019 cnn, --conv {conv}, width {width}"
    from src.quickdraw import models
    from src.quickdraw.config import QDConfig

    cfg = QDConfig(model=spec[1])
    m = models.build_model(cfg, 32)
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    shape = tuple(d or cfg.max_len for d in m.input_shape[1:])        # sequences: their longest
    return m, cfg.batch_size, shape, 32, f"Quick Draw {spec[1]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.step_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=DEFAULT, help=f"comma list (default {DEFAULT})")
    args = ap.parse_args(argv)

    import numpy as np
    import keras  # TensorFlow starts here, on first use
    import tensorflow as tf

    from src.kit.flops import training_gflop

    rng = np.random.default_rng(0)
    print("| network | XLA | precision | GFLOP a step | s a step |\n|---|---|---|---|---|", flush=True)
    for variant in args.variants.split(","):
        spec = variant.split(":")
        bf16 = spec[-1] == "bf16"
        jit = (spec[-2] if bf16 else spec[-1]) == "jit"
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 else "float32")
        m, batch, shape, n_out, what = build(spec)
        m.jit_compile = jit
        x = rng.normal(size=(2 * batch, *shape)).astype(np.float32)
        y = (rng.random((2 * batch, n_out)) < 0.1).astype(np.float32)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
        m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)                 # trace (and compile) off the clock
        t = []
        for _ in range(3):
            t0 = time.time()
            m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
            t.append((time.time() - t0) / 2)
        print(f"| {what}, batch {batch} | {'on' if jit else 'off'} | {keras.mixed_precision.global_policy().name} | "
              f"{training_gflop(m, batch):.1f} | {min(t):.3f} |", flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
