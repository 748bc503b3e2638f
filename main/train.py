"""Train a baseline, teacher or student.

    python main/train.py --cfg assets/yaml/baseline.yml                 # CPU, or GPU 0 if there is one
    python main/train.py --gpu 0,1 --amp --cfg assets/yaml/baseline.yml train.lr=1e-4
    python main/train.py --resume output/baseline_20261122-101500        # continue where it stopped
    torchrun --nproc-per-node 4 main/train.py --cfg ...                  # multi-node: add torchrun's --nnodes etc.
"""
import argparse
import os

if not __package__:  # run as a script: put the repository root on sys.path
    import _init_paths  # noqa: F401

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.errors import run_cli
from common.logger import setup_logger
from data.dataset import build_train_dataset
from main.config import load_config, make_exp_dir, resolve_path
from main.trainer import Trainer, free_port, init_process, parse_gpus


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', default='', help='experiment YAML (assets/yaml/...)')
    ap.add_argument('--gpu', default='', help="GPU ids '0,1' or '0-3'; empty: GPU 0 if any, else CPU; -1: CPU")
    ap.add_argument('--amp', action='store_true', help='bf16 autocast + channels_last (fp16 where bf16 is missing)')
    ap.add_argument('--resume', default='', help='experiment folder or checkpoint to continue from')
    ap.add_argument('overrides', nargs='*', help='config overrides key=value, e.g. train.lr=1e-4')
    return ap.parse_args(argv)


def prepare(args):
    """(config, experiment folder, checkpoint to resume); --resume of a folder continues in it."""
    overrides = args.overrides + (['train.amp=true'] if args.amp else [])
    resume = resolve_path(args.resume) if args.resume else None
    if resume and resume.is_dir():
        return load_config(args.cfg or resume / 'config.yaml', overrides), resume, resume
    cfg = load_config(args.cfg, overrides)
    return cfg, make_exp_dir(cfg), resume


def worker(rank, world_size, gpus, args, port):
    if 'LOCAL_RANK' in os.environ:  # started by torchrun: ranks come from the environment
        rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
        gpu = int(os.environ['LOCAL_RANK']) if torch.cuda.is_available() else None
    else:
        gpu = gpus[rank] if gpus else None
    device = init_process(rank, world_size, gpu, port)
    # rank 0 makes the experiment folder; the others learn its name
    shared = [prepare(args) if rank == 0 else None]
    if world_size > 1:
        dist.broadcast_object_list(shared, src=0)
    cfg, exp_dir, resume = shared[0]
    log = setup_logger(exp_dir / 'log' / 'train.log', rank)
    torch.manual_seed(cfg.train.seed + rank)
    log.info(f'experiment {exp_dir}; {world_size} process(es); this one on {device}')
    Trainer(cfg, exp_dir, build_train_dataset(cfg), device, rank, world_size, resume).train()
    if world_size > 1:
        dist.destroy_process_group()
    return exp_dir


def spawned(rank, *args):
    run_cli(lambda: worker(rank, *args))


def main(argv=None):
    args = parse_args(argv)
    gpus = parse_gpus(args.gpu)
    if 'LOCAL_RANK' in os.environ or len(gpus) <= 1:
        return worker(0, 1, gpus, args, None)
    mp.spawn(spawned, args=(len(gpus), gpus, args, free_port()), nprocs=len(gpus))


if __name__ == '__main__':
    run_cli(main)
