"""Does the training stage keep the CPU on learning? The quickstart's real training stage against its bare step.

    python tool/benchmarks/bench_pipeline.py                         # baseline and teacher,
                                                                     # the quickstart's small settings
    python tool/benchmarks/bench_pipeline.py --models baseline --iters 60 --reps 2
    python tool/benchmarks/bench_pipeline.py --models teacher data.image_cache_mb=0   # any config override, on both

Stage: `main/train.py` as the quickstart runs it (its loader worker, the teacher's overlap edges read from the files
the quickstart's data stage renders, logging, a checkpoint every 50 iterations and at the end, validation after the
epoch), for one epoch of at most --iters iterations; its rate is iterations x batch / the process's
wall time (start-up included). Bare step: forward, backward and the optimizer step of the same model on one batch
of the same loader, already in memory, in this process. The two are interleaved (bare, stage, bare, stage, ...) so
that a shared machine's drift hits both, and the ratio stage / bare is printed per model (target >= 0.70). Uses the
quickstart's data (output/quickstart_small/data) when it is there, else makes a small synthetic set.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from common.errors import UserError, run_cli
from common.paths import ROOT
from common.runtime import machine_line, precision_name
from main.config import load_config
from tool.benchmarks.timing import interleaved, train_step
from tool.runs.stages import override, rel, run_script

PRESET = ROOT / 'assets' / 'yaml' / 'quickstart' / 'small.yml'
MODELS = ('baseline', 'teacher')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default=','.join(MODELS), help=f'comma-separated, of {MODELS}')
    ap.add_argument('--iters', type=int, default=146,
                    help='iterations per stage run at most (small: one epoch = 146; fewer on a smaller set)')
    ap.add_argument('--reps', type=int, default=1, help='stage runs per model (each between two bare timings)')
    ap.add_argument('--data', default='', help='data.root with Synthetic/ (default: the quickstart\'s, else made)')
    ap.add_argument('--amp', action='store_true', help='train.py --amp (the precision it picks is printed)')
    ap.add_argument('overrides', nargs='*', help='config overrides of both (key=value), e.g. data.image_cache_mb=0')
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(',') if m]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise UserError(f'--models: {bad or "none"}; choose from {", ".join(MODELS)}')
    if args.iters < 10 or args.reps < 1:
        raise UserError('--iters must be >= 10 and --reps >= 1')
    args.models = models
    return args


def data_root(args, work):
    if args.data:
        root = Path(args.data).resolve()
        if not (root / 'Synthetic' / 'data' / '3DPW_latest_train.json').is_file():
            raise UserError(f'--data {args.data}: no Synthetic/data/3DPW_latest_train.json there')
        return root
    qs = ROOT / 'output' / 'quickstart_small' / 'data'
    if (qs / 'Synthetic' / 'data' / '3DPW_latest_train.json').is_file():
        return qs
    root = work / 'data'
    print(f'making a synthetic set under {root} (the quickstart\'s is not there)', flush=True)
    if run_script('tool/make_data/make_synthetic.py', ['--out', root / 'Synthetic', '--num-images', 200,
                                                       '--split', '80,5,15', '--no-progress']) != 0 or \
            run_script('tool/make_data/make_overlap_edges.py',
                       ['--dataset', 'Synthetic', '--root', root / 'Synthetic']) != 0:
        raise UserError('making the synthetic set failed (the message is above)')
    return root


def stage_overrides(model, root, iters):
    preset = yaml.safe_load(PRESET.read_text())
    spec = preset['models'][model]
    items = {**preset['common'], **(spec.get('overrides') or {}), 'data.root': str(root), 'train.end_epoch': 1,
             'train.max_iters': iters}
    return spec['cfg'], [override(k, v) for k, v in items.items()]


def bare_step(cfg_path, overrides):
    """A callable: one training step of the stage's model on one real batch (the stage's loader, collated once)."""
    from torch.utils.data import SequentialSampler

    from data.dataset import build_train_dataset
    from data.loader import SeededSamples, make_loader
    cfg = load_config(cfg_path, overrides + ['data.num_workers=0'])
    ds = build_train_dataset(cfg)
    batch = next(iter(make_loader(SeededSamples(ds), cfg, cfg.train.batch_size, torch.device('cpu'),
                                  sampler=[(i, i) for i in SequentialSampler(range(cfg.train.batch_size))])))
    # one process runs max(1, len // batch) iterations an epoch (the trainer's count), capped by train.max_iters
    iters = min(max(1, len(ds) // cfg.train.batch_size), cfg.train.max_iters)
    return train_step(cfg, None, batch, torch.device('cpu')), cfg, iters


def stage_run(cfg_path, overrides, work, amp):
    out = Path(tempfile.mkdtemp(dir=work))
    argv = ['--cfg', cfg_path, override('output_dir', rel(out)), *overrides] + (['--amp'] if amp else [])
    t = time.perf_counter()
    rc = run_script('main/train.py', argv, log=out / 'stage.log')
    seconds = time.perf_counter() - t
    if rc != 0:   # the log goes with the temporary folder: its last lines are the message
        tail = (out / 'stage.log').read_text(errors='replace').strip().splitlines()[-5:]
        raise UserError(f'main/train.py failed (exit {rc}): ' + ' | '.join(tail))
    return seconds


def main(argv=None):
    args = parse_args(argv)
    print(f'machine: {machine_line()}; precision: {precision_name(args.amp, torch.device("cpu"))}', flush=True)
    with tempfile.TemporaryDirectory(dir=ROOT / 'output') as tmp:
        work = Path(tmp)
        root = data_root(args, work)
        rows = []
        for model in args.models:
            cfg_path, overrides = stage_overrides(model, root, args.iters)
            overrides += (['train.amp=true'] if args.amp else []) + list(args.overrides)
            step, cfg, iters = bare_step(cfg_path, overrides)
            bs = cfg.train.batch_size
            bare, stage = [], []
            for rep in range(args.reps):
                bare += interleaved({'bare': step}, 5, warmup=2 if rep == 0 else 0)['bare']
                stage.append(stage_run(cfg_path, overrides, work, args.amp))
                print(f'{model}: stage run {rep + 1}: {iters * bs / stage[-1]:.1f} samples/s '
                      f'({stage[-1]:.0f} s for {iters} iterations)', flush=True)
            bare += interleaved({'bare': step}, 5, warmup=0)['bare']
            r_bare, r_stage = bs / statistics.median(bare), iters * bs / statistics.median(stage)
            rows.append((model, r_bare, r_stage, iters))
        print(f'\n{cfg.model.backbone}, {cfg.model.input_size} px, batch {bs}, data {rel(root)}')
        print(f'{"model":<10}{"iterations":>11}{"bare step":>14}{"stage":>14}{"stage / bare":>15}')
        for model, r_bare, r_stage, iters in rows:
            print(f'{model:<10}{iters:>11}{r_bare:>10.1f} s/s{r_stage:>10.1f} s/s{r_stage / r_bare:>15.2f}')
        print('(s/s: samples per second; the stage includes process start-up, the loader, logging, checkpoints and '
              'the validation after the epoch)')


if __name__ == '__main__':
    run_cli(main)
