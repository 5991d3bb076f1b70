"""Inception FID on request only: from a local weights file through torchmetrics, never a
download. The network is made unreachable in these tests (socket connect raises)."""

from __future__ import annotations

import os
import socket
from importlib.util import find_spec

import pytest
import torch

from gan_accel.errors import UserError, run_cli
from gan_accel.evaluation import inception as inception_mod
from gan_accel.evaluation.inception import InceptionFID

# CI installs the [inception] extra: there a missing torch-fidelity is a failure, not a skip
needs_fidelity = pytest.mark.skipif(
    find_spec("torch_fidelity") is None and not os.environ.get("CI"),
    reason="the [inception] extra (torch-fidelity) is not installed")


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection is recorded and fails."""
    attempts: list = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network unreachable in this test ({address})")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(f"network unreachable in this test ({host})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    return attempts


def test_missing_weights_file_is_one_line_and_never_downloads(no_network, tmp_path):
    with pytest.raises(UserError, match="does not exist.*nothing is downloaded") as err:
        InceptionFID(tmp_path / "missing.pth")
    assert "\n" not in str(err.value) and str(tmp_path / "missing.pth") in str(err.value)
    assert no_network == []


def test_unreadable_or_foreign_weights_are_one_line(no_network, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(UserError, match="junk.pth is not a readable PyTorch weights file"):
        InceptionFID(junk)
    listed = tmp_path / "list.pth"
    torch.save([1, 2, 3], listed)
    with pytest.raises(UserError, match="does not hold a state dict of tensors"):
        InceptionFID(listed)
    assert no_network == []


def test_missing_extra_names_the_install_command(no_network, tmp_path, monkeypatch):
    weights = tmp_path / "w.pth"
    torch.save({"w": torch.zeros(1)}, weights)
    monkeypatch.setattr(inception_mod, "find_spec",
                        lambda name: None if name == "torch_fidelity" else find_spec(name))
    with pytest.raises(UserError, match=r"needs torch_fidelity: pip install 'gan-accel\[incep"):
        InceptionFID(weights)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file in the layout of torch-fidelity's InceptionV3 with random values: the
    real file is a download this machine cannot make, and the code path is the same."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict",
                   lambda self, state, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "weights-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
@needs_fidelity
def test_inception_fid_runs_offline_from_a_local_file(no_network, random_inception_weights):
    g = torch.Generator().manual_seed(0)
    real_a = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    real_b = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    fake = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)  # gray images are copied to RGB
    res = InceptionFID(random_inception_weights).measure(real_a, real_b, fake)
    assert no_network == []
    assert res["inception_fid"] > res["inception_fid_floor"] >= 0
    assert res["inception_feature_space"].endswith(str(random_inception_weights))
    assert res["inception_feature_space"].startswith("inception-v3")


@needs_fidelity
def test_weights_of_another_network_are_one_line(no_network, tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(UserError, match="does not fit torchmetrics' InceptionV3") as err:
        InceptionFID(other)
    assert "\n" not in str(err.value) and no_network == []


def test_evaluate_cli_missing_weights_fails_before_any_work(no_network, tmp_path, capsys):
    from gan_accel.cli import evaluate

    code = run_cli(evaluate.main, ["--checkpoint", str(tmp_path / "no-run"),
                                   "--inception-weights", str(tmp_path / "none.pth")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert no_network == []
