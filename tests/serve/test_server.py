"""``gan-accel serve`` as a user runs it: endpoints, errors, batching, overload, the page's
folder, both shutdown signals, and nothing written to the working folder.

Every server listens on 127.0.0.1, is started and stopped by its test (or module fixture),
and every request loop is bounded.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from gan_accel.export.runtime import OnnxGenerator
from gan_accel.export.serving.encode import pixels
from model_factory import colour_generator, export_variant
from PIL import Image
from server_process import ServerProcess, port_is_free

pytest.importorskip("litserve")

pytestmark = pytest.mark.slow
TIMEOUT = 60  # seconds per HTTP request


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-models")
    return {"cgan": export_variant("cgan", root / "cgan.onnx"),
            "dcgan": export_variant("dcgan", root / "dcgan.onnx"),
            "colour": colour_generator(root / "colour.onnx")}


@pytest.fixture(scope="module")
def cgan_server(models, tmp_path_factory):
    """A cgan server with small limits and a 30 ms batch window (so batches form)."""
    cwd = tmp_path_factory.mktemp("serve-cwd")
    server = ServerProcess(models["cgan"], cwd, "--max-images", "8", "--max-body-bytes",
                           "20000", "--batch-timeout-ms", "30")
    try:
        server.wait_ready()
        yield server
    finally:
        if server.proc.poll() is None:
            code, out = server.stop(signal.SIGTERM)
            assert code == 0, out
        assert not server.left_alive()
    assert list(cwd.iterdir()) == []  # no client.py, no optimised graph, nothing


def post(server, body, **kw) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(server.url + "/generate", data=data, timeout=TIMEOUT, **kw)


def npz(response) -> dict:
    assert response.status_code == 200, response.text
    return dict(np.load(io.BytesIO(response.content)))


def test_health_and_metadata(cgan_server):
    assert requests.get(cgan_server.url + "/health", timeout=TIMEOUT).text == "ok"
    meta = requests.get(cgan_server.url + "/metadata", timeout=TIMEOUT).json()
    assert meta["variant"] == "cgan" and meta["classes"] == 10
    assert meta["latent"]["z_dim"] == 64 and meta["latent"]["input_names"] == ["z", "label"]
    assert meta["image"] == {"channels": 1, "height": 28, "width": 28}
    assert meta["output_range"] == "symmetric"
    assert meta["limits"]["max_images"] == 8 and "class_grid" in meta["applications"]


def test_png_image_and_grid(cgan_server):
    one = post(cgan_server, {"seed": 5, "label": 3})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    assert one.headers["x-seed"] == "5"
    with Image.open(io.BytesIO(one.content)) as img:
        assert img.size == (28, 28) and img.mode == "L"
    grid = post(cgan_server, {"seed": 5, "n": 6, "nrow": 3})
    with Image.open(io.BytesIO(grid.content)) as img:
        assert img.size == (3 * 30 + 2, 2 * 30 + 2)
    fresh = post(cgan_server, {})
    assert fresh.status_code == 200 and int(fresh.headers["x-seed"]) >= 0


def test_npz_holds_what_the_runtime_makes_from_the_seed(cgan_server, models):
    got = npz(post(cgan_server, {"seed": 21, "n": 5, "label": 7, "format": "npz"}))
    gen = OnnxGenerator(models["cgan"], threads=1, save_optimized=False)
    images = gen.sample(5, seed=21, label=7)
    np.testing.assert_array_equal(got["images"], pixels(images, "symmetric"))
    assert (got["label"] == 7).all() and got["z"].shape == (5, 64)


BAD = [  # raw body, status, words of the message
    (b"{not json", 400, "not valid JSON"),
    (json.dumps({"z": [[0.1] * 63], "label": 1}).encode(), 400, "this model takes 64"),
    (b'{"z": [[NaN' + b", 0.1" * 63 + b']], "label": 1}', 400, "NaN"),
    (json.dumps({"seed": 1, "label": 10}).encode(), 400, "label 10 is out of range 0..9"),
    (json.dumps({"seed": 1, "n": 9}).encode(), 400, "n 9 is out of range 1..8"),
    (json.dumps({"seed": 1, "format": "jpeg"}).encode(), 400, "unknown; use png or npz"),
    (json.dumps({"z": [[0.1] * 64] * 8, "label": 1, "pad": "x" * 20000}).encode(), 413,
     "larger than 20,000 bytes"),
]


@pytest.mark.parametrize("body, status, match", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_a_one_line_json_4xx_and_the_server_keeps_serving(cgan_server, body,
                                                                       status, match):
    r = post(cgan_server, body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert "\n" not in r.text.strip() and match in r.json()["detail"], r.text
    assert post(cgan_server, {"seed": 1}).status_code == 200


def test_other_routes(cgan_server):
    assert requests.get(cgan_server.url + "/generate", timeout=TIMEOUT).status_code == 405
    assert requests.get(cgan_server.url + "/nothing-here", timeout=TIMEOUT).status_code == 404


def test_concurrent_requests_are_batched_and_get_their_own_pixels(cgan_server, models):
    """12 requests sent together: some share a generator call, and each one's pixels are
    bitwise those of a batch-1 call on its own latents."""
    rng = np.random.default_rng(3)
    bodies = [{"z": rng.standard_normal((1 + i % 3, 64)).astype(np.float32).tolist(),
               "label": [int(x) for x in rng.integers(0, 10, 1 + i % 3)], "format": "npz"}
              for i in range(12)]
    start = threading.Barrier(12)

    def send(body):
        start.wait(timeout=TIMEOUT)
        return post(cgan_server, body)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(send, bodies))
    merged = [int(r.headers["x-batch-requests"]) for r in responses]
    assert max(merged) > 1, merged  # the 30 ms window merged some of them
    gen = OnnxGenerator(models["cgan"], threads=1, save_optimized=False)
    for body, r in zip(bodies, responses, strict=True):
        got = npz(r)["images"]
        z = np.asarray(body["z"], np.float32)
        label = np.asarray(body["label"], np.int64)
        alone = np.concatenate([gen.run(z[i:i + 1], label=label[i:i + 1])
                                for i in range(len(z))])
        np.testing.assert_array_equal(got, pixels(alone, "symmetric"))


def test_overload_is_503_at_once_and_nothing_is_lost(models, tmp_path):
    """--max-queue 2 and 40 requests at once: every one answered, 200 or 503 (with
    Retry-After and a one-line message), then the server serves again."""
    server = ServerProcess(models["dcgan"], tmp_path, "--max-queue", "2", "--max-batch-size",
                           "1", "--max-images", "256")
    try:
        server.wait_ready()
        start = threading.Barrier(40)

        def send(_):
            start.wait(timeout=TIMEOUT)
            return post(server, {"seed": 1, "n": 256, "format": "npz"})

        with ThreadPoolExecutor(40) as pool:
            responses = list(pool.map(send, range(40)))
        codes = [r.status_code for r in responses]
        assert len(codes) == 40 and set(codes) <= {200, 503}, codes
        assert codes.count(503) >= 1 and codes.count(200) >= 2, codes
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "--max-queue" in busy.json()["detail"]
        assert post(server, {"seed": 2}).status_code == 200
    finally:
        code, out = server.stop(signal.SIGTERM)
    assert code == 0, out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_process_and_frees_the_port(models, tmp_path, signum):
    server = ServerProcess(models["dcgan"], tmp_path)
    try:
        server.wait_ready()
        assert post(server, {"seed": 1}).status_code == 200
        # LitServe's processes: the queue manager, an inference worker, an HTTP server
        assert len(server.children) >= 3, server.children
        assert not port_is_free(server.port)
        code, out = server.stop(signum)
    except BaseException:
        server.kill()
        raise
    assert code == 0, out
    assert "stopped" in out and "Traceback" not in out, out
    assert not server.left_alive(), "processes left after the signal"
    assert port_is_free(server.port)
    assert list(tmp_path.iterdir()) == []


def test_web_dir_serves_only_its_files(models, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<p>the page</p>")
    (web / "model.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", web / "link.txt")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    server = ServerProcess(models["colour"], cwd, "--web", str(web))
    try:
        server.wait_ready()
        assert "the page" in requests.get(server.url + "/", timeout=TIMEOUT).text
        assert requests.get(server.url + "/model.json", timeout=TIMEOUT).json() == {}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                     "/%2e%2e%2fsecret.txt", "/..%5csecret.txt", "/link.txt",
                     "/web/../../secret.txt", "//etc/passwd", "/%2fetc%2fpasswd"):
            conn.request("GET", path)  # sent as written: no client-side normalisation
            r = conn.getresponse()
            body = r.read()
            assert r.status == 404 and b"outside" not in body and b"root:" not in body, path
        conn.close()
        meta = requests.get(server.url + "/metadata", timeout=TIMEOUT).json()
        assert meta["image"] == {"channels": 3, "height": 32, "width": 32}
        got = npz(post(server, {"seed": 4, "n": 2, "format": "npz"}))
        assert got["images"].shape == (2, 32, 32, 3)
    finally:
        code, out = server.stop(signal.SIGTERM)
    assert code == 0, out
    assert list(cwd.iterdir()) == []
