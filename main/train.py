"""Train a baseline, teacher or student.

    python main/train.py --cfg assets/yaml/teacher.yml                   # CPU, or GPU 0 if there is one
    python main/train.py --gpu 0,1 --amp --cfg assets/yaml/student.yml distill.teacher_ckpt=output/<teacher>
    python main/train.py --gpu 0-3 --cfg assets/yaml/baseline.yml --lr 1e-4 --end_epoch 12 --train_batch_size 32
    python main/train.py --continue --exp_dir output/<experiment>        # continue exactly where it stopped
    python main/train.py --continue --exp_dir <3DCrowdNet/SEFD experiment or snapshot> --cfg ...   # start from it
    torchrun --nproc-per-node 4 main/train.py --cfg ...                  # multi-node: add torchrun's --nnodes etc.

3DCrowdNet's / OSX's flags work as their users type them; anything else is a `key=value` config override.
"""
import argparse
import contextlib
import os
import shutil

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.errors import UserError, run_cli
from common.logger import setup_logger
from common.paths import resolve_path
from common.runtime import free_port, init_process, parse_gpus
from data.dataset import build_train_dataset, get_dataset_class
from main.checkpoint import checkpoint_dir, config_of, latest_checkpoint, load_checkpoint, snapshots
from main.config import load_config, load_saved_config, make_exp_dir
from main.trainer import Trainer

FLAG_KEYS = {'lr': ('train.lr', 'train.lr_backbone'), 'end_epoch': ('train.end_epoch',),
             'train_batch_size': ('train.batch_size',), 'exp_name': ('exp_name',)}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', default='', help='experiment YAML (assets/yaml/...)')
    ap.add_argument('--gpu', default='', help="GPU ids '0,1' or '0-3' (one process each); empty: GPU 0 if any, "
                                              "else CPU; -1: CPU")
    ap.add_argument('--amp', action='store_true', help='channels_last + mixed precision where this device computes it natively (bf16, else fp16 on GPUs, else fp32)')
    ap.add_argument('--continue', dest='continue_train', action='store_true',
                    help='continue the experiment of --exp_dir exactly where it stopped')
    ap.add_argument('--exp_dir', default='', help='experiment folder to continue (with --continue)')
    ap.add_argument('--resume', default='', help='same as --continue --exp_dir DIR')
    ap.add_argument('--lr', type=float, help='learning rate of every parameter group (train.lr, train.lr_backbone)')
    ap.add_argument('--end_epoch', type=int, help='train.end_epoch')
    ap.add_argument('--train_batch_size', type=int, help='train.batch_size (per process)')
    ap.add_argument('--exp_name', help='experiment folder prefix')
    ap.add_argument('overrides', nargs='*', help='config overrides key=value, e.g. train.lr=1e-4')
    args = ap.parse_intermixed_args(argv)  # key=value overrides may come between flags
    if args.resume:
        args.continue_train, args.exp_dir = True, args.exp_dir or args.resume
    return args


def overrides_of(args):
    out = list(args.overrides) + (['train.amp=true'] if args.amp else [])
    for flag, keys in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            out += [f'{k}={value}' for k in keys]
    return out


def prepare(args):
    """(config, experiment folder or None for a new one, checkpoint to resume exactly, checkpoint to start from).

    --continue --exp_dir: an experiment folder of this project continues exactly in place; anything else with
    weights (a checkpoint file, a published 3DCrowdNet / SEFD experiment folder or snapshot) is the starting
    point of a new experiment, from the epoch after its own (3DCrowdNet's rule)."""
    if args.continue_train:
        if not args.exp_dir:
            raise UserError('--continue needs the experiment to continue: --continue --exp_dir output/<experiment>')
        exp = resolve_path(args.exp_dir)
        if (exp / 'config.yaml').is_file():
            ckpt = latest_checkpoint(exp, prefer_last=True)  # one line when it has no checkpoint yet
            cfg = load_config(args.cfg, overrides_of(args)) if args.cfg else load_saved_config(exp / 'config.yaml',
                                                                                               overrides_of(args))
            return cfg, exp, ckpt, None
        if exp.is_dir() and not snapshots(checkpoint_dir(exp)):
            raise UserError(f'--exp_dir {args.exp_dir}: no config.yaml and no snapshot_<epoch>.pth.tar; nothing to '
                            f'continue')
        ckpt, path = load_checkpoint(exp, prefer_last=True)
        given = args.cfg or any(o.startswith('distill.loss=') for o in overrides_of(args))
        if ckpt.get('published', {}).get('distill_loss_guessed') and not given:
            raise UserError(f'{path}: a published SEFD student does not record its distillation loss (KD, AT, FSP, '
                            f'L1 or log_softmax_l1 look alike in the file); to train on, pass its training YAML '
                            f'(--cfg) or distill.loss=<name>')
        return config_of(ckpt, path, overrides_of(args), args.cfg or None), None, None, (ckpt, path)
    if args.exp_dir:
        raise UserError('--exp_dir names an experiment to continue: add --continue (or drop --exp_dir)')
    return load_config(args.cfg, overrides_of(args)), None, None, None


@contextlib.contextmanager
def lock_experiment(exp_dir):
    """An exclusive lock on exp_dir/.lock while the block runs: two trainings of one experiment (two `--continue`
    at once) would write each other's checkpoints. A POSIX record lock: the kernel drops it when this process ends
    however it ends (SIGKILL too), and forked loader workers do not inherit it, so it ends with this process even
    when a worker outlives it for a moment."""
    import fcntl
    with open(exp_dir / '.lock', 'a') as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise UserError(f'{exp_dir} is being trained by another process (it holds {exp_dir / ".lock"}); wait '
                            f'for it or stop it') from e
        yield


def validation_set(cfg):
    if not cfg.train.val_every:
        return None
    return get_dataset_class(cfg.data.test_set)(cfg, 'validation')


def worker(rank, world_size, gpus, args, port):
    if 'LOCAL_RANK' in os.environ:  # started by torchrun: ranks come from the environment
        rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
        gpu = int(os.environ['LOCAL_RANK']) if torch.cuda.is_available() else None
    else:
        gpu = gpus[rank] if gpus else None
    device = init_process(rank, world_size, gpu, port)
    setup_logger(None, rank)  # console first; the experiment's log file once the folder exists
    cfg, exp_dir, resume, start = prepare(args)
    new = exp_dir is None
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    # everything that can fail on bad input happens before rank 0 makes the experiment folder
    dataset, val = build_train_dataset(cfg), validation_set(cfg)
    made_output_dir = not resolve_path(cfg.output_dir).exists()
    if new:
        shared = [make_exp_dir(cfg) if rank == 0 else None]
        if world_size > 1:
            dist.broadcast_object_list(shared, src=0)
        exp_dir = shared[0]
    with contextlib.ExitStack() as held:   # rank 0 holds the experiment's lock while it trains and cleans up
        try:   # from the folder's first file on: an interrupt at any point leaves no folder without a checkpoint
            log = setup_logger(exp_dir / 'log' / 'train.log', rank)
            if rank == 0:
                held.enter_context(lock_experiment(exp_dir))
            torch.manual_seed(cfg.train.seed + rank)
            log.info(f'experiment {exp_dir}; {world_size} process(es); this one on {device}')
            Trainer(cfg, exp_dir, dataset, device, rank, world_size, resume, val, start).train()
        except BaseException:
            # a run that never wrote a checkpoint leaves nothing behind
            if new and rank == 0 and not any((exp_dir / 'checkpoint').glob('*.pth.tar')):
                shutil.rmtree(exp_dir, ignore_errors=True)
                if made_output_dir:   # and the output folder this run made, left empty
                    with contextlib.suppress(OSError):
                        exp_dir.parent.rmdir()
            raise
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
    try:
        mp.spawn(spawned, args=(len(gpus), gpus, args, free_port()), nprocs=len(gpus))
    except mp.ProcessExitedException as e:  # a rank died; spawn has stopped the others
        raise UserError(f'DDP rank {e.error_index} (GPU {gpus[e.error_index]}) exited with code {e.exit_code}; '
                        f'the whole job was stopped (its error, if any, is printed above)') from e
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1]
        raise UserError(f'DDP rank {e.error_index} (GPU {gpus[e.error_index]}) failed: {last}; the whole job was '
                        f'stopped') from e


def cli():
    """The console script sefd-train (pyproject.toml): main() with one-line errors."""
    run_cli(main)


if __name__ == '__main__':
    cli()
