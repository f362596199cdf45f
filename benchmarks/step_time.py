"""Seconds and GFLOP per training step of FAT2019 CNN variants, side by side in one process.

    python -m benchmarks.step_time [--variants standard:32:jit,standard:32:nojit:bf16] [--labels 16]

Each variant is CONV:WIDTH:jit|nojit[:bf16] (--conv, --width, XLA on or off, float32 or
mixed_bfloat16: what --mixed-precision means on a CPU); batch 32 of 64-mel x 128-frame crops, the
defaults' shape. Two warm-up steps off the clock, then the best of two
timed pairs of steps. FLOPs are counted by src.kit.flops.training_gflop.
"""
from __future__ import annotations

import argparse
import time

DEFAULT = ("standard:32:jit,standard:32:nojit,standard:32:nojit:bf16,standard:32:jit:bf16,standard:16:jit,"
           "standard:16:nojit:bf16,separable:32:nojit,separable:32:nojit:bf16")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.step_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=DEFAULT, help=f"comma list of CONV:WIDTH:jit|nojit[:bf16] (default {DEFAULT})")
    ap.add_argument("--labels", type=int, default=16)
    args = ap.parse_args(argv)

    import numpy as np
    import keras  # TensorFlow starts here, on first use
    import tensorflow as tf

    from src.fat2019 import models
    from src.kit.flops import training_gflop
    from src.fat2019.config import FatConfig

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 64, 128, 1)).astype(np.float32)
    y = (rng.random((64, args.labels + 1)) < 0.1).astype(np.float32)
    print("| --conv | --width | XLA | precision | GFLOP a step | s a step |\n|---|---|---|---|---|---|", flush=True)
    for spec in args.variants.split(","):
        conv, width, jit, *bf16 = spec.split(":")
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if bf16 == ["bf16"] else "float32")
        cfg = FatConfig(width=int(width), conv=conv, jit=jit == "jit")
        m = models.build(cfg, args.labels)
        m.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=models.loss(cfg), jit_compile=cfg.jit)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
        m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)                 # trace (and compile) off the clock
        t = []
        for _ in range(2):
            t0 = time.time()
            m.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
            t.append((time.time() - t0) / 2)
        print(f"| {conv} | {width} | {'on' if cfg.jit else 'off'} | {keras.mixed_precision.global_policy().name} | "
              f"{training_gflop(m, 32):.1f} | {min(t):.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
