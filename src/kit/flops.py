"""The compute of one training step, counted from a network's layers (for the plan line, the
fold's metrics.json and the ablation tables: what a row costs, next to what it scores)."""
from __future__ import annotations

import numpy as np


def _leaves(layers):
    """Layers with weights of their own: nested models and Bidirectional wrappers opened."""
    for layer in layers:
        if hasattr(layer, "forward_layer"):                       # Bidirectional: two recurrent layers
            yield layer, layer.forward_layer
            yield layer, layer.backward_layer
        elif hasattr(layer, "layers"):                            # a nested functional model
            yield from _leaves(layer.layers)
        else:
            yield layer, layer


def forward_macs(outer, layer) -> int:
    """Multiply-adds of one example through `layer` (`outer`: the layer the model calls, which
    knows the shapes: the Bidirectional wrapper of an LSTM). Layers without weights count 0."""
    import keras  # TensorFlow starts here, on first use: after any feature workers forked

    L = keras.layers
    if isinstance(layer, L.SeparableConv2D):
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        cout = layer.pointwise_kernel.shape[-1]
        return int(np.prod(layer.output.shape[1:3])) * (kh * kw * cin * mult + cin * mult * cout)
    if isinstance(layer, (L.Conv1D, L.Conv2D)):                # kernel (k.., cin, cout) at each output position
        return int(np.prod(layer.output.shape[1:-1])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, L.Dense):                               # on vectors, or at each position of a sequence
        return int(np.prod(layer.output.shape[1:-1] or [1])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, L.LSTM):                                # 4 gates on [input, state] at every time step
        x = outer.input[0] if isinstance(outer.input, (list, tuple)) else outer.input    # [sequence, mask]
        steps, cin = x.shape[1], x.shape[-1]
        return int(steps) * 4 * layer.units * (int(cin) + layer.units)
    return 0


def training_gflop(model, batch_size: int) -> float:
    """Floating-point operations (in billions) of one training step on a batch: 2 per multiply-add
    of the convolutions, dense and LSTM layers, times 3 for the forward pass and the two gradients
    (2 for the first such layer: no gradient for the input). Pooling, normalisation, activations
    and masks are left out (a few percent); every time step of a masked sequence is counted; a
    frozen layer is counted as if it trained (an upper bound)."""
    macs, first = 0, True
    for outer, layer in _leaves(model.layers):
        m = forward_macs(outer, layer)
        if m:
            macs += m * (2 if first else 3)
            first = False
    return 2.0 * macs * batch_size / 1e9
