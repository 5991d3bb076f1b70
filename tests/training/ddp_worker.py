"""Launched by torchrun from test_distributed.py: trains each case a few steps, dumps this
rank's state.

Usage: ddp_worker.py DATA OUT STEPS CASE [CASE ...], a CASE being ``model`` or
``model+compile``. All cases run in one process group (one launch, one process start-up).
For each case, ``OUT/CASE/rank{r}.safetensors`` holds the variant's parameters and buffers
(``model.``), the EMA generator's (``ema.``) and every optimizer's state (``optim.``), and
``OUT/CASE/rank{r}.json`` the optimizer step counts and, for compiled cases, the number of
graphs Dynamo built and which phases it compiled.
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list
from torch._dynamo.utils import counters

from gan_accel.checkpoints import EMA, MODEL, flatten_state, with_prefix
from gan_accel.training.trainer import Trainer
from gan_accel.variants import recipe_config

BATCH = 8


def code_of(fn):
    """The code object Dynamo caches a phase's compiled graphs on."""
    return getattr(fn, "__func__", fn).__code__


def run_case(data: str, out: Path, case: str, steps: int) -> None:
    model, _, flag = case.partition("+")
    torch._dynamo.reset()
    counters.clear()
    cfg = recipe_config(model, "paper", dataset="mnist", data_dir=data, batch_size=BATCH,
                             max_steps=steps, out=str(out / "run"), progress=False,
                             device="cpu", plateau_factor=1.0, compile=flag == "compile")
    trainer = Trainer(cfg, log=lambda *_: None)
    trainer.fit()
    tensors = with_prefix(MODEL, trainer.variant.state_dict())
    if trainer.ema is not None:
        tensors.update(with_prefix(EMA, trainer.ema.state_dict()))
    steps_taken = {}
    for name, opt in trainer.optims.items():
        flatten_state(opt.state_dict()["state"], f"optim.{name}", tensors)
        steps_taken[name] = sorted({int(s["step"]) for s in opt.state.values()})
    rank = dist.get_rank()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / f"rank{rank}.safetensors"))
    compiled = {ph.name: len(_debug_get_cache_entry_list(code_of(ph.loss)))
                for ph in trainer.phases}
    facts = {"optimizer_steps": steps_taken, "unique_graphs": counters["stats"]["unique_graphs"],
             "compiled_entries": compiled}
    (out / f"rank{rank}.json").write_text(json.dumps(facts))


def main(data: str, out: str, steps: int, cases: list[str]) -> None:
    dist.init_process_group("gloo")
    for case in cases:
        folder = Path(out) / case
        folder.mkdir(parents=True, exist_ok=True)
        run_case(data, folder, case, steps)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
