"""The explorer page in a real browser: headless Chromium opens it from disk and a test clicks, types
and reads what the page shows, and compares it with minicnn's own numbers.

Needs selenium (the ``test`` extra) and Debian's ``chromium`` and ``chromium-driver`` (or Chrome and
its chromedriver); the tests skip, saying so, where either is missing.
"""

import json
import shutil
import tempfile

import numpy as np
import pytest
from explore_models import demo_network, every_layer_models, layer_outputs

import minicnn as m
from minicnn.plot import explore
from minicnn.plot.explore_layers import TOP_TERMS

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (the test extra)")
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# On a closed network Chromium's background connections hang or fail: these flags keep it offline.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def find_browser() -> tuple[str, str] | None:
    """(browser, chromedriver) paths, or None when either is not installed."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def driver():
    found = find_browser()
    if found is None:
        pytest.skip("the browser tests need chromium and chromedriver: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.binary_location = found[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(found[1]))
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo network (random weights), an image, each layer's output and the page."""
    rng = np.random.default_rng(7)
    model = demo_network(rng)
    x = rng.random((3, 32, 32), dtype=np.float32)
    path = explore(model, x, tmp_path_factory.mktemp("page") / "explorer.html")
    return model, x, [out[0] for out in layer_outputs(model, x)], path


def open_page(driver, path):
    driver.get(path.as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "result-value"))
    driver.get_log("browser")  # start each test with an empty console


def assert_no_errors(driver) -> None:
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    assert driver.execute_script("return window.explorerErrors") == []


def overview_map(driver, node: int, channel: int):
    """Node ``node``'s map ``channel`` in the overview, scrolled into view (the mouse acts on what is seen)."""
    canvas = driver.find_element(By.CSS_SELECTOR, f'#node-{node} canvas[data-node="{node}"][data-channel="{channel}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    return canvas


def click_cell(driver, canvas, pos) -> None:
    """Click the middle of cell ``pos`` of a map drawn on ``canvas`` (2-D: (row, column); 1-D: (i,))."""
    cell = int(canvas.get_attribute("data-cell"))
    pads = json.loads(canvas.get_attribute("data-pads"))
    column = pos[-1] + pads[-1]
    row = pos[0] + pads[0] if len(pos) == 2 else 0
    border = 1  # the canvas' CSS border
    # selenium measures the offset from the element's centre
    dx = round(border + (column + 0.5) * cell - canvas.size["width"] / 2)
    dy = round(border + (row + 0.5) * cell - canvas.size["height"] / 2)
    ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()


def shown(driver) -> dict:
    """The selected cell and the numbers the panel shows for it, read in one go (the page may be playing)."""
    return driver.execute_script("""
        const cell = document.getElementById("cell"), result = document.getElementById("result-value");
        return {node: Number(cell.dataset.node), channel: Number(cell.dataset.channel),
                pos: JSON.parse(cell.dataset.pos), text: result.textContent, value: Number(result.dataset.value),
                out: Number(document.getElementById("out-value").dataset.value)};""")


def window_origin(driver) -> list[int]:
    return json.loads(driver.find_element(By.CSS_SELECTOR, "#detail-body [data-window]").get_attribute("data-window"))


def test_clicking_a_conv_output_cell_shows_the_textbook_sum_equal_to_minicnns_output(driver, demo):
    _, _, outs, path = demo
    open_page(driver, path)
    click_cell(driver, overview_map(driver, 3, 5), (6, 9))
    seen = shown(driver)
    assert (seen["node"], seen["channel"], seen["pos"]) == (3, 5, [6, 9])
    expected = float(outs[3][5, 6, 9])  # 3 Conv2DVolume, channel 5, cell (6, 9), as minicnn computed it
    assert float(seen["text"]) == pytest.approx(expected, rel=1e-4, abs=1e-5)  # the sum as the page writes it
    assert seen["value"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert seen["out"] == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert window_origin(driver) == [5, 8]  # padding 1: the 3x3 window starts one cell up and left
    # every product is shown: one row of window x filter = products per input channel (6 shown, the rest summed)
    rows = driver.find_elements(By.CSS_SELECTOR, "#detail-body table.steps > tbody > tr")
    assert len(rows) == 6 and "on the other 10 input channels" in driver.find_element(By.ID, "detail-body").text
    assert "the same" in driver.find_element(By.CSS_SELECTOR, ".eq").text
    assert_no_errors(driver)


def test_the_arrow_keys_and_the_buttons_move_the_window(driver, demo):
    _, _, outs, path = demo
    open_page(driver, path)
    click_cell(driver, overview_map(driver, 0, 2), (10, 20))
    body = driver.find_element(By.TAG_NAME, "body")
    assert shown(driver)["pos"] == [10, 20] and window_origin(driver) == [9, 19]
    for key, pos in (
        (Keys.ARROW_RIGHT, [10, 21]),
        (Keys.ARROW_DOWN, [11, 21]),
        (Keys.ARROW_LEFT, [11, 20]),
        (Keys.ARROW_UP, [10, 20]),
        (Keys.ARROW_UP, [9, 20]),
    ):
        body.send_keys(key)
        seen = shown(driver)
        assert seen["pos"] == pos
        assert window_origin(driver) == [pos[0] - 1, pos[1] - 1]  # stride 1: the window moves with the cell
        assert seen["value"] == pytest.approx(float(outs[0][2, pos[0], pos[1]]), rel=1e-5, abs=1e-6)
    body.send_keys("]")
    assert shown(driver)["channel"] == 3
    driver.find_element(By.ID, "next").click()
    assert shown(driver)["pos"] == [9, 21]
    driver.find_element(By.ID, "prev").click()
    driver.find_element(By.ID, "prev").click()
    assert shown(driver)["pos"] == [9, 19]
    driver.find_element(By.ID, "play").click()  # animate: the cell walks on by itself
    WebDriverWait(driver, 10).until(lambda d: shown(d)["pos"][1] >= 21)
    driver.find_element(By.ID, "play").click()
    assert "play" in driver.find_element(By.ID, "play").text
    seen = shown(driver)
    assert seen["value"] == pytest.approx(float(outs[0][3, seen["pos"][0], seen["pos"][1]]), rel=1e-5, abs=1e-6)
    assert_no_errors(driver)


def test_the_pooling_and_dense_panels_open_and_agree_with_minicnn(driver, demo):
    _, _, outs, path = demo
    open_page(driver, path)
    click_cell(driver, overview_map(driver, 1, 2), (3, 4))  # 1 MaxPool2D
    seen = shown(driver)
    assert (seen["node"], seen["pos"]) == (1, [3, 4])
    assert seen["value"] == pytest.approx(float(outs[1][2, 3, 4]), rel=1e-6)  # one of the values (7 digits)
    window = [float(td.text) for td in driver.find_elements(By.CSS_SELECTOR, "#detail-body .grid td")]
    assert window == pytest.approx(outs[0][2, 6:8, 8:10].ravel().tolist(), rel=1e-3)
    winner = driver.find_element(By.CSS_SELECTOR, "#detail-body .grid td.win")
    assert float(winner.text) == pytest.approx(float(outs[1][2, 3, 4]), rel=1e-3)

    click_cell(driver, overview_map(driver, 10, 0), (4,))  # 10 Dense: its 6 outputs as a strip
    seen = shown(driver)
    assert (seen["node"], seen["pos"]) == (10, [4])
    assert seen["value"] == pytest.approx(float(outs[10][4]), rel=1e-5, abs=1e-6)
    terms = driver.find_elements(By.CSS_SELECTOR, "#dense-terms tr")
    assert len(terms) == 1 + TOP_TERMS
    products = [abs(float(row.find_elements(By.TAG_NAME, "td")[-1].text)) for row in terms[1:]]
    assert products == sorted(products, reverse=True)  # the largest |w x| first

    click_cell(driver, overview_map(driver, 2, 0), (5, 5))  # 2 ReLU: before and after
    assert shown(driver)["value"] == pytest.approx(float(outs[2][0, 5, 5]), rel=1e-6, abs=1e-12)
    assert_no_errors(driver)


def test_hovering_over_a_map_reads_its_value(driver, demo):
    _, _, outs, path = demo
    open_page(driver, path)
    canvas = overview_map(driver, 4, 1)  # 4 MaxPool2D, 8x8 maps
    cell = int(canvas.get_attribute("data-cell"))
    ActionChains(driver).move_to_element_with_offset(
        canvas, round(1 + 2.5 * cell - canvas.size["width"] / 2), round(1 + 5.5 * cell - canvas.size["height"] / 2)
    ).perform()
    tip = driver.find_element(By.ID, "tooltip")
    assert tip.is_displayed()
    assert "channel 1, (5, 2) = " in tip.text
    assert float(tip.text.rsplit("= ", 1)[1]) == pytest.approx(float(outs[4][1, 5, 2]), rel=1e-5)
    assert driver.find_element(By.ID, "readout").text == tip.text
    assert_no_errors(driver)


def test_the_page_draws_and_can_be_photographed(driver, demo, tmp_path):
    open_page(driver, demo[3])
    picture = tmp_path / "explorer.png"
    assert driver.save_screenshot(str(picture))
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page full of maps, not a blank one
    drawn = driver.execute_script("return document.querySelectorAll('canvas.map').length")
    assert drawn > 11 * 3  # every layer's maps, in the overview and the panel
    assert_no_errors(driver)


SWEEP = """
const bad = [];
let cells = 0;
for (const n of NODES) {
  if (n.kind === "block") continue;
  const S = VIEWS[n.output].S, total = prod(S);
  for (let c = 0; c < Math.min(channelsOf(n), arguments[0]); c++)
    for (const i of [0, Math.floor(total / 2), total - 1]) {
      select(n.id, c, unravel(i, S));
      const r = Number($("result-value").dataset.value), o = Number($("out-value").dataset.value);
      cells++;
      if (!(Math.abs(r - o) <= 1e-4 * (1 + Math.abs(o)))) bad.push([n.label, c, i, r, o]);
    }
}
return [cells, bad, NODES.filter(n => n.kind !== "block").map(n => n.kind)];
"""


@pytest.mark.parametrize("case", range(3), ids=["image", "signal", "volume"])
def test_every_built_in_layers_panel_opens_and_works_its_cell_out(driver, tmp_path, case):
    _, model, x = every_layer_models(np.random.default_rng(0))[case]
    open_page(driver, explore(model, x, tmp_path / "page.html"))
    cells, bad, kinds = driver.execute_script(SWEEP, 3)
    assert bad == []  # the page's own sums (or maxima, means, ...) equal minicnn's outputs, everywhere
    assert cells >= 3 * len(kinds)
    assert_no_errors(driver)


def test_a_page_cut_to_its_budget_still_works_out_every_cell_it_offers(driver, tmp_path):
    # with 1,024 values per tensor most maps and filters are cut: the page offers the steps it can show
    model = demo_network(np.random.default_rng(5))
    x = np.random.default_rng(6).random((3, 32, 32), dtype=np.float32)
    open_page(driver, explore(model, x, tmp_path / "page.html", max_values=1024))
    cells, bad, _ = driver.execute_script(SWEEP, 64)
    assert bad == [] and cells > 11 * 3
    assert "Subsampled to keep the page small" in driver.find_element(By.ID, "notes").text
    assert "not embedded" in driver.find_element(By.ID, "node-1").text
    assert_no_errors(driver)


EVERY_CELL = """
const bad = [];
let cells = 0;
for (const n of NODES) {
  if (n.kind === "block") continue;
  const S = VIEWS[n.output].S, total = prod(S);
  for (let c = 0; c < channelsOf(n); c++)
    for (let i = 0; i < total; i++) {
      select(n.id, c, unravel(i, S));
      const r = Number($("result-value").dataset.value), o = Number($("out-value").dataset.value);
      cells++;
      const same = Math.abs(r - o) <= 1e-4 * (1 + Math.abs(o)) || (Number.isNaN(r) && Number.isNaN(o)) || r === o;
      if (!same || $("detail-body").querySelector(".bad")) bad.push([n.label, c, i, String(r), String(o)]);
    }
}
return [cells, bad];
"""


def test_every_cell_of_max_pooling_over_a_nan_and_of_bilinear_upsampling_works_out(driver, tmp_path):
    # a NaN after the first cell of a max-pooling window was passed over (NaN > v is false), and bilinear
    # taps read off a row's largest weights missed the nearer input wherever t > 0.5: "differs" on the page
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6) % 7 - 3
    x[0, 0, 1] = np.nan
    model = m.Sequential(m.MaxPool2D(2), m.Upsample2D((2, 3), mode="bilinear"), m.Upsample2D(3, mode="bilinear"))
    open_page(driver, explore(model, x, tmp_path / "page.html"))
    cells, bad = driver.execute_script(EVERY_CELL)
    assert cells == 36 + 3 * 3 + 6 * 9 + 18 * 27 and bad == []  # the input, the pooling, both upsamplings
    assert_no_errors(driver)


def test_the_numbers_drawn_in_a_map_fit_their_cells(driver, tmp_path):
    # "-0.0072" is seven characters: drawn unsqueezed it ran into the next cells
    x = np.array([[-0.00723, 0.00391, -1.25, 0.5], [1e-5, -3e-4, 2.0, -2.0]], np.float32)[None]
    open_page(driver, explore(m.Sequential(m.ReLU()), x, tmp_path / "page.html"))
    widths = driver.execute_script("""
        const seen = [], fill = CanvasRenderingContext2D.prototype.fillText;
        CanvasRenderingContext2D.prototype.fillText = function (text, x, y, maxWidth) {
          const cell = this.canvas.width / 4;  // the maps here are 4 cells wide
          seen.push([text, Math.min(this.measureText(text).width, maxWidth === undefined ? Infinity : maxWidth), cell]);
          return fill.call(this, text, x, y, maxWidth);
        };
        select(0, 0, [0, 1]);
        CanvasRenderingContext2D.prototype.fillText = fill;
        return seen;""")
    assert any(text == "-0.0072" for text, _, _ in widths)  # numbers were drawn, the long one among them
    assert all(width < cell for _, width, cell in widths), widths
    assert_no_errors(driver)
