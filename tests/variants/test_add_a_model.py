"""The README's "Add a model" example is complete: its module, dropped into the variants
package, is found by the registry and trains through the same trainer as the built-ins."""

import re

import pytest
from helpers import REPO, tiny_mnist

import gan_accel.variants as variants
from gan_accel.training.trainer import Trainer


def readme_example() -> tuple[str, str]:
    """(file name, code) of the README's Add-a-model block."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Add a model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    name = re.match(r"# gan_accel/variants/(\w+\.py)\n", code).group(1)
    return name, code


def test_the_readme_variant_registers_and_trains(tmp_path, monkeypatch):
    name, code = readme_example()
    package = tmp_path / "extra"
    package.mkdir()
    (package / name).write_text(code)
    monkeypatch.setattr(variants, "__path__", [*variants.__path__, str(package)])
    found = variants._discover()
    monkeypatch.setattr(variants, "VARIANTS", found)
    model = name.removesuffix(".py")
    assert model in found and found[model].__module__ == f"gan_accel.variants.{model}"

    tiny_mnist(tmp_path / "data", n=16)
    cfg = variants.recipe_config(model, dataset="mnist", data_dir=str(tmp_path / "data"),
                                 batch_size=8, max_steps=2, out=str(tmp_path / "run"),
                                 progress=False, device="cpu")
    trainer = Trainer(cfg, log=lambda *_: None)
    assert type(trainer.variant) is found[model]
    trainer.fit()
    assert trainer.pos.step == 2
    assert list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))


@pytest.fixture(autouse=True)
def _forget_the_example_module():
    import sys
    yield
    for key in [k for k in sys.modules if k.startswith("gan_accel.variants.hinge")]:
        del sys.modules[key]
