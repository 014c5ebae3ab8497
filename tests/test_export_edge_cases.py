"""minicnn.export at the edges: what a user moving a model on may hand it, the cases that once went wrong.

Each test pins one bug found by probing to_onnx, to_torch and from_torch against PyTorch and
onnxruntime: a torch module that converted to something computing other numbers, a converted
module that torch's own tools refused, an error that did not say what to do.
"""

import numpy as np
import pytest

from minicnn import Conv1D, Conv2DVolume, Dense, Flatten, Parameter, ReLU, Residual, Sequential, Tanh
from minicnn.export import from_torch, to_onnx, to_torch


def forward(torch, net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


# -- from_torch: a module at two places of an nn.Sequential ------------------------------------------
@pytest.mark.parametrize("shared", ["activation", "convolution"])
def test_a_module_used_twice_converts_at_both_places(torch, shared, rng):
    # nn.Module.named_children() yields a module once however often it is used: a shared
    # activation or a weight-tied convolution lost its second use, and the numbers changed
    nn = torch.nn
    torch.manual_seed(0)
    act, conv = nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)
    if shared == "activation":
        net = nn.Sequential(nn.Conv2d(3, 3, 3), act, nn.Conv2d(3, 3, 3), act)
    else:
        net = nn.Sequential(conv, nn.Tanh(), conv)
    net.eval()
    model = from_torch(net)
    assert len(model) == len(net)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), forward(torch, net, x), rtol=1e-5, atol=1e-6)
    assert list(model.state_dict()) == list(net.state_dict())
    # each place owns its layer (minicnn refuses one instance at two places)
    assert len({id(layer) for layer in model}) == len(model)


# -- from_torch: hooks and a replaced forward change what a module computes ---------------------------
def _hooked(nn, kind):
    if kind == "forward-hook":
        conv = nn.Conv2d(2, 2, 3)
        conv.register_forward_hook(lambda module, args, out: 2 * out)
        return nn.Sequential(conv)
    if kind == "pre-hook":
        relu = nn.ReLU()
        relu.register_forward_pre_hook(lambda module, args: (args[0] - 1,))
        return nn.Sequential(nn.Conv2d(2, 2, 3), relu)
    if kind == "hook-on-the-sequential":
        net = nn.Sequential(nn.ReLU())
        net.register_forward_hook(lambda module, args, out: out + 1)
        return net
    if kind == "weight-norm":
        return nn.Sequential(nn.utils.weight_norm(nn.Conv2d(2, 2, 3)))
    if kind == "prune":
        from torch.nn.utils import prune

        conv = nn.Conv2d(2, 2, 3)
        prune.l1_unstructured(conv, "weight", amount=0.5)
        return nn.Sequential(conv)
    relu = nn.ReLU()
    relu.forward = lambda x: 3 * x  # "forward-replaced"
    return nn.Sequential(relu)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # nn.utils.weight_norm is deprecated
@pytest.mark.parametrize(
    "kind, match",
    [
        ("forward-hook", r"from_torch: module 0 \(Conv2d\) has 1 forward hook.*remove"),
        ("pre-hook", r"from_torch: module 1 \(ReLU\) has 1 forward pre-hook"),
        ("hook-on-the-sequential", r"from_torch: the module given \(Sequential\) has 1 forward hook"),
        ("weight-norm", r"module 0 \(Conv2d\) has 1 forward pre-hook.*remove_weight_norm"),
        ("prune", r"module 0 \(Conv2d\) has 1 forward pre-hook.*prune.remove"),
        ("forward-replaced", r"module 0 \(ReLU\) has its own forward.*del module.forward"),
    ],
    ids=lambda value: value if "(" not in value else "",
)
def test_a_module_with_hooks_or_its_own_forward_is_refused(torch, kind, match):
    # These were converted as the plain module, silently dropping what the hook computes
    with pytest.raises(ValueError, match=match):
        from_torch(_hooked(torch.nn, kind))


def test_a_global_forward_hook_is_refused(torch):
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: out)
    try:
        with pytest.raises(ValueError, match="from_torch: a global forward hook is registered.*remove"):
            from_torch(torch.nn.Sequential(torch.nn.ReLU()))
    finally:
        handle.remove()


def test_extra_parameters_name_the_module(torch):
    # the message came from minicnn's Conv2DVolume.load_state_dict, naming no torch module
    conv = torch.nn.Conv2d(2, 2, 3)
    conv.register_parameter("scale", torch.nn.Parameter(torch.ones(1)))
    with pytest.raises(ValueError, match=r"from_torch: module 1 \(Conv2d\) holds state.*'scale'.*Conv2DVolume"):
        from_torch(torch.nn.Sequential(torch.nn.ReLU(), conv))


def test_a_module_without_values_is_refused_clearly(torch):
    with torch.device("meta"):
        net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"from_torch: module 0 \(Linear\): 0.weight is on the meta device"):
        from_torch(net)


def test_an_unsupported_module_names_its_full_class_and_the_fix(torch):
    # a class named as torch's (a quantized Linear, a user's own) read "module 1 is Linear ...,
    # which minicnn has no layer for. Supported: nn.Linear, ...", with no fix
    linear = type("Linear", (torch.nn.Module,), {"__module__": "mymodels", "forward": lambda self, x: x})
    with pytest.raises(TypeError, match=r"module 1 is mymodels\.Linear \(Linear\(\)\).*Replace it with one of those"):
        from_torch(torch.nn.Sequential(torch.nn.Flatten(), linear()))


def test_a_subclass_of_sequential_gets_a_fix_that_works(torch, rng):
    # "wrap it: from_torch(nn.Sequential(module))" led to "module 0 is Block, which minicnn has no
    # layer for": a grouping subclass (torchvision's Conv2dNormActivation, say) is its modules in order
    nn = torch.nn

    class Block(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Conv2d(2, 3, 3), nn.ReLU())

    block = Block().eval()
    with pytest.raises(TypeError, match=r"got Block; Block subclasses nn.Sequential .*nn.Sequential\(\*module\)"):
        from_torch(block)
    with pytest.raises(TypeError, match=r"(?s)module 0 is Block .*give nn.Sequential\(\*it\) instead"):
        from_torch(nn.Sequential(block, nn.Flatten()))
    model = from_torch(nn.Sequential(*block))  # the fix, as the message gives it
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), forward(torch, block, x), rtol=1e-5, atol=1e-6)

    class Doubled(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(TypeError, match="Doubled subclasses nn.Sequential with a forward of its own: rebuild it"):
        from_torch(Doubled(nn.ReLU()))


# -- to_torch: the module works with torch's own tools -------------------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda rng: Sequential(Conv2DVolume(2, 3, 4, stride=2, padding="same", rng=rng)), (2, 7, 9)),
        (lambda rng: Sequential(Conv2DVolume(2, 3, (2, 3), dilation=(1, 2), padding="same", rng=rng)), (2, 6, 5)),
        (lambda rng: Sequential(Conv1D(2, 3, 3, dilation=2, padding="causal", rng=rng)), (2, 11)),
        (lambda rng: Sequential(Residual(Conv2DVolume(2, 2, 3, padding="same", rng=rng), Tanh()), ReLU()), (2, 5, 4)),
    ],
    ids=["same-stride-2", "same-even-dilated", "causal", "residual"],
)
def test_to_torch_modules_compile_with_torchscript(torch, build, shape, rng):
    # torch.jit.script refused SameConv2d/CausalConv1d (a generator expression and a Python
    # padding function in forward) and Residual (super().forward)
    model = build(rng).eval()
    scripted = torch.jit.script(to_torch(model))
    for size in (shape, (*shape[:-1], shape[-1] + 1)):  # the padding is recomputed for each size
        x = rng.standard_normal((2, *size)).astype(np.float32)
        np.testing.assert_allclose(forward(torch, scripted, x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_non_native_byte_order_weights_convert(torch, rng):
    # torch.from_numpy refuses a big-endian array: to_torch crashed with torch's own message
    dense = Dense(3, 2, rng=rng)
    dense.weight = Parameter(dense.weight.data.astype(">f4"))
    model = Sequential(Flatten(), dense)
    net = to_torch(model)
    assert np.array_equal(net.state_dict()["1.weight"].numpy(), dense.weight.data)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(forward(torch, net, x), model.predict(x), rtol=1e-6)


# -- to_onnx: the batch axis given by mistake --------------------------------------------------------
def test_an_input_shape_with_the_batch_axis_says_so(rng, tmp_path):
    model = Sequential(Conv2DVolume(3, 4, 3, rng=rng), Flatten(), Dense(4 * 2 * 2, 2, rng=rng))
    with pytest.raises(ValueError, match=r"without the batch axis: did you mean input_shape=\(3, 4, 4\)\?"):
        to_onnx(model, tmp_path / "model.onnx", (1, 3, 4, 4))
    assert not list(tmp_path.iterdir())
