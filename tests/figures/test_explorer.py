"""The embedding explorer: selection, neighbours, light notebook outputs, saved HTML.

Oracles: neighbours against a brute-force numpy kNN over the features read with plain h5py;
notebook outputs executed by nbclient (MIME types and sizes measured on the saved file); the
saved page in headless chromium (hovered point's thumbnail decoded and compared to the store's).
"""

from __future__ import annotations

import json
import time

import h5py
import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest

from inspect_kit.analysis.embedding import embed
from inspect_kit.capture import capture
from inspect_kit.data import load_digits_images
from inspect_kit.figures.embedding import plot_embedding
from inspect_kit.figures.explorer import Explorer, FigureView, plotly_js
from inspect_kit.workflows.explore import explore

N_POINTS = 2000


@pytest.fixture(scope="module")
def store(digits_cnn, tmp_path_factory):
    """2,000 digit images (all 1,797 and 203 mirrored) through the trained CNN."""
    X, y = load_digits_images(16)
    extra = N_POINTS - len(X)
    X = np.concatenate([X, X[:extra, :, :, ::-1].copy()])
    y = np.concatenate([y, y[:extra]])
    site = np.where(np.arange(N_POINTS) % 3 == 0, "A", "B")
    path = tmp_path_factory.mktemp("explorer") / "digits.h5"
    s = capture(
        digits_cnn,
        X,
        ["relu1", "relu2", "fc"],
        path,
        labels=y,
        metadata={"site": site, "brightness": X.mean(axis=(1, 2, 3))},
        progress=False,
    )
    yield s
    s.close()


def _brute_knn(X: np.ndarray, i: int, k: int) -> np.ndarray:
    d = np.sqrt(((X.astype(np.float64) - X[i].astype(np.float64)) ** 2).sum(axis=1))
    d[i] = np.inf
    return np.argsort(d, kind="stable")[:k], np.sort(d)[:k]


def _state_size(widget) -> int:
    """Bytes the widget's state takes in a notebook (binary buffers as base64)."""
    from ipywidgets.embed import dependency_state, embed_data

    state = dependency_state([widget])
    return len(json.dumps(embed_data(views=[widget], state=state)["manager_state"]))


# -- Python side ------------------------------------------------------------------------------
def test_selection_is_store_rows_and_syncs_both_ways(store):
    ex = explore(store, layer=["relu2", "fc"], method="pca")
    assert isinstance(ex, Explorer) and len(ex.panels) == 2 and ex.n_points == N_POINTS
    seen = []
    ex.on_select(lambda rows: seen.append(rows.tolist()))
    ex.select([42, 3, 1999, 3])
    assert ex.selected.tolist() == [3, 42, 1999] and ex.selected_points == [3, 42, 1999]
    # what the page sends back (point positions) arrives as store rows
    ex.selected_points = [7, 8]
    assert ex.selected.tolist() == [7, 8] and seen == [[3, 42, 1999], [7, 8]]
    with pytest.raises(IndexError, match="not on the map"):
        ex.select([N_POINTS + 5])
    table = ex.select(store.labels == 4).selection_table()
    assert len(table) == int((store.labels == 4).sum()) and set(table["label"]) == {4}
    assert {"sample", "index", "prediction", "correct", "site", "brightness"} <= set(table)
    np.testing.assert_array_equal(table["correct"], table["label"] == table["prediction"])
    np.testing.assert_allclose(table["fc/pca 1"], ex.embeddings[1].coords[table["sample"], 0])


def test_selection_on_a_subset_numbers_samples_as_the_store(store):
    rows = np.arange(100, 700, 3)
    ex = explore(store, layer="fc", samples=rows)
    ex.select([103, 106])
    assert ex.selected.tolist() == [103, 106] and ex.selected_points == [1, 2]
    with pytest.raises(IndexError):
        ex.select([101])  # in the store but not on this map
    # neighbours among the subset, in fc's features read independently with h5py
    with h5py.File(store.path, "r") as f:  # a plain h5py reader beside the open store
        X = f["layers/fc"][:][rows]
    want, dist = _brute_knn(X, 10, 6)
    got, got_d = ex.neighbours(int(rows[10]), k=6, return_distance=True)
    np.testing.assert_array_equal(got, rows[want])
    np.testing.assert_allclose(got_d, dist, rtol=1e-5, atol=1e-6 * dist.max())


@pytest.mark.parametrize("layer", ["relu2", "fc"])
def test_neighbours_match_brute_force_in_the_original_space(store, layer):
    ex = explore(store, layer=["relu1", "fc"])
    with h5py.File(store.path, "r") as f:  # a plain h5py reader beside the open store
        X = f[f"layers/{layer}"][:]
    X = X.reshape(len(X), X.shape[1], -1).mean(axis=2) if X.ndim > 2 else X  # global avg pool
    for i in (0, 777, 1999):
        want, dist = _brute_knn(X.astype(np.float32), i, 8)
        got, got_d = ex.neighbours(i, k=8, layer=layer, return_distance=True)
        np.testing.assert_allclose(got_d, dist, rtol=1e-5, atol=1e-6 * dist.max())
        # the same samples, except that the last places may go to any of equally near ones
        surely = want[dist < dist[-1] * (1 - 1e-5)]
        assert set(surely.tolist()) <= set(got.tolist()) and len(surely) >= 4
    assert ex.query == 1999 and sorted(ex.highlight) == sorted(got.tolist())
    with pytest.raises(ValueError, match="k must be"):
        ex.neighbours(0, k=0)


def test_colour_columns_and_switching_reuse_the_store_cache(store):
    ex = explore(store, layer="fc", method="pca", color="site")
    assert set(ex.columns) == {"label", "prediction", "correct", "site", "brightness"}
    site = ex.columns["site"]
    codes = np.frombuffer(site["codes"], dtype="<i4")
    assert (
        site["names"] == ["A", "B"] and (codes == 0).sum() == (np.arange(N_POINTS) % 3 == 0).sum()
    )
    bright = np.frombuffer(ex.columns["brightness"]["values"], dtype="<f4")
    np.testing.assert_allclose(bright, store.metadata["brightness"], rtol=1e-6)
    with pytest.raises(KeyError, match="cannot colour by 'scanner'"):
        explore(store, layer="fc", color="scanner")
    # the widget's layer menu: relu2's PCA is computed once, then read from the store
    ex.layer = "relu2"
    assert ex.embeddings[0].layer == "relu2" and ex.panels[0]["title"] == "PCA of relu2"
    again = explore(store, layer="relu2", method="pca")
    assert again.embeddings[0].from_cache
    np.testing.assert_array_equal(
        np.frombuffer(again.panels[0]["x"], "<f4"), ex.embeddings[0].coords[:, 0]
    )
    ex.layer = "no-such-layer"  # the widget shows the error and keeps its maps
    assert "no-such-layer" in ex.status and ex.layer == "relu2"


def test_explore_an_embedding_without_a_store_needs_features(store):
    X = store.to_numpy("fc")
    emb = embed(X, method="pca", labels=store.labels, columns={"thumbnails": store.thumbnails})
    ex = explore(emb)
    assert ex.layer_options == [str(emb.layer)]
    with pytest.raises(ValueError, match="features="):
        ex.neighbours(0)
    ex = explore(emb, features=X)
    want, _ = _brute_knn(X, 5, 3)
    assert set(ex.neighbours(5, k=3).tolist()) == set(want.tolist())
    # an embedding of a whole store finds its store again
    ex = explore(embed(store, "fc", method="pca"))
    assert ex.source.store is not None and ex.layer_options == store.layers


def test_outputs_are_light(store):
    ex = explore(store, layer="fc")
    assert _state_size(ex) < 1_000_000
    fig = plot_embedding(ex.embeddings[0])
    view = FigureView(fig)
    assert _state_size(view) < 1_000_000
    # plotly.js goes to the page by message, never into the state
    assert b"plotly.js v" not in json.dumps(view.get_state(), default=str).encode()
    assert len(plotly_js()) > 3_000_000
    # the data for the hover rides in the figure, so plain round trips keep it
    plain = go.Figure(fig).update_layout(title="again")
    assert plain.layout.meta == fig.layout.meta
    assert "inspect_kit_thumbnails" in json.loads(FigureView(plain).figure)["layout"]["meta"]
    # Plotly's own show() with the registered renderer gives the same light widget
    import plotly.io as pio

    bundle = pio.renderers["inspect_kit"].to_mimebundle(plain.to_dict())
    assert set(bundle) == {"text/plain", "application/vnd.jupyter.widget-view+json"}


# -- executed notebook ------------------------------------------------------------------------
NOTEBOOK = [
    "import json, numpy as np\nimport inspect_kit as ik\nstore = ik.open_store(STORE)",
    "ex = ik.explore(store, layer='fc', color='label')\nex",
    "ex.select([3, 10, 42, 1500])\nprint('SELECTED', json.dumps(ex.selected.tolist()))",
    "print('NEIGHBOURS', json.dumps(ex.neighbours(10, k=5).tolist()))",
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='work'):\n    pass",
]


@pytest.mark.slow
def test_notebook_outputs_are_widgets_and_small(store, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK[0].replace("STORE", repr(str(store.path))))]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in NOTEBOOK[1:]]
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    selected = json.loads(text.split("SELECTED ")[1].splitlines()[0])
    assert selected == [3, 10, 42, 1500]
    got = json.loads(text.split("NEIGHBOURS ")[1].splitlines()[0])
    with h5py.File(store.path, "r") as f:  # a plain h5py reader beside the open store
        X = f["layers/fc"][:]
    want, _ = _brute_knn(X, 10, 5)
    assert set(got) == set(want.tolist())
    # the explorer and the progress bar are widgets; nothing inlines plotly.js
    displays = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
    mimes = [set(o.data) for o in displays]
    assert sum("application/vnd.jupyter.widget-view+json" in m for m in mimes) >= 2, mimes
    assert not any(
        "text/html" in m and len(o.data["text/html"]) > 100_000
        for m, o in zip(mimes, displays, strict=True)
    )
    raw = path.read_bytes()
    assert b"plotly.js v" not in raw and b"window.PlotlyConfig" not in raw
    # the widget state (thumbnails included) is saved with the notebook, and stays light
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["state"].get("n_points") == N_POINTS for s in state.values())
    assert len(raw) < 1_000_000, len(raw)


# -- the saved page in a real browser ---------------------------------------------------------
@pytest.fixture(scope="module")
def driver(browser):
    """The shared headless chromium of the tests (tests/_browser.py)."""
    return browser


def _wait(drv, script: str, timeout: float = 60.0, *args):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = drv.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}; console: {drv.get_log('browser')}")


POINT_PX = """
var gd = document.querySelectorAll('.ik-plot')[arguments[0]], fl = gd._fullLayout;
var r = gd.getBoundingClientRect();
return [r.left + fl.xaxis._offset + fl.xaxis.l2p(arguments[1]),
        r.top + fl.yaxis._offset + fl.yaxis.l2p(arguments[2])];
"""


def hover_sample(drv, ex, panel: int, sample: int) -> int:
    """Move the real mouse onto a sample's point; returns the tile the page shows."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    xy = ex.embeddings[panel].coords[ex._point_of[sample]]
    px, py = drv.execute_script(POINT_PX, panel, float(xy[0]), float(xy[1]))
    actions = ActionBuilder(drv)
    actions.pointer_action.move_to_location(int(px) + 20, int(py) + 20)
    actions.pointer_action.move_to_location(int(round(px)), int(round(py)))
    actions.perform()
    ActionChains(drv).pause(0.3).perform()
    return int(
        _wait(
            drv,
            "var b = Array.from(document.querySelectorAll('.inspect-kit-thumb'))"
            ".filter(x => x.style.display === 'block')[0];"
            "return b && b.querySelector('img').getAttribute('data-tile');",
            10,
        )
    )


@pytest.mark.browser
def test_saved_page_runs_the_widget_offline(store, driver, tmp_path):
    """The widget's own JavaScript in a page without a kernel: maps, hover, gallery, images."""
    ex = explore(store, layer=["relu2", "fc"], color="correct")
    # an isolated, well-separated sample, so the hover cannot land on another point
    coords = ex.embeddings[1].coords
    d = np.linalg.norm(coords[:, None] - coords[None, ::7], axis=2)
    d[d == 0] = np.inf
    sample = int(np.argmax(d.min(axis=1)))
    ex.select([sample, 5, 6])
    page = ex.save_html(tmp_path / "explorer.html")
    assert page.stat().st_size < plotly_js().__len__() + 2_000_000
    driver.get(page.resolve().as_uri())
    _wait(driver, "return document.querySelectorAll('.ik-plot[data-ready]').length === 2")
    cards = driver.execute_script(
        "return Array.from(document.querySelectorAll('.ik-card')).map(c => c.dataset.sample)"
    )
    assert sorted(map(int, cards)) == sorted([sample, 5, 6])
    tile = hover_sample(driver, ex, 1, sample)
    tiles = np.frombuffer(ex.atlas["tiles"], "<i4")
    assert tile == tiles[sample]
    # linked maps: the selection is highlighted on both
    per_panel = driver.execute_script(
        "return Array.from(document.querySelectorAll('.ik-plot')).map(gd => gd.data"
        ".filter(t => t.customdata).map(t => (t.selectedpoints || []).map(j => t.customdata[j][0]))"
        ".flat().sort((a, b) => a - b))"
    )
    want = sorted(ex._point_of[r] for r in (sample, 5, 6))
    assert per_panel == [want, want]
    # the method menu shows the registry's display names, its values stay the method keys
    menu = driver.execute_script(
        "return Array.from(document.querySelectorAll('.ik-select-method option'))"
        ".map(o => [o.value, o.textContent])"
    )
    from inspect_kit.analysis.embedding.registry import display_name

    assert menu and [v for v, _ in menu] == list(ex.method_options)
    assert [t for _, t in menu] == [display_name(v) for v, _ in menu]
    assert {"PCA", "t-SNE", "UMAP"} <= {t for _, t in menu}
    # the colour menu: one trace per label, coloured alike on both maps
    driver.execute_script(
        "var s = document.querySelector('.ik-select-color_by'); s.value = 'label';"
        "s.dispatchEvent(new Event('change'));"
    )
    names = driver.execute_script(
        "return Array.from(document.querySelectorAll('.ik-plot')).map(gd =>"
        " gd.data.map(t => t.name + ':' + t.x.length))"
    )
    counts = np.bincount(store.labels, minlength=10)
    assert names[0] == names[1] == [f"{k}:{counts[k]}" for k in range(10)]
    # neighbours (from Python) are ringed on every map
    driver.execute_script(
        "var m = window.inspectKitExplorer; m.set('query', 5); m.set('highlight', [6, 7, 8]);"
    )
    rings = driver.execute_script(
        "return Array.from(document.querySelectorAll('.ik-plot')).map(gd =>"
        " gd.data.filter(t => t.name === 'neighbours').map(t => t.x.length))"
    )
    assert rings == [[3], [3]]
    # images as points: only the selected samples' thumbnails, on both maps
    driver.execute_script("window.inspectKitExplorer.set('images', true)")
    drawn = _wait(
        driver,
        "var c = document.querySelectorAll('.ik-images-layer');"
        "return c.length === 2 && c[1].getAttribute('data-drawn') && "
        "Array.from(c).map(x => Number(x.getAttribute('data-drawn')));",
    )
    assert drawn == [3, 3]
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


# -- a real JupyterLab ------------------------------------------------------------------------
POINT_OF_SAMPLE = """
var gd = document.querySelectorAll(arguments[2] || '.ik-plot')[arguments[0]], i = arguments[1];
var fl = gd._fullLayout, r = gd.getBoundingClientRect();
var data = gd._fullData;  // typed arrays decoded
for (var c = 0; c < data.length; c++) {
  var cd = data[c].customdata || [];
  for (var j = 0; j < cd.length; j++) {
    if (Number(cd[j][0]) === i) {
      return [r.left + fl.xaxis._offset + fl.xaxis.l2p(data[c].x[j]),
              r.top + fl.yaxis._offset + fl.yaxis.l2p(data[c].y[j])];
    }
  }
}
return null;
"""
AXES = """
var gd = document.querySelectorAll('.ik-plot')[arguments[0]], fl = gd._fullLayout;
var r = gd.getBoundingClientRect(), xa = fl.xaxis, ya = fl.yaxis;
return [r.left + xa._offset + xa.l2p(0), xa.l2p(1) - xa.l2p(0),
        r.top + ya._offset + ya.l2p(0), ya.l2p(1) - ya.l2p(0),
        r.left + xa._offset, r.top + ya._offset, xa._length, ya._length];
"""
LAB_NOTEBOOK = """\
import json
from pathlib import Path
import numpy as np
import inspect_kit as ik
store = ik.open_store(STORE)
ex = ik.explore(store, layer="fc", color="label")
np.save("coords.npy", ex.embeddings[0].coords)
np.save("tiles.npy", np.frombuffer(ex.atlas["tiles"], "<i4"))
ex.on_select(lambda rows: Path("selected.json").write_text(json.dumps(rows.tolist())))
ex
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc, token: str, port: int) -> None:
    """Shut the server and its kernels down; kill by pid whatever is left."""
    import os
    import signal
    import subprocess
    import urllib.request

    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    try:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/shutdown",
            method="POST",
            headers={"Authorization": f"token {token}"},
        )
        urllib.request.urlopen(req, timeout=10).close()
        proc.wait(timeout=20)
    except Exception:  # the server never came up, or hangs: signals, then kill
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=10)


@pytest.mark.browser
@pytest.mark.slow
def test_jupyterlab_hover_and_lasso_reach_python(store, driver, tmp_path):
    """JupyterLab runs a notebook; the mouse hovers a point and lassos some; Python sees them."""
    import os
    import secrets
    import subprocess
    import sys
    import urllib.request

    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.by import By

    from inspect_kit.imaging import decode_data_uri

    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [nbformat.v4.new_code_cell(LAB_NOTEBOOK.replace("STORE", repr(str(store.path))))]
    nbformat.write(nb, root / "explore.ipynb")
    token = secrets.token_hex(24)
    env = dict(os.environ, JUPYTER_TOKEN=token)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    port = _free_port()
    log_path = tmp_path / "lab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
        "--ServerApp.port_retries=0", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])  # fmt: skip
    deadline = time.monotonic() + 240  # bounded; generous for a loaded 2-core machine
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:  # the server answers
            assert proc.poll() is None, log_path.read_text()
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/status",
                    headers={"Authorization": f"token {token}"},
                )
                urllib.request.urlopen(req, timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.5)
        # log in through the form: the token never travels in a URL
        # (the login form's own redirect opens the notebook: navigating there before the
        # login's POST has returned would race it, and land on the login page or on /lab)
        driver.get(f"http://127.0.0.1:{port}/login?next=%2Flab%2Ftree%2Fexplore.ipynb")
        driver.find_element(By.ID, "password_input").send_keys(token)
        driver.find_element(By.ID, "login_submit").click()
        _wait(
            driver,
            "return location.pathname.endsWith('/lab/tree/explore.ipynb');",
            deadline - time.monotonic(),
        )
        _wait(
            driver,
            "var a = window.jupyterapp; var w = a && a.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session &&"
            " w.sessionContext.session.kernel && w.content && w.content.widgets.length);",
            deadline - time.monotonic(),
        )
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        _wait(
            driver,
            "return document.querySelectorAll('.ik-plot[data-ready]').length === 1",
            deadline - time.monotonic(),
        )
        driver.execute_script(
            "document.querySelector('.ik-plot').scrollIntoView({block: 'center'})"
        )
        time.sleep(0.5)
        coords = np.load(root / "coords.npy")
        tiles = np.load(root / "tiles.npy")

        # hover an isolated point: the page shows that sample's thumbnail
        d = np.linalg.norm(coords[:, None] - coords[None, ::5], axis=2)
        d[d == 0] = np.inf
        sample = int(np.argmax(d.min(axis=1)))
        px, py = driver.execute_script(POINT_OF_SAMPLE, 0, sample)
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(int(px) + 25, int(py) + 25)
        actions.pointer_action.move_to_location(int(round(px)), int(round(py)))
        actions.perform()
        tile = _wait(
            driver,
            "var b = Array.from(document.querySelectorAll('.inspect-kit-thumb'))"
            ".filter(x => x.style.display === 'block')[0];"
            "var im = b && b.querySelector('img');"
            "return im && im.getAttribute('data-tile') && [im.getAttribute('data-tile'), im.src];",
            30,
        )
        assert int(tile[0]) == tiles[sample]
        shown = np.asarray(Image.fromarray(decode_data_uri(tile[1])).convert("L"))
        np.testing.assert_array_equal(shown, store.thumbnails[sample])

        # lasso a rectangle around the middle of the map, edge by edge
        x0, sx, y0, sy, left, top, width, height = driver.execute_script(AXES, 0)
        cx, cy = left + width / 2, top + height / 2
        half_w, half_h = width / 6, height / 6
        corners = [
            (cx - half_w, cy - half_h), (cx + half_w, cy - half_h),
            (cx + half_w, cy + half_h), (cx - half_w, cy + half_h), (cx - half_w, cy - half_h),
        ]  # fmt: skip
        path = [corners[0]]
        for (ax, ay), (bx, by) in zip(corners[:-1], corners[1:], strict=True):
            path += [(ax + (bx - ax) * s / 10, ay + (by - ay) * s / 10) for s in range(1, 11)]
        (root / "selected.json").unlink(missing_ok=True)
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(int(path[0][0]), int(path[0][1]))
        actions.pointer_action.pointer_down()
        for x, y in path[1:]:
            actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
        actions.pointer_action.pointer_up()
        actions.perform()
        ActionChains(driver).pause(0.2).perform()
        while not (root / "selected.json").exists():
            assert time.monotonic() < deadline, "the kernel never saw the selection"
            time.sleep(0.2)
        selected = set(json.loads((root / "selected.json").read_text()))
        # which points lie inside, from the kernel's coordinates and the page's axes
        pxs, pys = x0 + sx * coords[:, 0], y0 + sy * coords[:, 1]
        lo_x, hi_x = round(cx - half_w), round(cx + half_w)
        lo_y, hi_y = round(cy - half_h), round(cy + half_h)

        def inside(margin: float) -> set[int]:
            ok = (pxs > lo_x + margin) & (pxs < hi_x - margin)
            ok &= (pys > lo_y + margin) & (pys < hi_y - margin)
            return set(np.flatnonzero(ok).tolist())

        surely, maybe = inside(2.0), inside(-2.0)
        assert len(surely) >= 5, "the lasso should hold several points"
        assert surely <= selected <= maybe, (len(surely), len(selected), len(maybe))
        assert token not in log_path.read_text(errors="replace")
    finally:
        _stop(proc, token, port)
    assert proc.poll() is not None
    assert token not in log_path.read_text(errors="replace"), "the token leaked into the log"


@pytest.mark.browser
def test_plot_embedding_widget_shows_thumbnails_in_a_page(store, driver, tmp_path):
    """plot_embedding's notebook widget (FigureView) runs its JavaScript: figure and hover."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    from inspect_kit.figures.explorer import standalone_html

    emb = embed(store, "fc", method="pca", progress=False)
    fig = go.Figure(plot_embedding(emb, color="label"))  # a plain figure after a round trip
    page = tmp_path / "figure.html"
    page.write_text(standalone_html(FigureView(fig)))
    driver.get(page.resolve().as_uri())
    _wait(driver, "var g = document.querySelector('.ik-figure'); return g && g.__inspectKitThumbs;")
    n_traces = driver.execute_script("return document.querySelector('.ik-figure').data.length")
    assert n_traces == len(fig.data)
    d = np.linalg.norm(emb.coords[:, None] - emb.coords[None, ::7], axis=2)
    d[d == 0] = np.inf
    sample = int(np.argmax(d.min(axis=1)))
    px, py = driver.execute_script(POINT_OF_SAMPLE, 0, sample, ".ik-figure")
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(px) + 25, int(py) + 25)
    actions.pointer_action.move_to_location(int(round(px)), int(round(py)))
    actions.perform()
    tile = _wait(
        driver,
        "var b = Array.from(document.querySelectorAll('.inspect-kit-thumb'))"
        ".filter(x => x.style.display === 'block')[0];"
        "var im = b && b.querySelector('img'); return im && im.getAttribute('data-tile');",
        20,
    )
    custom = np.concatenate(
        [np.asarray(t.customdata) for t in fig.data if t.customdata is not None]
    )
    tiles = dict(zip(custom[:, 0].tolist(), custom[:, 1].tolist(), strict=False))
    assert int(tile) == tiles[sample]
