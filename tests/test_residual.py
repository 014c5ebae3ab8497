"""Residual: x + f(x), its gradient along both paths, names by position, shape errors before
anything runs, refused layer reuse; a torch nn.Sequential subclass as an oracle where installed."""

import copy

import numpy as np
import pytest

from minicnn import MSE, SGD, Conv2DVolume, Dense, Flatten, Layer, MaxPool2D, Parameter, ReLU, Sequential, gradcheck
from minicnn.layers import BatchNorm2D, Residual


def conv_bn_relu_conv(rng, c=3, kernel=3):
    """The basic residual block of a ResNet: conv, batch norm, ReLU, conv, all keeping the shape."""
    bn = BatchNorm2D(c)
    bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
    bn.bias.data[...] = rng.standard_normal(c) * 0.1
    return Residual(
        Conv2DVolume(c, c, kernel, padding="same", rng=rng),
        bn,
        ReLU(),
        Conv2DVolume(c, c, kernel, padding="same", rng=rng),
    )


class Scale(Layer):
    """A user's layer without a declared output shape: out = gain * x."""

    def __init__(self, gain):
        super().__init__()
        self.gain = Parameter(np.array([gain]))

    def forward(self, x):
        self.x = x
        return self.gain.data * x

    def backward(self, dout):
        self.gain.grad += np.sum(dout * self.x)
        return dout * self.gain.data


class Crop(Layer):
    """A user's layer that changes the shape, and declares no output shape."""

    def forward(self, x):
        return x[..., 1:]

    def backward(self, dout):
        raise AssertionError("not reached")


def test_hand_worked_values_and_the_two_gradient_paths():
    # f(x) = 3x: out = x + 3x = 4x; dL/dx = dout + 3 dout = 4 dout; dL/dgain = sum(dout * x)
    block = Residual(Scale(3.0))
    x = np.array([[1.0, -2.0]])
    np.testing.assert_array_equal(block(x), [[4.0, -8.0]])
    np.testing.assert_array_equal(block.backward(np.array([[1.0, 10.0]])), [[4.0, 40.0]])
    np.testing.assert_array_equal(block.parameters()[0].grad, [1.0 - 20.0])


# (N, C, H, W), kernel
BLOCKS = {"square-k3": ((2, 3, 4, 4), 3), "rect-batch1-k3": ((1, 3, 3, 5), 3), "rect-k2-odd-same": ((2, 2, 4, 3), 2)}


@pytest.mark.parametrize("shape, kernel", list(BLOCKS.values()), ids=list(BLOCKS))
def test_gradcheck_of_a_conv_bn_relu_conv_block(rng, shape, kernel):
    block = conv_bn_relu_conv(rng, shape[1], kernel)
    assert gradcheck(block, rng.standard_normal(shape))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_equals_x_plus_the_layers_run_as_a_sequential(rng, dtype):
    block = conv_bn_relu_conv(rng)
    f = copy.deepcopy(Sequential(*block.layers))
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    out = block(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, x + f(x))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = block.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, dout + f.backward(dout))
    for p, q in zip(block.parameters(), f.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_children_are_named_by_position_as_in_torch(rng):
    block = conv_bn_relu_conv(rng)
    assert list(block.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "3.weight",
        "3.bias",
    ]
    model = Sequential(Conv2DVolume(1, 3, 3, padding=1, rng=rng), block)
    assert "1.3.bias" in model.state_dict()
    assert block[2].__class__ is ReLU and len(block) == 4


def test_a_shape_f_cannot_keep_is_refused_before_any_layer_runs(rng):
    bn = BatchNorm2D(3)
    block = Residual(bn, Conv2DVolume(3, 4, 3, padding="same", rng=rng))  # 3 -> 4 channels
    match = (
        r"Residual: its layers map input of shape \(2, 3, 5, 5\) to \(2, 4, 5, 5\), but x \+ f\(x\) "
        r"needs f to keep the shape; use padding=\"same\" and stride 1"
    )
    with pytest.raises(ValueError, match=match):
        block(rng.standard_normal((2, 3, 5, 5)))
    assert bn.num_batches_tracked.data == 0  # the batch norm never ran
    with pytest.raises(ValueError, match=match):
        block.output_shape((2, 3, 5, 5))


@pytest.mark.parametrize(
    "layers, match",
    [
        (lambda rng: [Conv2DVolume(3, 3, 3, rng=rng)], r"\(2, 3, 6, 6\) to \(2, 3, 4, 4\)"),  # no padding
        (lambda rng: [Conv2DVolume(3, 3, 3, stride=2, padding="same", rng=rng)], r"to \(2, 3, 3, 3\)"),
        (lambda rng: [MaxPool2D(2)], r"to \(2, 3, 3, 3\)"),
        (
            lambda rng: [Conv2DVolume(2, 2, 3, rng=rng)],
            r"Residual: the layers do not fit together: layer 0 .* 3 channels, expected 2",
        ),
    ],
    ids=["valid-padding", "stride2", "pooling", "wrong-channels"],
)
def test_shape_errors_name_the_problem(rng, layers, match):
    with pytest.raises(ValueError, match=match):
        Residual(*layers(rng))(rng.standard_normal((2, 3, 6, 6)))


def test_a_residual_inside_a_sequential_is_checked_with_the_stack(rng):
    model = Sequential(Conv2DVolume(1, 2, 3, rng=rng), Residual(Conv2DVolume(2, 2, 3, rng=rng)))
    with pytest.raises(ValueError, match=r"(?s)layer 1 \(Residual\(.*needs f to keep the shape"):
        model(rng.standard_normal((1, 1, 8, 8)))
    good = Sequential(Conv2DVolume(1, 2, 3, rng=rng), Residual(Conv2DVolume(2, 2, 3, padding=1, rng=rng)))
    assert good.output_shape((1, 1, 8, 8)) == (1, 2, 6, 6)


def test_a_user_layer_without_a_declared_shape_is_checked_after_it_runs(rng):
    assert Residual(Scale(2.0)).output_shape((2, 5)) == (2, 5)
    with pytest.raises(ValueError, match=r"Residual: its layers map input of shape \(2, 5\) to \(2, 4\)"):
        Residual(Crop())(rng.standard_normal((2, 5)))


def test_the_same_layer_twice_is_refused():
    relu = ReLU()
    with pytest.raises(ValueError, match=r"Residual: the same ReLU instance is at positions 0 and 1"):
        Residual(relu, relu)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((), ValueError, r"Residual needs at least one layer"),
        ((ReLU,), TypeError, r"Residual: argument 0 is a type, expected a Layer.*ReLU\(\)"),
    ],
    ids=["empty", "class-not-instance"],
)
def test_bad_constructor_arguments(args, error, match):
    with pytest.raises(error, match=match):
        Residual(*args)


def test_repr_indents_nested_blocks(rng):
    block = Residual(Dense(2, 2, rng=rng), Residual(ReLU()))
    assert repr(block) == ("Residual(\n  (0): Dense(2, 2, bias=True)\n  (1): Residual(\n    (0): ReLU()\n  )\n)")


def test_eval_mode_reaches_the_layers_and_keeps_nothing(rng):
    block = conv_bn_relu_conv(rng)
    x = rng.standard_normal((2, 3, 4, 4))
    block(x)
    block.eval()
    assert not block[1].training
    before = block[1].num_batches_tracked.data.copy()
    block(x)
    assert block[1].num_batches_tracked.data == before
    with pytest.raises(RuntimeError, match=r"Residual.backward called after a forward in eval mode"):
        block.backward(np.ones(x.shape))


def test_backward_checks_the_gradient_shape(rng):
    block = Residual(Dense(3, 3, rng=rng), Flatten())
    block(rng.standard_normal((2, 3)))
    with pytest.raises(RuntimeError, match=r"Residual.backward got a gradient of shape \(2, 4\)"):
        block.backward(np.zeros((2, 4)))


# -- PyTorch as the oracle ---------------------------------------------------------------------


def torch_block(torch, c, kernel):
    """conv-BN-ReLU-conv as a subclass of torch's nn.Sequential that adds its input."""
    nn = torch.nn

    class SameConv(nn.Conv2d):
        # minicnn's "same": for an even kernel the extra padding row/column goes bottom/right
        def forward(self, x):
            total = kernel - 1
            pads = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)
            return super().forward(nn.functional.pad(x, pads))

    class TorchResidual(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    return TorchResidual(
        SameConv(c, c, kernel, dtype=torch.float64),
        nn.BatchNorm2d(c, dtype=torch.float64),
        nn.ReLU(),
        SameConv(c, c, kernel, dtype=torch.float64),
    )


def test_state_dict_keys_equal_a_torch_sequential_subclass(rng):
    torch = pytest.importorskip("torch")
    assert list(conv_bn_relu_conv(rng).state_dict()) == list(torch_block(torch, 3, 3).state_dict())


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape, kernel", list(BLOCKS.values()), ids=list(BLOCKS))
def test_matches_a_torch_sequential_subclass(rng, shape, kernel, dtype):
    torch = pytest.importorskip("torch")
    block = conv_bn_relu_conv(rng, shape[1], kernel)
    module = torch_block(torch, shape[1], kernel)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in block.state_dict().items()})

    x = rng.standard_normal(shape).astype(dtype)
    out = block(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = block.backward(dout)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_out = module(tx)
    t_out.backward(torch.from_numpy(dout.astype(np.float64)))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    expected_dx = tx.grad.numpy()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol * np.abs(expected_dx).max())
    theirs = {name: p.grad.numpy() for name, p in module.named_parameters()}
    # the first conv's bias feeds a batch norm, which cancels it: its gradient is 0 up to rounding,
    # so the absolute tolerance follows the scale of all the gradients
    scale = max(np.abs(g).max() for g in theirs.values())
    for name, param in block.named_parameters():
        np.testing.assert_allclose(param.grad, theirs[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
    for name in ["1.running_mean", "1.running_var"]:
        np.testing.assert_allclose(block.state_dict()[name], module.state_dict()[name].numpy(), rtol=1e-5)


def test_a_residual_first_in_a_model_trains_its_layers(rng):
    # fit lets the model's first layer skip dL/dx; for a Residual block that is first, its own first
    # layer skips it, and then nothing needs the block's dx either
    block = Residual(Dense(3, 3, rng=rng), ReLU(), Dense(3, 3, rng=rng))
    assert not hasattr(block, "fit")  # a block inside a model, not a model
    before = block[0].weight.data.copy()
    X = rng.standard_normal((8, 3)).astype(np.float32)
    model = Sequential(block)
    history = model.fit(
        X, 2 * X, loss=MSE(), optimizer=SGD(model.parameters(), lr=0.1), epochs=2, batch_size=4, progress=False
    )
    assert history["loss"][1] < history["loss"][0]
    assert not np.array_equal(block[0].weight.data, before)
    assert block[0].input_grad  # restored after fit
