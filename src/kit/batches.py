"""tf.data over Python generators of training batches, the same for both competitions."""
from __future__ import annotations

from typing import Callable, Iterator

PREFETCH_BATCHES = 4        # batches made ahead of the model: a generator makes one in milliseconds


def no_autotune():
    """tf.data options with the autotuner off. Its thread sleeps for a period that doubles from
    10 ms up to a minute, and when `fit` ends the iterator waits for its next wake-up, so a fit
    could sit idle for seconds (up to a minute) after its last step. A one-generator pipeline has
    nothing to tune but its prefetch depth, fixed instead."""
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def generator_dataset(make: Callable[[], Iterator], signature, prefetch: int = PREFETCH_BATCHES):
    """A tf.data.Dataset of the batches `make()` yields (called afresh for every iterator, so
    each `fit` starts where `make` says), `prefetch` batches ahead, autotuner off."""
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    ds = tf.data.Dataset.from_generator(make, output_signature=signature)
    return ds.prefetch(prefetch).with_options(no_autotune())


def signature_of(batch: tuple) -> tuple:
    """TensorSpecs of a batch's arrays with the batch dimension left open (the last may be short)."""
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    return tuple(tf.TensorSpec((None,) + tuple(a.shape[1:]), tf.as_dtype(a.dtype)) for a in batch)
