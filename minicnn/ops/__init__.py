"""The maths of every built-in layer, as pure functions a learner can read.

Each layer is a pair, as in the classic course assignments::

    out, cache = <op>_forward(x, *params, **config)
    dx, *dparams = <op>_backward(dout, cache)

Forward returns its output and exactly what backward needs; backward is calculus on that
cache and returns a tuple whose first entry is dL/dx, then one gradient per parameter, in
the order forward took them (a 1-tuple ``(dx,)`` for an op without parameters, None for a
parameter that was None). Nothing here keeps state, starts threads, reuses buffers or
chooses between algorithms: numpy only, one way to compute each thing, with the derivation
in the docstring beside the code.

Dtypes: every forward computes in the dtype of ``x`` (float32 stays float32, float64 stays
float64); parameters are cast to it, never ``x`` up to them. Converting other inputs
(integers, lists) is the caller's job: the layers and :mod:`minicnn.functional` apply
minicnn's one dtype rule first. ``dout`` is expected in the forward's dtype, and the
gradients have it too.

Shapes are PyTorch's: (N, C, *spatial) with one, two or three spatial axes for convolution,
pooling, batch norm and upsampling.
"""

from .activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .conv import conv_backward, conv_forward
from .conv_transpose import conv_transpose_backward, conv_transpose_forward
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .normalization import (
    batch_norm_backward,
    batch_norm_eval_backward,
    batch_norm_eval_forward,
    batch_norm_forward,
    batch_norm_running_stats,
)
from .pooling import (
    avg_pool_backward,
    avg_pool_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from .reshape import flatten_backward, flatten_forward
from .upsample import (
    linear_taps,
    linear_weights,
    upsample_linear_backward,
    upsample_linear_forward,
    upsample_nearest_backward,
    upsample_nearest_forward,
)
from .windows import Window, col2im, conv_output_size, im2col, resolve_padding, same_padding, window

__all__ = [
    "Window",
    "avg_pool_backward",
    "avg_pool_forward",
    "batch_norm_backward",
    "batch_norm_eval_backward",
    "batch_norm_eval_forward",
    "batch_norm_forward",
    "batch_norm_running_stats",
    "col2im",
    "conv_backward",
    "conv_forward",
    "conv_output_size",
    "conv_transpose_backward",
    "conv_transpose_forward",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "flatten_backward",
    "flatten_forward",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "im2col",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "linear_taps",
    "linear_weights",
    "max_pool_backward",
    "max_pool_forward",
    "relu_backward",
    "relu_forward",
    "resolve_padding",
    "same_padding",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
    "tanh_forward",
    "upsample_linear_backward",
    "upsample_linear_forward",
    "upsample_nearest_backward",
    "upsample_nearest_forward",
    "window",
]
