"""Launched by torchrun from test_distributed.py: trains a few steps, dumps this rank's state."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from gan_accel.config import TrainConfig
from gan_accel.training.trainer import Trainer


def main(data: str, out: str, model: str, steps: int) -> None:
    dist.init_process_group("gloo")
    cfg = TrainConfig.preset(model, dataset="mnist", data_dir=data, batch_size=8,
                             max_steps=steps, out=str(Path(out) / "run"), progress=False,
                             device="cpu", plateau_factor=1.0)
    trainer = Trainer(cfg, log=lambda *_: None)
    trainer.fit()
    state = {k: v.contiguous() for k, v in trainer.variant.state_dict().items()}
    save_file(state, str(Path(out) / f"rank{dist.get_rank()}.safetensors"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
