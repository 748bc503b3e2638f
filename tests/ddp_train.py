"""Run by tests/main/test_training.py under torchrun (and alone): trains a tiny model with the Trainer and saves
this rank's parameters to <out>/rank<r>.pt, so the test can compare ranks and world sizes.

    python -m torch.distributed.run --nproc-per-node 2 -m tests.ddp_train OUT key=value ...

Run as a module from the repository root: as a script, its folder would come first on sys.path, where tests/common
would stand in for the project's common package.
"""
import os
import sys
from pathlib import Path

import torch

from common.runtime import init_process, unwrap
from data.dataset import build_train_dataset
from main.config import load_config
from main.trainer import Trainer


def main():
    out, overrides = Path(sys.argv[1]), sys.argv[2:]
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    # SEFD_DDP_GPU=1 (tests/test_gpu.py): one GPU per rank, NCCL; else the CPU and gloo
    gpu = int(os.environ.get('LOCAL_RANK', rank)) if os.environ.get('SEFD_DDP_GPU') == '1' else None
    device = init_process(rank, world, gpu)
    cfg = load_config('assets/yaml/tiny_cpu.yml', overrides)
    torch.manual_seed(cfg.train.seed)
    exp = out / 'exp'
    (exp / 'checkpoint').mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, exp, build_train_dataset(cfg), device, rank, world)
    if rank == 0:
        torch.save({k: v.detach().clone() for k, v in unwrap(trainer.model).named_parameters()}, out / 'init.pt')
    trainer.train()
    torch.save({k: v.detach().clone() for k, v in unwrap(trainer.model).named_parameters()}, out / f'rank{rank}.pt')


if __name__ == '__main__':
    main()
