"""``gan-accel serve``: problems knowable before the server starts are one line, exit 2, and
nothing starts (no server process, nothing written)."""

from __future__ import annotations

import socket

import pytest
from model_factory import colour_generator
from server_process import free_port

from gan_accel.cli import serve as serve_cli
from gan_accel.errors import run_cli

pytest.importorskip("litserve")


@pytest.fixture
def model(tmp_path):
    return colour_generator(tmp_path / "colour.onnx")


def test_problems_before_start_are_one_line(model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = str(taken.getsockname()[1])
        cases = [
            ([str(tmp_path / "missing.onnx")], "does not exist"),
            ([str(model), "--port", "80"], "outside 1024..65535"),
            ([str(model), "--port", busy], f"port {busy} on 127.0.0.1 is in use"),
            ([str(model), "--web", str(tmp_path / "nowhere")], "is not a folder"),
            ([str(model), "--max-queue", "0"], "--max-queue must be >= 1"),
            ([str(model), "--batch-timeout-ms", "-1"], "must be 0..1000"),
            ([str(model), "--no-ema"], "apply to a run directory"),
            ([str(model), "--host", "10.0.0.1"], "invalid choice"),
            ([str(not_onnx), "--port", busy], "in use"),  # the port is checked first
            ([str(not_onnx), "--port", str(free_port())], "is not a valid ONNX model"),
        ]
        for argv, match in cases:
            assert run_cli(serve_cli.main, argv) == 2, argv
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and match in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.onnx", "notes.onnx"]
