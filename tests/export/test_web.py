"""``gan-accel export --web DIR``: the playground's files and metadata, its errors, and the page
in a real browser (Debian's chromium driven by Playwright) drawing what the Python runtime
draws for the same latents."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from gan_accel.export import web
from gan_accel.export.card import describe_model
from gan_accel.export.runtime import OnnxGenerator
from gan_accel.export.serving.encode import pixels
from helpers import tiny_mnist
from model_factory import colour_generator, export_variant

from gan_accel.cli import export as export_cli
from gan_accel.errors import UserError, run_cli
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PARITY_ATOL = 1e-4  # max |browser - python| on the [0, 1] (or [-1, 1]) output


@pytest.fixture(scope="module")
def ort_web():
    try:
        return web.find_ort_web()
    except UserError as exc:
        pytest.skip(f"onnxruntime-web is not cached here ({exc}); .ci/run fetches it")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-models")
    return {"cgan": export_variant("cgan", root / "cgan.onnx"),
            "infogan": export_variant("infogan", root / "infogan.onnx"),
            "colour": colour_generator(root / "colour.onnx")}


@pytest.fixture(scope="module")
def pages(models, ort_web, tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    out = {}
    for name, model in models.items():
        code = run_cli(export_cli.main, ["--onnx", str(model), "--web", str(root / name),
                                         "--ort-web", str(ort_web)])
        assert code == 0
        out[name] = root / name
    return out


def test_the_page_folder_holds_the_page_the_model_its_card_and_the_runtime(pages, models):
    for name, folder in pages.items():
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted([*web.PAGE_FILES, web.MODEL_FILE, web.CARD_FILE,
                                *web.ORT_WEB_FILES]), names
        assert (folder / web.MODEL_FILE).read_bytes() == models[name].read_bytes()
        card = json.loads((folder / web.CARD_FILE).read_text())
        expected = describe_model(models[name])
        assert card["format"] == web.WEB_FORMAT and card["model"] == "model.onnx"
        assert card["onnxruntime_web"] == web.ORT_WEB_VERSION
        for key in ("variant", "latent", "classes", "codes", "output_range", "image",
                    "applications"):
            assert card[key] == expected[key], key
    assert json.loads((pages["colour"] / "model.json").read_text())["image"] == {
        "channels": 3, "height": 32, "width": 32}
    assert json.loads((pages["infogan"] / "model.json").read_text())["codes"][
        "categorical"] == 10
    page = "".join((pages["cgan"] / f).read_text() for f in ("index.html", "playground.js"))
    assert "http://" not in page.replace("http://127.0.0.1", "") and "https://" not in page


def test_a_run_directory_is_exported_then_paged(ort_web, tmp_path):
    tiny_mnist(tmp_path / "data", n=16)
    cfg = recipe_config("dcgan", dataset="mnist", data_dir=str(tmp_path / "data"),
                        batch_size=8, max_steps=2, out=str(tmp_path / "run"), progress=False)
    Trainer(cfg, log=lambda *_: None).fit()
    out = tmp_path / "page"
    assert run_cli(export_cli.main, ["--checkpoint", str(tmp_path / "run"), "--web", str(out),
                                     "--ort-web", str(ort_web)]) == 0
    assert json.loads((out / "model.json").read_text())["variant"] == "dcgan"
    assert OnnxGenerator(out / "model.onnx", save_optimized=False).meta.step == 2


def test_export_errors_are_one_line_and_write_nothing(models, ort_web, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    fake = tmp_path / "fake-ort"
    fake.mkdir()
    for name in web.ORT_WEB_FILES:
        (fake / name).write_text("not onnxruntime-web")
    cases = [
        (["--onnx", str(models["cgan"]), "--web", str(foreign), "--ort-web", str(ort_web)],
         "other files in it"),
        (["--onnx", str(models["cgan"]), "--web", str(tmp_path / "a"), "--ort-web",
          str(tmp_path / "nowhere")], "holds no"),
        (["--onnx", str(models["cgan"]), "--web", str(tmp_path / "b"), "--ort-web", str(fake)],
         "is not the one onnxruntime-web"),
        (["--onnx", str(tmp_path / "missing.onnx"), "--web", str(tmp_path / "c"), "--ort-web",
          str(ort_web)], "does not exist"),
        (["--onnx", str(models["cgan"]), "--out", str(tmp_path / "x.onnx")], "--onnx goes with"),
        (["--onnx", str(models["cgan"]), "--web", str(tmp_path / "d"), "--format", "pt2"],
         "--web runs an ONNX model"),
    ]
    for argv, match in cases:
        assert run_cli(export_cli.main, argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-ort", "foreign"]
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_a_missing_runtime_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(web.ENV_VAR, raising=False)
    with pytest.raises(UserError, match="--fetch-ort-web"):
        web.find_ort_web(cache=tmp_path / "empty-cache")


def test_the_runtime_comes_from_the_npm_tarball(ort_web, tmp_path):
    """A tarball laid out as ``npm pack`` writes it is unpacked into the cache and checked."""
    import tarfile

    tgz = tmp_path / "onnxruntime-web.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in web.ORT_WEB_FILES:
            tar.add(ort_web / name, arcname=f"package/dist/{name}")
    cache = tmp_path / "cache"
    assert web.find_ort_web(tgz, cache=cache) == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(web.ORT_WEB_FILES)


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (/usr/bin/chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def served(pages):
    """The page folders over http on 127.0.0.1 (a thread of this test process)."""
    root = next(iter(pages.values())).parent
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _rows(feeds: dict[str, np.ndarray]) -> list[dict]:
    return [{"z": feeds["z"][i].tolist(),
             **({"label": int(feeds["label"][i])} if "label" in feeds else {}),
             **({"codes": feeds["codes"][i].tolist()} if "codes" in feeds else {})}
            for i in range(len(feeds["z"]))]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cgan", "infogan", "colour"])
def test_the_browser_draws_what_python_generates(browser, served, pages, name, tmp_path):
    gen = OnnxGenerator(pages[name] / "model.onnx", threads=1, save_optimized=False)
    feeds = gen.latent(6, seed=9)
    expected = gen.run(**feeds)  # [6, C, H, W]
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{served}/{name}/index.html")
        page.wait_for_function("window.playground !== undefined", timeout=60_000)
        run = page.evaluate("async (rows) => (await window.playground.ready).run(rows)",
                            _rows(feeds))
        got = np.asarray(run["data"], np.float32).reshape(run["dims"])
        assert got.shape == expected.shape
        diff = float(np.abs(got - expected).max())
        assert diff <= PARITY_ATOL, f"max |browser - python| = {diff:.3g}"
        # the image drawn on the canvas (scaled up, nearest neighbour) for one latent
        rgba = page.evaluate("async (row) => (await window.playground.ready).show(row)",
                             _rows(feeds)[2])
        c, h, w = expected.shape[1:]
        drawn = np.asarray(rgba, np.int64).reshape(h, w, 4)[..., :3]

        def rgb(images):
            u8 = pixels(images, gen.output_range)[0].astype(np.int64)
            return np.repeat(u8[..., None], 3, -1) if c == 1 else u8

        # the page quantises its floats exactly as the toolkit does ...
        np.testing.assert_array_equal(drawn, rgb(got[2:3]))
        # ... so against Python's floats only a value on a rounding step can move by one
        assert np.abs(drawn - rgb(expected[2:3])).max() <= 1
        scale = page.evaluate("async () => (await window.playground.ready).scale")
        canvas = page.evaluate("""() => { const c = document.getElementById('image');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
        canvas = np.asarray(canvas, np.int64).reshape(h * scale, w * scale, 4)[::scale, ::scale]
        np.testing.assert_array_equal(canvas[..., :3], drawn)
        assert "error" not in page.inner_text("#status")
        page.screenshot(path=str(tmp_path / f"{name}.png"))
    finally:
        page.close()
    assert not errors, errors


def test_the_page_says_how_to_open_it_from_file(browser, pages):
    page = browser.new_page()
    try:
        page.goto((pages["cgan"] / "index.html").as_uri())
        page.wait_for_function("document.getElementById('status').className === 'error'",
                               timeout=30_000)
        assert "http.server" in page.inner_text("#status")
    finally:
        page.close()
