"""Hostile ONNX files: each is refused with one line naming the file, exit code 2, and
nothing written: data stored outside the model's folder, and a graph whose inputs are not
the ones its metadata promises."""

from __future__ import annotations

import onnx
import pytest
from gan_accel.export.onnx_export import export_generator
from gan_accel.export.runtime import ModelFileError, OnnxGenerator
from onnx import TensorProto, helper

from gan_accel.cli import evaluate, sample
from gan_accel.errors import run_cli
from gan_accel.variants import build_variant, recipe_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "models"
    folder.mkdir()
    export_generator(build_variant(recipe_config("dcgan")), folder / "g.onnx",
                     validate=False)
    return folder / "g.onnx"


def _data_outside_its_folder(src, dst):
    m = onnx.load(str(src))
    init = m.graph.initializer[0]
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    onnx.save(m, str(dst))


def _unexpected_input(src, dst):
    m = onnx.load(str(src))
    extra = helper.make_tensor_value_info("debug", TensorProto.FLOAT, ["batch", 3])
    m.graph.input.append(extra)
    onnx.save(m, str(dst))


CASES = {"external data outside its folder": (_data_outside_its_folder, "points outside"),
         "an input its metadata does not name": (_unexpected_input, "do not match")}


@pytest.mark.parametrize("case", list(CASES))
def test_runtime_refuses(exported, tmp_path, case):
    make, match = CASES[case]
    bad = exported.parent / f"bad-{len(case)}.onnx"
    make(exported, bad)
    with pytest.raises(ModelFileError, match=match):
        OnnxGenerator(bad)


@pytest.mark.parametrize("cli", ["sample", "evaluate"])
@pytest.mark.parametrize("case", list(CASES))
def test_clis_refuse_in_one_line_and_write_nothing(exported, tmp_path, capsys, cli, case):
    make, match = CASES[case]
    bad = exported.parent / f"bad-{cli}-{len(case)}.onnx"
    make(exported, bad)
    before = sorted(p.name for p in exported.parent.iterdir())
    out = tmp_path / ("grid.png" if cli == "sample" else "m.json")
    main = sample.main if cli == "sample" else evaluate.main
    assert run_cli(main, ["--onnx", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and match in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in exported.parent.iterdir()) == before
