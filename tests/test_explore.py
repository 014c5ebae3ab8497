"""minicnn.plot.explore: the page's data, its budget, its arguments, and that it works for every layer.

What the browser shows is tested in a real browser in test_explore_browser.py; here the page is
read as a file: its embedded JSON is parsed and checked against minicnn's own layer outputs.
"""

import copy
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from explore_models import EXAMPLES, Scale, demo_module, demo_network, every_layer_models, layer_outputs

import minicnn as m
from minicnn.export.table import TABLE
from minicnn.plot import explore
from minicnn.plot.explore import page_data
from minicnn.plot.explore_layers import DESCRIBE, TOP_TERMS
from minicnn.plot.explore_store import json_numbers

CLASSES = ("vertical_edge", "horizontal_edge", "diagonal_edge", "square", "circle", "triangle")


@pytest.fixture(scope="module")
def demo():
    """The demo network (random weights) and one image."""
    rng = np.random.default_rng(3)
    model = demo_network(rng)
    return model, rng.random((3, 32, 32), dtype=np.float32)


def tensor(data: dict, tid: int) -> np.ndarray:
    """An embedded tensor as an array: its kept maps, (kept, *spatial), or a vector (kept,)."""
    t = data["meta"]["tensors"][tid]
    values = np.array([np.nan if v is None else v for v in data["arrays"][t["data"]]])
    return values.reshape([t["kept"], *t["shape"][1:]])


def array(data: dict, aid) -> np.ndarray:
    return None if aid is None else np.array(data["arrays"][aid], dtype=np.float64)


def write(tmp_path, model, x, name="page.html", **kwargs):
    path = explore(model, x, tmp_path / name, **kwargs)
    html = path.read_text(encoding="utf-8")
    return path, html, page_data(html)


def conv_cell(X, W, bias, node, f, o) -> float:
    """One output cell of a convolution from the page's data, the textbook's way: the window on every
    input channel of the filter's group (cells in the padding are zeros), times the filter's slices,
    summed, plus the bias."""
    cg = W.shape[1]
    g = f // (node["out_channels"] // node["groups"])
    taps = np.array(list(np.ndindex(*node["kernel"])))  # (KK, spatial axes)
    at = np.array(o) * node["stride"] - np.array(node["pads"]) + taps * node["dilation"]
    inside = ((at >= 0) & (at < X.shape[1:])).all(axis=1)
    window = X[g * cg : (g + 1) * cg][(slice(None), *at[inside].T)]  # (C/groups, taps inside)
    products = window * W[f].reshape(cg, -1)[:, inside]
    return products.sum() + (0.0 if bias is None else bias[f])


def check_conv_sums(data: dict, node: dict, expected: np.ndarray, positions=None) -> int:
    """The page's conv data summed by hand equals minicnn's output; returns the cells checked."""
    X = tensor(data, node["input"])
    assert X.shape[0] == data["meta"]["tensors"][node["input"]]["shape"][0], "the test needs every input channel"
    out_shape = expected.shape[1:]
    node = dict(node, out_channels=expected.shape[0])
    W = array(data, node["weight"]).reshape(node["filters"], -1, *node["kernel"])
    bias = array(data, node["bias"])
    cells = list(np.ndindex(*out_shape)) if positions is None else positions
    for f in range(node["filters"]):
        for o in cells:
            assert conv_cell(X, W, bias, node, f, o) == pytest.approx(float(expected[(f, *o)]), rel=1e-5, abs=1e-5), (
                node["label"],
                f,
                o,
            )
    return node["filters"] * len(cells)


def nodes_by_label(data: dict) -> dict:
    return {n["label"]: n for n in data["meta"]["nodes"]}


# -- the page itself ----------------------------------------------------------------------------------
def test_the_page_is_one_file_with_no_address_outside_it(tmp_path, demo):
    path, html, _ = write(tmp_path, *demo)
    assert path == tmp_path / "page.html"
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""\b(src|href)\s*=\s*["']?(//|[a-z]+:)""", html, flags=re.IGNORECASE)
    assert "<link" not in html and not re.search(r"<script[^>]*\bsrc\b", html)
    assert "<style>" in html and "<script>" in html  # inline style and script
    assert "MINICNN_EXPLORER_DATA" not in html  # the data took the placeholder's place


def test_the_demo_page_stays_within_its_budget(tmp_path, demo):
    path, _, data = write(tmp_path, *demo)
    assert path.stat().st_size < 3_000_000
    assert data["meta"]["notes"] == []  # the demo model fits whole: nothing subsampled


def test_the_residual_demo_page_stays_within_the_budget_too(tmp_path):
    model = demo_module().build_residual_model(6, rng=np.random.default_rng(0))
    path, _, data = write(tmp_path, model, np.random.default_rng(1).random((3, 32, 32), dtype=np.float32))
    assert path.stat().st_size < 3_000_000
    kinds = [n["kind"] for n in data["meta"]["nodes"]]
    assert kinds.count("block") == 2 and kinds.count("add") == 2


def test_every_layer_and_value_of_the_demo_is_embedded_as_minicnn_computed_it(tmp_path, demo):
    model, x = demo
    _, _, data = write(tmp_path, model, x)
    meta = data["meta"]
    assert [n["label"] for n in meta["nodes"]] == [f"{i} {type(layer).__name__}" for i, layer in enumerate(model)]
    assert meta["root"] == list(range(len(model)))
    np.testing.assert_allclose(tensor(data, meta["input"]), x, rtol=1e-6)
    for node, out in zip(meta["nodes"], layer_outputs(model, x)):
        np.testing.assert_allclose(tensor(data, node["output"]), out[0], rtol=2e-6, atol=1e-7, err_msg=node["label"])
    assert meta["parameters"] == sum(p.data.size for p in model.parameters())


def test_the_embedded_conv_data_sums_to_the_layer_outputs(tmp_path, demo):
    model, x = demo
    _, _, data = write(tmp_path, model, x)
    outs = layer_outputs(model, x)
    rng = np.random.default_rng(0)
    checked = 0
    for node in data["meta"]["nodes"]:
        if node["kind"] == "conv":
            expected = outs[node["id"]][0]
            picks = [tuple(rng.integers(0, n) for n in expected.shape[1:]) for _ in range(12)]
            corners = [(0, 0), tuple(n - 1 for n in expected.shape[1:])]  # the padding is read at the corners
            checked += check_conv_sums(data, node, expected, picks + corners)
    assert checked == (16 + 32 + 64) * 14


def test_a_wrong_sum_is_caught_by_that_check(tmp_path, demo):
    # the check above can fail: with the window off by one cell it does
    model, x = demo
    _, _, data = write(tmp_path, model, x)
    node = dict(data["meta"]["nodes"][0], pads=[0, 0])
    with pytest.raises(AssertionError):
        check_conv_sums(data, node, layer_outputs(model, x)[0][0], [(5, 5)])


def test_dense_shows_its_largest_terms_and_they_add_up_with_the_rest(tmp_path, demo):
    model, x = demo
    _, _, data = write(tmp_path, model, x)
    node = data["meta"]["nodes"][-1]
    dense = model[-1]
    inputs = layer_outputs(model, x)[-2][0].astype(np.float64)
    logits = layer_outputs(model, x)[-1][0]
    assert node["kind"] == "dense" and node["top"] == TOP_TERMS
    index = array(data, node["index"]).astype(int).reshape(6, TOP_TERMS)
    xs, ws = array(data, node["x"]).reshape(6, -1), array(data, node["w"]).reshape(6, -1)
    rest, bias = array(data, node["rest"]), array(data, node["bias"])
    for j in range(6):
        terms = dense.weight.data[j].astype(np.float64) * inputs
        expected = np.argsort(-np.abs(terms), kind="stable")[:TOP_TERMS]
        np.testing.assert_array_equal(index[j], expected)
        np.testing.assert_allclose(xs[j], inputs[expected], rtol=1e-6)
        np.testing.assert_allclose(ws[j], dense.weight.data[j, expected], rtol=1e-6)
        assert (xs[j] * ws[j]).sum() + rest[j] + bias[j] == pytest.approx(float(logits[j]), rel=1e-5, abs=1e-6)


def test_the_prediction_is_the_softmax_of_the_last_output_with_the_class_names(tmp_path, demo):
    model, x = demo
    _, _, data = write(tmp_path, model, x, classes=CLASSES)
    logits = layer_outputs(model, x)[-1][0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    prediction = data["meta"]["prediction"]
    np.testing.assert_allclose(array(data, prediction["probs"]), probs, rtol=1e-6)
    assert prediction["classes"] == list(CLASSES) and prediction["top"] == int(np.argmax(probs))
    _, _, numbered = write(tmp_path, model, x, name="numbered.html")
    assert numbered["meta"]["prediction"]["classes"] == ["0", "1", "2", "3", "4", "5"]


def test_x_may_come_with_a_batch_axis_of_one(tmp_path, demo):
    model, x = demo
    _, _, plain = write(tmp_path, model, x, name="a.html")
    _, _, batched = write(tmp_path, model, x[None], name="b.html")
    assert plain == batched


def test_uint8_images_are_read_as_intensities(tmp_path, demo):
    model, x = demo
    pixels = (x * 255).round().astype(np.uint8)
    _, _, data = write(tmp_path, model, pixels)
    np.testing.assert_allclose(tensor(data, data["meta"]["input"]), pixels / np.float32(255), rtol=1e-6)


def test_exploring_changes_nothing_in_the_model(tmp_path):
    model = demo_module().build_residual_model(6, rng=np.random.default_rng(0))
    model.train()
    before = copy.deepcopy(model.state_dict())
    resume = copy.deepcopy(model._resume_state())
    write(tmp_path, model, np.random.default_rng(1).random((3, 32, 32), dtype=np.float32))
    after = model.state_dict()
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert all(np.array_equal(v, model._resume_state()[k]) for k, v in resume.items())  # Dropout drew no mask
    assert model.training and all(layer.training for _, layer in model.named_layers())


# -- every built-in layer --------------------------------------------------------------------------------
def test_the_models_below_hold_every_built_in_layer_and_the_page_knows_them_all():
    models = every_layer_models(np.random.default_rng(0))
    used = {type(layer) for _, model, _ in models for _, layer in model.named_layers()}
    assert set(TABLE) - {m.Sequential} <= used  # every class the export table lists
    assert set(TABLE) - {m.Sequential, m.Residual} <= set(DESCRIBE)
    public = {getattr(m, name) for name in m.layers.__all__} - {m.Layer, m.Parameter}
    assert public <= used | {m.Sequential}


@pytest.mark.parametrize("case", range(3), ids=["image", "signal", "volume"])
def test_every_built_in_layer_renders_and_its_convolutions_add_up(tmp_path, case):
    _, model, x = every_layer_models(np.random.default_rng(0))[case]
    _, _, data = write(tmp_path, model, x)
    meta = data["meta"]
    kinds = {n["label"]: n["kind"] for n in meta["nodes"]}
    for label, kind in kinds.items():
        if not label.endswith(("Scale", "Residual", "Sequential", "x + f(x)")):
            assert kind not in ("custom", "block"), label
    assert kinds.get("10 Scale", "custom") == "custom"  # a user's layer: a box with its output maps
    # every node's output is what minicnn computes
    nodes = nodes_by_label(data)
    for i, (layer, out) in enumerate(zip(model.layers, layer_outputs(model, x))):
        node = nodes[f"{i} {type(layer).__name__}"]
        np.testing.assert_allclose(tensor(data, node["output"]), out[0], rtol=2e-6, atol=1e-6, err_msg=node["label"])
    # every convolution, at every output cell, inside blocks too
    tensors = {n["output"]: tensor(data, n["output"]) for n in meta["nodes"] if "output" in n}
    convs = [n for n in meta["nodes"] if n["kind"] == "conv"]
    assert convs
    for node in convs:
        check_conv_sums(data, node, tensors[node["output"]])


def test_a_residual_block_is_its_layers_and_the_sum_with_its_skip(tmp_path):
    _, model, x = every_layer_models(np.random.default_rng(0))[0]
    _, _, data = write(tmp_path, model, x)
    nodes = nodes_by_label(data)
    block, add = nodes["6 Residual"], nodes["6 x + f(x)"]
    assert block["residual"] and [data["meta"]["nodes"][c]["label"] for c in block["children"]] == [
        "6.0 Conv2DVolume",
        "6.1 Tanh",
        "6 x + f(x)",
    ]
    assert add["skip"] == block["input"] == nodes["5 AvgPool2D"]["output"]
    assert add["input"] == nodes["6.1 Tanh"]["output"] and block["output"] == add["output"]
    np.testing.assert_allclose(
        tensor(data, add["output"]), tensor(data, add["skip"]) + tensor(data, add["input"]), rtol=1e-5, atol=1e-6
    )


def test_a_subclass_of_a_built_in_layer_is_shown_as_the_users_own(tmp_path):
    class Doubled(m.ReLU):
        def forward(self, x):
            return 2 * super().forward(x)

    model = m.Sequential(Doubled(), Scale())
    _, _, data = write(tmp_path, model, np.ones((1, 3, 3), np.float32))
    assert [n["kind"] for n in data["meta"]["nodes"]] == ["custom", "custom"]
    np.testing.assert_allclose(tensor(data, data["meta"]["nodes"][1]["output"]), np.full((1, 3, 3), 4.0))


# -- the budget ----------------------------------------------------------------------------------------
def test_large_tensors_keep_their_first_maps_and_the_page_says_so(tmp_path, demo):
    model, x = demo
    _, _, data = write(tmp_path, model, x, max_values=4096)
    meta = data["meta"]
    first = meta["tensors"][meta["nodes"][0]["output"]]
    assert first["shape"] == [16, 32, 32] and first["kept"] == 4
    assert len(data["arrays"][first["data"]]) == 4 * 32 * 32
    conv6 = meta["nodes"][6]
    assert conv6["filters"] == 4096 // (32 * 9)  # the weights of the first 14 filters
    assert any("0 Conv2DVolume: the first 4 of 16 maps" in note for note in meta["notes"])
    assert any("6 Conv2DVolume: the weights of the first 14 of 64 filters" in note for note in meta["notes"])
    for array_text in data["arrays"]:
        assert len(array_text) <= 4096
    # the step still adds up for what is kept
    check_conv_sums(data, conv6, layer_outputs(model, x)[6][0], [(0, 0), (3, 4)])


def test_numbers_are_written_with_seven_significant_digits():
    assert json_numbers(np.array([1 / 3, 123456789.0, -2.5e-9, 0.0])) == "[0.3333333,1.234568e+08,-2.5e-09,0]"
    assert json_numbers(np.array([np.nan, -np.inf], np.float32)) == "[null,-1e999]"


def test_a_non_finite_input_still_gives_a_page(tmp_path):
    model = m.Sequential(m.ReLU())
    _, _, data = write(tmp_path, model, np.array([[1.0, np.nan, np.inf]], np.float32))
    assert data["arrays"][data["meta"]["tensors"][1]["data"]] == [1.0, None, float("inf")]


def test_class_names_cannot_end_the_data_early(tmp_path):
    model = m.Sequential(m.Flatten(), m.Dense(4, 2, rng=np.random.default_rng(0)))
    names = ["</script><script>alert(1)</script>", "<!-- b"]
    _, html, data = write(tmp_path, model, np.ones((1, 2, 2), np.float32), classes=names)
    assert data["meta"]["prediction"]["classes"] == names
    assert html.count("</script>") == 2  # the data's own and the page's script's


# -- arguments ---------------------------------------------------------------------------------------------
BAD_ARGUMENTS = [
    (
        "not a Sequential",
        lambda model: (model[0], np.zeros((3, 32, 32)), None),
        TypeError,
        "explore: model must be a Sequential, got Conv2DVolume (wrap it: Sequential(layer))",
    ),
    (
        "wrong channels",
        lambda model: (model, np.zeros((1, 32, 32)), None),
        ValueError,
        (
            "explore: x of shape (1, 32, 32) does not fit the model, as one input without the batch axis nor "
            "as a batch of one: Sequential: the layers do not fit together: layer 0"
        ),
    ),
    (
        "a batch",
        lambda model: (model, np.zeros((2, 3, 32, 32)), None),
        ValueError,
        "explore: x of shape (2, 3, 32, 32) is a batch of 2 inputs; the page explains one: pass x[0]",
    ),
    (
        "too few classes",
        lambda model: (model, np.zeros((3, 32, 32)), ["a", "b"]),
        ValueError,
        "explore: classes has 2 names, but the model's last output has 6 classes (shape (1, 6), classes on axis 1)",
    ),
    (
        "classes a string",
        lambda model: (model, np.zeros((3, 32, 32)), "abcdef"),
        TypeError,
        "explore: classes must be a sequence of names",
    ),
    (
        "classes not str",
        lambda model: (model, np.zeros((3, 32, 32)), list(range(6))),
        TypeError,
        "explore: classes must hold str names, got int 0",
    ),
    ("x not numbers", lambda model: (model, np.array(["a"]), None), TypeError, "explore: x has dtype <U1"),
    # a set has no order, a dict's keys may be names or indices: the names would land on the wrong classes
    (
        "classes a set",
        lambda model: (model, np.zeros((3, 32, 32)), set(CLASSES)),
        TypeError,
        "explore: classes must be a sequence of names in class order, got a set",
    ),
    (
        "classes a dict",
        lambda model: (model, np.zeros((3, 32, 32)), {name: i for i, name in enumerate(CLASSES)}),
        TypeError,
        "sorted(classes, key=classes.get)",
    ),
]


@pytest.mark.parametrize(
    "make, error, message", [case[1:] for case in BAD_ARGUMENTS], ids=[case[0] for case in BAD_ARGUMENTS]
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, demo, make, error, message):
    model, x, classes = make(demo[0])
    with pytest.raises(error) as info:
        explore(model, x, tmp_path / "page.html", classes=classes)
    assert message in str(info.value)
    assert not os.listdir(tmp_path)


def test_an_empty_model_and_a_bad_path_are_refused(tmp_path, demo):
    with pytest.raises(ValueError, match="explore: the model has no layers"):
        explore(m.Sequential(), np.zeros(3), tmp_path / "page.html")
    with pytest.raises(TypeError, match="explore: path must be a str or os.PathLike, got int"):
        explore(demo[0], demo[1], 7)
    # the example file name is a page's, not a checkpoint's ('model.npz')
    with pytest.raises(TypeError, match="got bytes; pass a file name such as 'explorer.html'"):
        explore(demo[0], demo[1], b"page.html")
    with pytest.raises(ValueError, match="explore: path is empty; give a file name such as 'explorer.html'"):
        explore(demo[0], demo[1], "")
    with pytest.raises(FileNotFoundError, match="explore: cannot write .* folder .* does not exist"):
        explore(demo[0], demo[1], tmp_path / "missing" / "page.html")
    with pytest.raises(ValueError, match="explore: max_values must be >= 64"):
        explore(demo[0], demo[1], tmp_path / "page.html", max_values=10)
    assert not os.listdir(tmp_path)


def test_a_page_is_replaced_whole(tmp_path, demo):
    path = tmp_path / "page.html"
    path.write_text("old")
    os.chmod(path, 0o600)
    explore(*demo, path)
    assert path.read_text().startswith("<!DOCTYPE html>") and (path.stat().st_mode & 0o777) == 0o600
    assert os.listdir(tmp_path) == ["page.html"]  # no temporary file left


def test_bilinear_upsampling_embeds_the_taps_each_output_reads(tmp_path):
    # taps read off the largest weights of a row missed (1 - t) * x[i0] wherever t > 0.5: half the cells
    x = np.random.default_rng(4).standard_normal((2, 3, 5)).astype(np.float32)
    model = m.Sequential(m.Upsample2D((3, 2), mode="bilinear"))
    _, _, data = write(tmp_path, model, x)
    node = data["meta"]["nodes"][0]
    taps0, taps1 = (array(data, node[f"taps{a}"]).astype(int).reshape(-1, 2) for a in (0, 1))
    w0, w1 = (array(data, node[f"weights{a}"]).reshape(-1, 2) for a in (0, 1))
    # the page's sum: w0[i, a] * w1[j, b] * x[c, taps0[i, a], taps1[j, b]] over a, b
    page = np.einsum("ia,jb,ciajb->cij", w0, w1, x[:, taps0[:, :, None, None], taps1[None, None]])
    np.testing.assert_allclose(page, layer_outputs(model, x)[0][0], rtol=1e-6, atol=1e-6)


def test_dense_terms_of_an_infinite_input_add_up_without_nan(tmp_path):
    # the rest was the total less the top terms: inf - inf, NaN on the page (and a RuntimeWarning)
    x = np.arange(1.0, 7.0, dtype=np.float32)
    x[2] = np.inf
    model = m.Sequential(m.Dense(6, 2, rng=np.random.default_rng(0)))
    model[0].weight.data[...] = np.abs(model[0].weight.data) + 0.1  # one inf term: the sum is +inf, not NaN
    _, _, data = write(tmp_path, model, x)
    node = data["meta"]["nodes"][0]
    index = array(data, node["index"]).astype(int).reshape(2, -1)
    weight = model[0].weight.data.astype(np.float64)
    others = [np.delete(weight[j] * x, index[j]).sum() for j in range(2)]
    assert array(data, node["rest"]).tolist() == pytest.approx(others)  # finite: the inf term is among the top
    assert np.isinf(tensor(data, node["output"])).all()


def test_a_users_layer_that_keeps_its_input_keeps_its_pending_backward(tmp_path):
    class Keep(m.Layer):  # as the Layer docstring's example: forward keeps its input on self, always
        def __init__(self):
            super().__init__()
            self.gain = m.Parameter(np.full(1, 2.0))

        def forward(self, x):
            self.x = x
            return self.gain.data * x

        def backward(self, dout):
            self.gain.grad += (dout * self.x).sum()
            return dout * self.gain.data

    model = m.Sequential(m.Conv2DVolume(1, 2, 3, rng=np.random.default_rng(0)), Keep())
    batch = np.random.default_rng(1).standard_normal((4, 1, 5, 5)).astype(np.float32)
    out = model.forward(batch)
    kept = model[1].x
    explore(model, batch[1], tmp_path / "page.html")  # between the forward and its backward
    assert model[1].x is kept
    model.backward(np.ones_like(out))
    assert model[1].gain.grad[0] == pytest.approx(float(kept.astype(np.float64).sum()), rel=1e-6)


def test_a_users_layer_that_returns_no_array_is_named(tmp_path):
    class Broken(m.Layer):
        def forward(self, x):
            self.x = x

    with pytest.raises(TypeError, match=r"explore: layer 1 \(Broken\(\)\).forward returned a NoneType"):
        explore(m.Sequential(m.ReLU(), Broken()), np.ones(3, np.float32), tmp_path / "page.html")
    assert not os.listdir(tmp_path)


# -- the demo script ------------------------------------------------------------------------------------------
def test_the_demo_writes_the_page_beside_its_pictures_without_matplotlib(tmp_path):
    # the page needs no matplotlib: with an import of it that fails, the demo still writes it
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError('No module named matplotlib', name='matplotlib')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_shapes.py"), "--limit", "100", "--epochs", "1", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = out / "explorer.html"
    assert f"saved the explorer page: {page}" in result.stdout
    data = page_data(page.read_text(encoding="utf-8"))
    assert data["meta"]["prediction"]["classes"] == list(CLASSES)
    assert result.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
