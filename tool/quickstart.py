"""The whole method in one command: data, teacher, distilled student, edge-only student, baseline, tests, report.

    python tool/quickstart.py                      # --scale small: synthetic crowds, ~15 min on 2 CPU cores
    python tool/quickstart.py --scale tiny         # every stage in about a minute (a smoke run)
    python tool/quickstart.py --scale medium --seeds 3  # more people and epochs, three seeds: ~70 min on 2 CPU cores
    python tool/quickstart.py --scale full --gpu 0 # the real datasets, ResNet-50 at 256 px (when present)
    python tool/quickstart.py --seeds 3            # 3 seeds per model: mean and spread in the report
    python tool/quickstart.py --dry-run            # the plan and the commands, nothing run

Stages (each one a real command line: tool/make_data/make_synthetic.py, main/train.py, main/test.py, so the report's
numbers are the result files' numbers):
  data        the synthetic crowd set under <run>/data/Synthetic, made when missing (small, tiny)
  teacher     RGB + SMPL overlap edge, from the preset's start (small: ImageNet Lite0)
  student     SEFD: RGB + Canny, log_softmax_l1 on backbone stages 3-4, starting from the teacher's weights
  edge_only   the same student without the distillation loss, also from the teacher's weights
  baseline    3DCrowdNet (no edge channel), as many epochs as teacher + student
  test_*      each model on the test split (main/test.py)
  probe_*     seed 0's models with their images swapped between people, grey, edge maps zeroed or swapped
              (tool/experiments/probe_inputs.py); also the baseline at the teacher's epochs, the oracle's fair
              comparison
  report      <run>/report.md with the metrics table and figures (montage.png, curves.png, occlusion.png)
The settings of each scale are one file, assets/yaml/quickstart/<scale>.yml. The run folder (default
output/quickstart_<scale>) holds state.json (finished stages, their experiment folders and times) and runs/<stage>/
(one experiment folder each). Running the command again skips finished stages and continues an interrupted
training with `main/train.py --continue --exp_dir`; changed settings are refused (--fresh starts over). A run in the
default folder copies its distilled student to output/default_model/model.pth.tar, the demo's default model.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import yaml

from common.errors import UserError, run_cli
from common.paths import ROOT
from tool.runs import plots, report
from tool.runs.report import LONG_NAMES, NAMES, REPORT_ORDER, TRAIN_ORDER
from tool.runs.stages import (find_exp, fmt_time, is_tested, machine, override, rel, result_path, run_script,
                              test_stage, train_stage, trained_snapshot)
from tool.runs.state import RunState, check_run_folder, read_state

PRESETS = ROOT / 'assets' / 'yaml' / 'quickstart'
SCALES = ('tiny', 'small', 'medium', 'full')
# relative cost of one training iteration (baseline = 1): the time-left estimate only
COST = {'baseline': 1.0, 'teacher': 1.3, 'edge_only': 1.15, 'student': 1.9}
STATE_VERSION = 1


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--scale', default='small', choices=SCALES, help='settings: assets/yaml/quickstart/<scale>.yml')
    ap.add_argument('--seeds', type=int, default=1, help='seeds per model (train.seed 0..N-1); mean and spread')
    ap.add_argument('--gpu', default='', help="GPU id(s) for train.py/test.py ('0', '0,1'); empty: GPU 0 if any")
    ap.add_argument('--amp', action='store_true', help='train.py --amp: the precision this device computes natively (bf16, fp16 or fp32)')
    ap.add_argument('--out', default='', help='run folder (default output/quickstart_<scale>)')
    ap.add_argument('--fresh', action='store_true', help='delete the run folder\'s stages and start over')
    ap.add_argument('--dry-run', action='store_true', help='print the plan and the commands; run nothing')
    args = ap.parse_args(argv)
    if args.seeds < 1:
        raise UserError(f'--seeds must be >= 1, got {args.seeds}')
    return args


# ---------------------------------------------------------------------------------------------- settings
def load_preset(scale):
    path = PRESETS / f'{scale}.yml'
    if not path.is_file():
        raise UserError(f'{path} not found (the quickstart scales live in assets/yaml/quickstart/)')
    preset = yaml.safe_load(path.read_text()) or {}
    missing = {'common', 'models', 'report'} - set(preset)
    if missing or set(preset['models']) != set(TRAIN_ORDER):
        raise UserError(f'{path}: needs the sections common, models ({", ".join(TRAIN_ORDER)}) and report; '
                        f'found {sorted(preset)} / models {sorted(preset.get("models") or {})}')
    return preset, path


# ---------------------------------------------------------------------------------------------- the run
class Quickstart:
    def __init__(self, args):
        self.args = args
        self.preset, self.preset_path = load_preset(args.scale)
        self.run_dir = Path(args.out).resolve() if args.out else ROOT / 'output' / f'quickstart_{args.scale}'
        if not args.out:
            self.run_dir = self.run_dir.resolve()
        check_run_folder(self.run_dir, 'state.json', '--out' if args.out else 'the run folder')
        self.state_path = self.run_dir / 'state.json'
        self.synthetic = self.preset.get('synthetic')
        self.data_root = self.run_dir / 'data' if self.synthetic else None
        self.seeds = list(range(args.seeds))
        self.state = RunState(self.state_path, 'stages', self.initial_state(), dry_run=args.dry_run)
        self.t_start = time.time()
        self.measured = []   # (units, seconds) of stages run by this invocation: the time-left estimate

    # ------------------------------------------------------------------------------------------ state
    def initial_state(self):
        """The state to continue from: the file's (of this STATE_VERSION), or with --fresh none but the data stage
        (the synthetic set stays when its settings have not changed), after deleting the stages' outputs."""
        fresh = {'version': STATE_VERSION, 'scale': self.args.scale, 'stages': {}}
        before = read_state(self.state_path, fresh)
        if self.args.fresh and self.run_dir.exists() and not self.args.dry_run:
            for name in ('runs', 'state.json', 'report.md', 'results.json', 'montage.png', 'curves.png',
                         'occlusion.png'):
                p = self.run_dir / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
            fresh['stages'] = {k: v for k, v in (before.get('stages') or {}).items() if k == 'data'}
            return fresh
        return before if before.get('version') == STATE_VERSION else fresh

    # ------------------------------------------------------------------------------------------ settings
    def model_spec(self, model):
        return self.preset['models'][model]

    def epochs(self, model):
        spec = self.model_spec(model)
        if spec.get('epochs'):
            return int(spec['epochs'])
        from main.config import load_config
        return load_config(spec['cfg'], self.overrides(model, 0, teacher='pending')).train.end_epoch

    def stage_dir(self, model, seed):
        return self.run_dir / 'runs' / f'{model}_s{seed}'

    def overrides(self, model, seed, teacher=None):
        spec = self.model_spec(model)
        out = [override(k, v) for k, v in (self.preset.get('common') or {}).items()]
        out += [override(k, v) for k, v in (spec.get('overrides') or {}).items()]
        if self.data_root is not None:
            out.append(override('data.root', rel(self.data_root)))
        if spec.get('epochs'):
            out.append(override('train.end_epoch', int(spec['epochs'])))
        out.append(override('train.seed', seed))
        if model in ('student', 'edge_only'):
            # both students start from the teacher's weights; only the distilled one keeps it as a teacher
            out.append(override('distill.teacher_ckpt', teacher or 'pending'))
            out.append(override('distill.init_from_teacher', True))
        return out

    def train_argv(self, model, seed, teacher=None):
        return ['--cfg', self.model_spec(model)['cfg'], '--exp_name', model,
                override('output_dir', rel(self.stage_dir(model, seed)))] + self.overrides(model, seed, teacher)

    def device_flags(self):
        return (['--gpu', self.args.gpu] if self.args.gpu else []) + (['--amp'] if self.args.amp else [])

    def teacher_snapshot(self, seed):
        path = trained_snapshot(self.stage_dir('teacher', seed), self.epochs('teacher'))
        return rel(path) if path is not None else None

    # ------------------------------------------------------------------------------------------ plan
    def plan(self):
        """[(stage name, kind, model, seed)] in running order."""
        stages = [('data', 'data', None, None)] if self.synthetic else []
        for seed in self.seeds:
            stages += [(f'{m}_s{seed}', 'train', m, seed) for m in TRAIN_ORDER]
            stages += [(f'test_{m}_s{seed}', 'test', m, seed) for m in REPORT_ORDER]
        # seed 0's models with their inputs altered (tool/experiments/probe_inputs.py), and the baseline at the
        # teacher's epochs
        stages += [(f'probe_{m}_s0', 'probe', m, 0) for m in self.probed_models()]
        return stages + [('report', 'report', None, None)]

    def probed_models(self):
        """The models the probe stages test: the four, and 'baseline_short' (the baseline's snapshot at the
        teacher's epoch count: the oracle teacher's fair comparison) when the baseline trains longer."""
        return REPORT_ORDER + (('baseline_short',) if self.epochs('baseline') > self.epochs('teacher') else ())

    def probe_target(self, model):
        """(experiment folder, epoch, result file) of a probe stage."""
        trained = 'baseline' if model == 'baseline_short' else model
        exp = self.find_exp(self.stage_dir(trained, 0))
        epoch = self.epochs('teacher' if model == 'baseline_short' else model) - 1
        return exp, epoch, (exp / 'result' / f'probe_{epoch}.json') if exp is not None else None

    def train_samples(self):
        """Training annotations (people) of the synthetic set, or an estimate before it exists."""
        if self.synthetic:
            ann = self.data_root / 'Synthetic' / 'data' / '3DPW_latest_train.json'
            if ann.is_file():
                return len(json.loads(ann.read_text())['annotations'])
            return int(self.synthetic['num_images'] * 0.8 * 2.8)
        return 10 ** 6

    def units(self, kind, model):
        """Cost of a stage in baseline-iteration units (for the time-left estimate)."""
        common = self.preset.get('common') or {}
        if kind == 'data':
            return 0.25 * self.synthetic['num_images']
        if kind == 'report':
            return 10.0
        if kind in ('test', 'probe'):
            return (5.0 + 0.02 * self.train_samples() / 8) * (1 if kind == 'test' else 4)
        bs = int(common.get('train.batch_size', 64))
        per_epoch = max(1, self.train_samples() // bs)
        if common.get('train.max_iters'):
            per_epoch = min(per_epoch, int(common['train.max_iters']))
        val = 0.15 * per_epoch if common.get('train.val_every') else 0.0
        return 5.0 + self.epochs(model) * (per_epoch * COST[model] + val)

    def time_left(self, remaining_units):
        if self.measured:
            rate = sum(s for _, s in self.measured) / max(1e-6, sum(u for u, _ in self.measured))
        else:
            total = sum(self.units(k, m) for _, k, m, _ in self.plan())
            rate = 60.0 * float(self.preset.get('expected_minutes', 15)) * len(self.seeds) / max(total, 1e-6)
        return remaining_units * rate

    # ------------------------------------------------------------------------------------------ running
    def run(self):
        if self.args.scale == 'full' and not self.args.dry_run:
            check_real_datasets(self)
        plan = self.plan()
        if self.args.dry_run:
            return self.dry_run(plan)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state.data.setdefault('machine', machine())
        self.state.save()
        print(f'quickstart --scale {self.args.scale} ({self.preset.get("description", "")}); run folder '
              f'{self.run_dir}; settings {rel(self.preset_path)}', flush=True)
        ran = False
        for i, (name, kind, model, seed) in enumerate(plan):
            head = f'[{i + 1}/{len(plan)}] {name}'
            if self.is_done(name, kind, model, seed) and not (kind == 'report' and ran):
                print(f'{head}: done before, skipped', flush=True)
                continue
            remaining = sum(self.units(k, m) for n, k, m, s in plan[i:] if not self.is_done(n, k, m, s))
            print(f'\n{head}: {self.describe(kind, model, seed)} -- {fmt_time(time.time() - self.t_start)} elapsed, '
                  f'about {fmt_time(self.time_left(remaining))} left', flush=True)
            t0 = time.time()
            try:
                getattr(self, f'run_{kind}')(name, model, seed)
            except KeyboardInterrupt as e:   # Ctrl-C or SIGTERM: its exit code, and where to go on from
                raise type(e)(f'during stage {name}; run the same command again to continue from there') from None
            seconds = time.time() - t0
            self.measured.append((self.units(kind, model), seconds))
            self.state.record(name, done=True, seconds=round(seconds, 1))
            ran = True
        if not self.args.out:   # the default run folder: its distilled student becomes the demo's default model
            from main.checkpoint import DEFAULT_MODEL, publish_model
            publish_model(trained_snapshot(self.stage_dir('student', 0), self.epochs('student')))
            print(f'the demo\'s default model (python demo/demo.py): {rel(DEFAULT_MODEL)}, the distilled student',
                  flush=True)
        total = sum(s.get('seconds', 0) for s in self.state.stages.values())
        print(f'\nquickstart done in {fmt_time(time.time() - self.t_start)} (all stages, including earlier runs: '
              f'{fmt_time(total)}); report: {self.run_dir / "report.md"}', flush=True)
        return self.run_dir

    def describe(self, kind, model, seed):
        if kind == 'data':
            return f'synthetic crowd set ({self.synthetic["num_images"]} images) -> {rel(self.data_root)}'
        if kind == 'train':
            return f'train the {LONG_NAMES[model]}, seed {seed}, {self.epochs(model)} epochs'
        if kind == 'test':
            return f'test the {NAMES[model]} (seed {seed}) on the {self.test_set()} test split'
        if kind == 'probe':
            return f'probe the {NAMES[model]} (seed {seed}): images swapped between people, grey, edges zeroed'
        return 'report: metrics table and figures'

    def test_set(self):
        return (self.preset.get('common') or {}).get('data.test_set', 'PW3D')

    def is_done(self, name, kind, model, seed):
        rec = self.state.stages.get(name, {})
        if not rec.get('done'):
            return False
        if kind == 'data':
            return all((self.data_root / 'Synthetic' / 'data' / f'3DPW_latest_{sp}.json').is_file()
                       for sp in ('train', 'validation', 'test'))
        if kind == 'train':
            return trained_snapshot(self.stage_dir(model, seed), self.epochs(model)) is not None
        if kind == 'test':
            return self.result_json(model, seed) is not None
        if kind == 'probe':
            exp, epoch, out = self.probe_target(model)
            snap = exp / 'checkpoint' / f'snapshot_{epoch}.pth.tar' if exp is not None else None
            return out is not None and out.is_file() and out.stat().st_mtime >= snap.stat().st_mtime
        return (self.run_dir / 'report.md').is_file() and rec.get('seeds') == len(self.seeds)

    def command(self, script, argv, name):
        rc = run_script(script, argv)
        if rc != 0:
            raise UserError(f'stage {name} failed ({script} exited with code {rc}; its message is above); fix it and '
                            f'run the same command again: finished stages are kept')

    # ---- data
    def run_data(self, name, model, seed):
        s = self.synthetic
        argv = ['--out', rel(self.data_root / 'Synthetic'), '--num-images', s['num_images'], '--seed', s.get('seed', 0),
                '--split', s.get('split', '80,10,10')]
        for k, v in s.items():
            if k not in ('num_images', 'seed', 'split'):
                argv += [f'--{k.replace("_", "-")}', v]
        self.check_settings(name, argv)
        self.command('tool/make_data/make_synthetic.py', argv, name)
        # the teacher's SMPL overlap edges, rendered once per image (the presets read them with
        # edge.overlap_source: file) instead of once per training crop in the loader worker: measured, the rendering
        # in the worker held the teacher's stage at half its bare step's rate on 2 cores
        # (tool/benchmarks/bench_pipeline.py)
        if (self.preset.get('common') or {}).get('edge.overlap_source') == 'file':
            self.command('tool/make_data/make_overlap_edges.py',
                         ['--dataset', 'Synthetic', '--root', rel(self.data_root / 'Synthetic')], name)

    def check_settings(self, name, argv):
        """A stage keeps the settings it was started with: a changed preset is refused, not mixed in."""
        argv = [str(a) for a in argv]
        before = self.state.stages.get(name, {}).get('argv')
        if before is not None and before != argv:
            diff = [a for a in argv if a not in before] or [a for a in before if a not in argv]
            raise UserError(f'{self.run_dir} was started with other settings for stage {name} (now: '
                            f'{" ".join(diff[:4])}); rerun with --fresh to start over, or --out for another folder')
        self.state.record(name, argv=argv)

    # ---- training
    find_exp = staticmethod(find_exp)

    def run_train(self, name, model, seed):
        teacher = None
        if model in ('student', 'edge_only'):
            teacher = self.teacher_snapshot(seed)
            if teacher is None:
                raise UserError(f'stage {name} needs the teacher of seed {seed}, which has no snapshot; rerun the '
                                f'quickstart (it trains the teacher first)')
        argv = self.train_argv(model, seed, teacher)
        self.check_settings(name, argv)
        exp = train_stage(self.stage_dir(model, seed), argv, self.epochs(model), self.device_flags(),
                          what=f'stage {name}', say=lambda m: print(m, flush=True))
        self.state.record(name, exp_dir=rel(exp), epochs=self.epochs(model))

    # ---- tests
    def result_json(self, model, seed):
        exp = self.find_exp(self.stage_dir(model, seed))
        return result_path(exp, self.epochs(model)) if is_tested(exp, self.epochs(model)) else None

    def run_test(self, name, model, seed):
        exp = self.find_exp(self.stage_dir(model, seed))
        self.check_settings(name, ['--exp_dir', rel(exp), '--test_epoch', self.epochs(model) - 1])
        path = test_stage(exp, self.epochs(model), self.args.gpu, what=f'stage {name}')
        self.state.record(name, result=rel(path))

    def run_probe(self, name, model, seed):
        exp, epoch, out = self.probe_target(model)
        argv = ['--ckpt', rel(exp), '--epoch', epoch, '--out', rel(out)] + (['--gpu', self.args.gpu] if self.args.gpu
                                                                           else [])
        self.check_settings(name, argv)
        self.command('tool/experiments/probe_inputs.py', argv, name)
        self.state.record(name, result=rel(out))

    # ---- report
    def run_report(self, name, model, seed):
        self.state.stages.pop('report', None)
        results, npz = report.load_results(self)
        rows = report.table_rows(results)
        report.write_report(self, rows, npz, plots.draw_figures(self, npz, rows))
        self.state.record(name, seeds=len(self.seeds))

    def dry_run(self, plan):
        print(f'plan of quickstart --scale {self.args.scale} (settings {rel(self.preset_path)}, run folder '
              f'{self.run_dir}):')
        from main.config import load_config
        for name, kind, model, seed in plan:
            if kind == 'train':
                argv = self.train_argv(model, seed, teacher='<teacher snapshot>' if model in ('student', 'edge_only')
                                       else None)
                load_config(self.model_spec(model)['cfg'], self.overrides(model, seed, 'pending'))  # validates
                print(f'  {name}: python main/train.py {" ".join(argv + self.device_flags())}')
            elif kind == 'test':
                print(f'  {name}: python main/test.py --exp_dir <{model}_s{seed} experiment> --test_epoch '
                      f'{self.epochs(model) - 1}')
            elif kind == 'probe':
                print(f'  {name}: python tool/experiments/probe_inputs.py --ckpt <{model}_s0 experiment> '
                      f'--out <its result folder>')
            elif kind == 'data':
                print(f'  {name}: python tool/make_data/make_synthetic.py --out {rel(self.data_root / "Synthetic")} '
                      f'--num-images {self.synthetic["num_images"]}')
            else:
                print(f'  {name}: {rel(self.run_dir / "report.md")}')
        return self.run_dir


def check_real_datasets(qs):
    """--scale full: every dataset the experiment files name must be there (one line naming what is missing)."""
    from data.dataset import get_dataset_class
    from main.config import load_config
    seen = set()
    for model in TRAIN_ORDER:
        cfg = load_config(qs.model_spec(model)['cfg'], qs.overrides(model, 0, 'pending'))
        for name, split in [(n, 'train') for n in cfg.data.train_sets_3d + cfg.data.train_sets_2d] + \
                [(cfg.data.test_set, 'test')]:
            if (name, split) in seen:
                continue
            seen.add((name, split))
            try:
                get_dataset_class(name)(cfg, split)
            except UserError as e:
                raise UserError(f'--scale full needs the real datasets (docs/data.md): {name} {split}: {e}; '
                                f'without them, run --scale small (synthetic crowds)') from e


def main(argv=None):
    args = parse_args(argv)
    return Quickstart(args).run()


def cli():
    """The console script sefd-quickstart (pyproject.toml): main() with one-line errors."""
    run_cli(main)


if __name__ == '__main__':
    cli()
