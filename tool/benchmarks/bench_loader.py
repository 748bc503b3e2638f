"""Does the training loader keep up with training? Measured side by side in one run.

    python tool/benchmarks/bench_loader.py                               # baseline, 256 px, batch 8, data/Synthetic
    python tool/benchmarks/bench_loader.py --teacher                     # + the SMPL overlap edge rendered per crop
    python tool/benchmarks/bench_loader.py --batch 16 --batches 6 --workers 0 1 2

Prints samples/s of the training loader at each worker count and the samples/s one baseline training
step consumes at the same batch size (fp32 and --amp), with the ratio loader / step (above 1 the loader keeps up;
2 leaves room for a shared machine).
The synthetic set must exist (python tool/make_data/make_synthetic.py).
"""
import argparse
import copy
import statistics
import time

import torch
from torch.utils.data import DataLoader

from common.errors import run_cli
from data.dataset import build_train_dataset
from data.loader import make_loader
from main.config import load_config
from tool.benchmarks.timing import interleaved, print_machine, train_step


def loader_rate(cfg, dataset, workers, batches):
    cfg.data.num_workers = workers
    loader = make_loader(dataset, cfg, cfg.train.batch_size, torch.device('cpu'), shuffle=True)
    it = iter(loader)
    next(it)  # start-up (worker spawn, first batch) is not throughput
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += next(it)[0]['img'].shape[0]
    rate = n / (time.perf_counter() - t)
    del it
    return rate


def step_rate(cfg, batch, amp, reps=3):
    cfg = copy.deepcopy(cfg)
    cfg.train.amp = amp
    times = interleaved({'step': train_step(cfg, None, batch, torch.device('cpu'))}, reps)['step']
    return batch[0]['img'].shape[0] / statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cfg', default='assets/yaml/baseline.yml')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--batches', type=int, default=5, help='batches timed per worker count')
    ap.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--teacher', action='store_true', help='add the overlap-edge channel, rendered per crop')
    ap.add_argument('overrides', nargs='*')
    args = ap.parse_args()
    print_machine(True)
    extra = ['mode=teacher', 'edge.type=smpl_overlap'] if args.teacher else []
    cfg = load_config(args.cfg, ['data.train_sets_3d=[Synthetic]', 'data.train_sets_2d=[]',
                                 f'train.batch_size={args.batch}'] + extra + args.overrides)
    torch.manual_seed(0)
    dataset = build_train_dataset(cfg)
    print(f'{cfg.mode}, {cfg.model.backbone}, {cfg.model.input_size} px, batch {args.batch}, {len(dataset)} samples, '
          f'{torch.get_num_threads()} torch threads')
    rates = {w: loader_rate(cfg, dataset, w, args.batches) for w in args.workers}
    batch = next(iter(DataLoader(dataset, batch_size=args.batch, shuffle=False)))
    steps = {'fp32': step_rate(cfg, batch, False), 'amp': step_rate(cfg, batch, True)}
    for w, r in rates.items():
        print(f'  loader, {w} worker(s): {r:7.1f} samples/s   ratio to step: fp32 x{r / steps["fp32"]:.1f}, '
              f'amp x{r / steps["amp"]:.1f}')
    for k, r in steps.items():
        print(f'  training step ({k}):  {r:7.1f} samples/s')
    print('note: on a 2-core machine loader workers and the training step share the same cores; the ratios '
          'are each measured alone')


if __name__ == '__main__':
    run_cli(main)
