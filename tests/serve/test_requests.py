"""``POST /generate`` bodies without a server: the check, the latents, the encodings, and the
model call merging requests (GeneratorAPI driven directly, bitwise against batch-1 calls)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from gan_accel.export.runtime import OnnxGenerator
from gan_accel.export.serving.encode import feeds_for, grid, pixels
from gan_accel.export.serving.requests import Limits, RequestError, parse_generate
from model_factory import colour_generator, export_variant
from PIL import Image

from gan_accel.latent import LatentSpec

CGAN = LatentSpec(64, num_classes=10)
INFOGAN = LatentSpec(10, "uniform", cat_dim=10, cont_dim=2)
DCGAN = LatentSpec(16)
LIMITS = Limits(max_images=8, max_body_bytes=4096, max_queue=4)


def parse(doc, spec=CGAN, limits=LIMITS):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_generate(body, spec, limits)


BAD = [  # body, spec, words in the one-line message
    (b"{bad json", CGAN, "not valid JSON"),
    (b"[1, 2]", CGAN, "must be a JSON object"),
    (b"\xff\xfe", CGAN, "not valid JSON"),
    ({"z": [[0.0] * 63], "label": 1}, CGAN, "has 63 numbers; this model takes 64"),
    (b'{"z": [[NaN' + b", 0.0" * 63 + b']], "label": 1}', CGAN, "NaN or infinity"),
    (b'{"z": [[Infinity' + b", 0.0" * 63 + b']], "label": 1}', CGAN, "NaN or infinity"),
    ({"z": [["a"] + [0.0] * 63], "label": 1}, CGAN, "not a number"),
    ({"seed": 1, "label": 10}, CGAN, "label 10 is out of range 0..9"),
    ({"seed": 1, "label": -1}, CGAN, "out of range 0..9"),
    ({"seed": 1, "n": 2, "label": [1, 12]}, CGAN, "label 12 is out of range"),
    ({"seed": 1, "n": 2, "label": [1]}, CGAN, "1 entries for 2 images"),
    ({"seed": 1, "label": 1}, DCGAN, "needs a conditional model"),
    ({"seed": 1, "n": 9}, CGAN, "n 9 is out of range 1..8"),
    ({"seed": 1, "n": 0}, CGAN, "out of range 1..8"),
    ({"seed": 1, "n": True}, CGAN, "must be an integer"),
    ({"seed": -1}, CGAN, "seed -1 is out of range"),
    ({"seed": 1.5}, CGAN, "seed must be an integer"),
    ({"seed": 1, "format": "gif"}, CGAN, "format \"gif\" is unknown; use png or npz"),
    ({"seed": 1, "colour": 3}, CGAN, "unknown field 'colour'"),
    ({"seed": 1, "z": [[0.0] * 64], "label": 1}, CGAN, "either seed or z"),
    ({"z": [[0.0] * 64]}, CGAN, "label is required with z"),
    ({"z": [[0.0] * 64] * 9, "label": 1}, CGAN, "at most 8 images"),
    ({"z": [[0.0] * 64] * 2, "n": 3, "label": 1}, CGAN, "n is 3 but z has 2 rows"),
    ({"seed": 1, "format": "npz", "nrow": 2}, CGAN, "nrow lays out a PNG grid"),
    ({"z": [[0.0] * 10]}, INFOGAN, "codes is required with z"),
    ({"seed": 1, "codes": [[0.0] * 12]}, INFOGAN, "must be one-hot"),
    ({"seed": 1, "codes": [[1.0] + [0.0] * 11], "label": 1}, INFOGAN, "either label"),
    ({"seed": 1, "codes": [[1.0] + [0.0] * 11]}, CGAN, "takes no codes"),
]


@pytest.mark.parametrize("body, spec, match", BAD, ids=[m for _, _, m in BAD])
def test_bad_bodies_are_400_with_one_line(body, spec, match):
    with pytest.raises(RequestError) as info:
        parse(body, spec)
    assert info.value.status == 400
    assert match in info.value.message, info.value.message
    assert "\n" not in info.value.message


def test_a_good_body_is_normalised():
    assert parse({"seed": 3, "n": 2, "label": 4}) == {
        "n": 2, "format": "png", "nrow": None, "seed": 3, "label": 4}
    req = parse({"z": [0.5] * 64, "label": [2], "format": "npz"})  # one flat row: n = 1
    assert req["n"] == 1 and req["z"] == [[0.5] * 64] and "seed" not in req
    drawn = parse({})  # neither seed nor z: the server draws one (and reports it)
    assert drawn["n"] == 1 and 0 <= drawn["seed"] < 2**63
    assert parse({})["seed"] != drawn["seed"]


def test_a_seed_draws_what_the_runtime_draws(tmp_path):
    path = export_variant("cgan", tmp_path / "cgan.onnx")
    gen = OnnxGenerator(path, threads=1, save_optimized=False)
    feeds = feeds_for(parse({"seed": 11, "n": 5, "label": 3}), gen.meta.latent)
    expected = gen.latent(5, seed=11, label=3)
    assert feeds.keys() == expected.keys()
    for k in feeds:
        np.testing.assert_array_equal(feeds[k], expected[k])
    infogan = feeds_for(parse({"seed": 2, "n": 3, "label": 7}, INFOGAN), INFOGAN)
    assert (infogan["codes"][:, :10].argmax(1) == 7).all()


def test_pixels_and_grid_take_channels_and_size_from_the_images():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    colour = rng.uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    assert pixels(grey, "unit").shape == (5, 28, 28)
    u8 = pixels(colour, "symmetric")
    assert u8.shape == (3, 32, 32, 3) and u8.dtype == np.uint8
    expected = np.floor(np.clip((colour[1, 2] + 1) / 2 * 255 + 0.5, 0, 255))
    assert np.abs(u8[1, :, :, 2].astype(int) - expected).max() <= 1
    assert grid(pixels(grey[:1], "unit")).shape == (28, 28)  # one image: no border
    assert grid(pixels(grey, "unit"), nrow=2).shape == (3 * 30 + 2, 2 * 30 + 2)
    assert grid(u8).shape == (2 * 34 + 2, 2 * 34 + 2, 3)


# --------------------------------------------------------------------------- the model call


def _api(path, max_batch_size=16):
    from gan_accel.export.serving.api import GeneratorAPI

    api = GeneratorAPI(str(path), ["CPUExecutionProvider"], 2, max_batch_size=max_batch_size)
    api.setup("cpu")
    return api


@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan"])
def test_a_batch_gives_each_request_what_it_gets_alone(tmp_path, name):
    """Requests of 1..7 images merged into one call: each one's float images are bitwise those
    of a call with that request alone, and of batch-1 calls image by image."""
    path = export_variant(name, tmp_path / f"{name}.onnx")
    api = _api(path)
    spec = api.spec
    requests = [parse({"seed": 100 + i, "n": 1 + i % 7, "format": "npz"}, spec,
                      Limits(max_images=8)) for i in range(13)]
    batch = api.predict([api.decode_request(r) for r in requests])  # one generator call
    single = OnnxGenerator(path, threads=1, save_optimized=False)
    for d in batch:
        assert d.batch_requests == 13
        alone = api.predict(api.decode_request(d.request)).images
        np.testing.assert_array_equal(d.images, alone)
        rows = [single.run(**{k: v[i:i + 1] for k, v in d.feeds.items()})
                for i in range(d.request["n"])]
        np.testing.assert_array_equal(d.images, np.concatenate(rows))


def test_responses_encode_png_and_npz(tmp_path):
    api = _api(colour_generator(tmp_path / "colour.onnx"))
    png = api.encode_response(api.predict(api.decode_request(
        parse({"seed": 1, "n": 3, "nrow": 3}, api.spec))))
    assert png.media_type == "image/png" and png.headers["x-seed"] == "1"
    with Image.open(io.BytesIO(png.body)) as img:
        assert img.mode == "RGB" and img.size == (3 * 34 + 2, 34 + 2)
    d = api.predict(api.decode_request(parse({"seed": 1, "n": 3, "format": "npz"}, api.spec)))
    npz = np.load(io.BytesIO(api.encode_response(d).body))
    assert npz["images"].shape == (3, 32, 32, 3) and npz["images"].dtype == np.uint8
    np.testing.assert_array_equal(npz["images"], pixels(d.images, "unit"))
    np.testing.assert_array_equal(npz["z"], d.feeds["z"])
