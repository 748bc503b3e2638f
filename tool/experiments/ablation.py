"""Ablation grids: train and test every cell of a grid over a base config, then one table, CSV and chart.

    python tool/experiments/ablation.py --base assets/yaml/student.yml edge.type=canny,rcf,hed \\
        distill.loss=log_softmax_l1,l1,kd,at,fsp,gc,cwd,pkd distill.stages=[3,4],[2,3,4],[1,2,3,4] --seeds 3
    python tool/experiments/ablation.py --preset sefd_losses --teacher output/<teacher experiment>   # SEFD's loss table
    python tool/experiments/ablation.py --preset sefd_stages --jobs 2 --gpu 0,1     # feature connections
    python tool/experiments/ablation.py --preset sefd_losses train.end_epoch=2 --dry-run   # the cells, nothing run

Arguments `key=v1,v2,...` are the grid's axes (commas inside brackets belong to the value: `[3,4],[2,3,4]` is two
values); `key=value` with one value applies to every cell. The cells are the product of the axes, times
--seeds (train.seed = 0..N-1). A preset (assets/yaml/ablations/<name>.yml) names the base config, the axes
(`grid`; `linked` axes set several keys at once, e.g. distill.stages with its distill.weights) and fixed
overrides; axes given on the command line replace the preset's axis of the same key. When an axis sets
distill.stages and nothing sets distill.weights, each stage keeps the base config's weight for it (1.0 for a stage
the base does not distil).

Each cell is one main/train.py + one main/test.py in its own folder output/ablation_<name>/cells/<cell>/ (the
folder name ends with a hash of the cell's full settings, so changed settings never reuse a cell). Reference rows:
the baseline and the teacher, trained once with the grid's fixed overrides that are not edge.*/distill.*/mode
(reference/), or given with --baseline DIR / --teacher DIR. Students distil from the teacher and, with
distill.loss=none (edge only), start from its weights. Rerunning skips finished cells and continues interrupted
ones (train.py --continue). --jobs N runs N cells at once (each in a subprocess; its output in the cell's
run.log); --gpu ids are spread over the jobs. Outputs: table.md (mean ± std over seeds), results.csv (one row per
trained model), chart.png.
"""
import argparse
import csv
import hashlib
import io
import itertools
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import ROOT
from tool.runs.report import markdown_table
from tool.runs.stages import (METRIC_NAMES, METRICS, find_exp, fmt_time, is_tested, mean_std, override, rel,
                              result_path, run_script, test_stage, train_stage, trained_snapshot)
from tool.runs.state import RunState, check_run_folder

PRESETS = ROOT / 'assets' / 'yaml' / 'ablations'
STUDENT_KEYS = ('edge.', 'distill.', 'mode=')   # what references do not take from the grid


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--base', default='', help='base experiment YAML (e.g. assets/yaml/student.yml)')
    ap.add_argument('--preset', default='', help='a grid of assets/yaml/ablations/ (sefd_losses, sefd_stages)')
    ap.add_argument('--name', default='', help='output folder output/ablation_<name> (default: preset or axes)')
    ap.add_argument('--out', default='', help='output folder (instead of output/ablation_<name>)')
    ap.add_argument('--seeds', type=int, default=None, help='seeds per cell (train.seed 0..N-1); default 1 or the '
                                                            'preset\'s')
    ap.add_argument('--jobs', type=int, default=1, help='cells trained at once (subprocesses)')
    ap.add_argument('--gpu', default='', help="GPU ids spread over the jobs ('0,1' or '0-3'); empty: train.py's "
                                              "default (GPU 0 if any, else CPU)")
    ap.add_argument('--amp', action='store_true', help='train.py --amp')
    ap.add_argument('--teacher', default='', help='an existing teacher (experiment folder or checkpoint) instead '
                                                  'of training one')
    ap.add_argument('--baseline', default='', help='an existing baseline (experiment folder or checkpoint)')
    ap.add_argument('--teacher-cfg', default='', help='YAML of the teacher trained here (default '
                                                      'assets/yaml/teacher.yml or the preset\'s)')
    ap.add_argument('--baseline-cfg', default='', help='YAML of the reference baseline (default '
                                                       'assets/yaml/baseline.yml or the preset\'s)')
    ap.add_argument('--no-reference', action='store_true', help='no baseline/teacher rows (a teacher is still '
                                                                'trained when the cells need one)')
    ap.add_argument('--metric', default='pa_mpjpe', choices=METRICS, help='metric the chart sorts and highlights')
    ap.add_argument('--dry-run', action='store_true', help='list the cells and their commands; run nothing')
    ap.add_argument('axes', nargs='*', help='key=v1,v2,... (an axis) or key=value (every cell)')
    args = ap.parse_args(argv)
    if args.jobs < 1:
        raise UserError(f'--jobs must be >= 1, got {args.jobs}')
    if args.seeds is not None and args.seeds < 1:
        raise UserError(f'--seeds must be >= 1, got {args.seeds}')
    if not args.base and not args.preset:
        raise UserError('give the grid\'s base config (--base assets/yaml/student.yml) or a preset '
                        f'(--preset {"|".join(sorted(p.stem for p in PRESETS.glob("*.yml")))})')
    return args


# ---------------------------------------------------------------------------------------------- the grid
def split_values(text):
    """'a,b' -> ['a', 'b']; commas inside brackets, braces or quotes belong to the value: '[3,4],[2,3,4]'."""
    out, depth, quote, cur = [], 0, '', ''
    for ch in text:
        if quote:
            quote = '' if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '[{(':
            depth += 1
        elif ch in ']})':
            depth -= 1
        elif ch == ',' and depth == 0:
            out.append(cur.strip())
            cur = ''
            continue
        cur += ch
    if depth != 0 or quote:
        raise UserError(f'unbalanced brackets or quotes in {text!r}')
    out.append(cur.strip())
    return [v for v in out if v != '']


@dataclass
class Axis:
    name: str                      # the key (or a linked axis' name)
    values: list                   # one list of key=value overrides per value
    labels: list                   # a short label per value


def axis_from_arg(arg):
    if '=' not in arg:
        raise UserError(f'grid argument {arg!r} must look like key=v1,v2 (or key=value)')
    key, raw = arg.split('=', 1)
    key = key.strip()
    values = split_values(raw) or ['']
    return Axis(key, [[f'{key}={v}'] for v in values], values)


def axes_from_preset(preset, path):
    axes = []
    for key, values in (preset.get('grid') or {}).items():
        if not isinstance(values, list) or not values:
            raise UserError(f'{path}: grid.{key} must be a non-empty list of values')
        axes.append(Axis(key, [[override(key, v)] for v in values], [override(key, v).split('=', 1)[1]
                                                                    for v in values]))
    for name, values in (preset.get('linked') or {}).items():
        if not isinstance(values, list) or not all(isinstance(v, dict) and v for v in values):
            raise UserError(f'{path}: linked.{name} must be a list of mappings (key: value, set together)')
        axes.append(Axis(name, [[override(k, x) for k, x in v.items()] for v in values],
                         [override(*next(iter(v.items()))).split('=', 1)[1] for v in values]))
    for key, value in (preset.get('fixed') or {}).items():
        axes.append(Axis(key, [[override(key, value)]], [override(key, value).split('=', 1)[1]]))
    return axes


def keys_of(overrides):
    return [o.split('=', 1)[0] for o in overrides]


def slug(text):
    return re.sub(r'[^A-Za-z0-9_.+-]+', '.', text).strip('.') or 'x'


@dataclass
class Task:
    """One model to train and test: a grid cell (one seed) or a reference."""
    name: str                      # folder name
    kind: str                      # cell | teacher | baseline
    cfg: str                       # base YAML
    overrides: list                # key=value for train.py
    labels: dict = field(default_factory=dict)   # axis -> value label (cells)
    seed: int = 0
    epochs: int = 0
    needs_teacher: bool = False
    teacher_key: str = ''          # which reference teacher (hash of its settings)
    given: str = ''                # an existing experiment/checkpoint (references given on the command line)
    folder: Path = None


def settings_hash(cfg, overrides):
    h = hashlib.sha1(json.dumps([str(cfg), sorted(overrides)]).encode()).hexdigest()
    return h[:8]


class Grid:
    def __init__(self, args):
        self.args = args
        preset, ppath = {}, None
        if args.preset:
            ppath = PRESETS / f'{args.preset}.yml'
            if not ppath.is_file():
                have = ', '.join(sorted(p.stem for p in PRESETS.glob('*.yml')))
                raise UserError(f'preset {args.preset!r} not found: {ppath} (presets: {have})')
            from main.config import read_yaml
            preset = read_yaml(ppath)[0]
        self.preset = preset
        self.base = args.base or preset.get('base') or ''
        if not self.base:
            raise UserError(f'{ppath}: the preset names no base config (base: assets/yaml/<file>.yml)')
        if not (ROOT / self.base).is_file() and not Path(self.base).is_file():
            raise UserError(f'base config {self.base} not found')
        self.teacher_cfg = args.teacher_cfg or preset.get('teacher_cfg') or 'assets/yaml/teacher.yml'
        self.baseline_cfg = args.baseline_cfg or preset.get('baseline_cfg') or 'assets/yaml/baseline.yml'
        axes = axes_from_preset(preset, ppath) if preset else []
        for arg in args.axes:
            ax = axis_from_arg(arg)
            axes = [a for a in axes if a.name != ax.name and ax.name not in
                    {k for v in a.values for k in keys_of(v)}] + [ax]
        self.fixed = [o for a in axes if len(a.values) == 1 for o in a.values[0]]
        self.axes = [a for a in axes if len(a.values) > 1]
        self.seeds = args.seeds or int(preset.get('seeds', 1))
        default_name = args.preset or '_'.join([Path(self.base).stem] + [a.name.split('.')[-1] for a in self.axes])
        self.name = slug(args.name or default_name)
        self.out = Path(args.out).resolve() if args.out else ROOT / 'output' / f'ablation_{self.name}'
        check_run_folder(self.out, 'ablation.json', '--out' if args.out else 'the ablation folder')
        self.cells = self.make_cells()
        self.references = self.make_references()

    # ------------------------------------------------------------------------------------------ cells
    def base_weights(self):
        from main.config import load_config
        cfg = load_config(self.base, [o for o in self.fixed if not o.startswith('distill.')] +
                          ['distill.teacher_ckpt=pending'])
        return dict(zip(cfg.distill.stages, cfg.distill.weights))

    def with_weights(self, overrides):
        """distill.stages set without distill.weights: each stage keeps the base's weight (1.0 if it has none)."""
        keys = keys_of(overrides)
        if 'distill.stages' not in keys or 'distill.weights' in keys:
            return overrides
        raw = overrides[keys.index('distill.stages')].split('=', 1)[1]
        try:
            stages = yaml.safe_load(raw)
            stages = stages if isinstance(stages, list) else [stages]
            w = self._weights if hasattr(self, '_weights') else self.base_weights()
            self._weights = w
            return overrides + [override('distill.weights', [float(w.get(int(s), 1.0)) for s in stages])]
        except (yaml.YAMLError, TypeError, ValueError):
            return overrides   # train.py names the problem

    def resolve(self, cfg, overrides):
        """The config a task trains (validated now, so a typo stops the job before any training)."""
        from main.config import load_config
        return load_config(cfg, overrides + ['distill.teacher_ckpt=pending'] if 'distill.teacher_ckpt'
                           not in keys_of(overrides) else overrides)

    def make_cells(self):
        cells = []
        combos = list(itertools.product(*[list(zip(a.values, a.labels)) for a in self.axes])) or [()]
        for combo in combos:
            over = list(self.fixed)
            labels = {}
            for a, (vals, lab) in zip(self.axes, combo):
                over += vals
                labels[a.name] = lab
            over = self.with_weights(over)
            for seed in range(self.seeds):
                o = over + [f'train.seed={seed}']
                cfg = self.resolve(self.base, o)
                name = '_'.join([f'{k.split(".")[-1]}-{slug(v)}' for k, v in labels.items()] + [f's{seed}'])
                name = f'{name[:90]}__{settings_hash(self.base, o)}'
                needs = cfg.mode == 'student' and not self.base_teacher() and 'distill.teacher_ckpt' not in keys_of(o)
                t = Task(name, 'cell', self.base, o, labels, seed, cfg.train.end_epoch, needs,
                         folder=self.out / 'cells' / name)
                if needs:
                    t.teacher_key = settings_hash(self.teacher_cfg, self.shared(o))
                cells.append(t)
        return cells

    def base_teacher(self):
        from main.config import read_yaml
        return ((read_yaml(self.base)[0].get('distill') or {}).get('teacher_ckpt') or '').strip()

    @staticmethod
    def shared(overrides):
        """The overrides a reference model takes: all but edge.*, distill.*, mode and the seed."""
        return [o for o in overrides if not o.startswith(STUDENT_KEYS) and not o.startswith('train.seed=')]

    def make_references(self):
        refs = {}
        for kind, cfg_path, given in (('teacher', self.teacher_cfg, self.args.teacher),
                                      ('baseline', self.baseline_cfg, self.args.baseline)):
            wanted = not self.args.no_reference or (kind == 'teacher' and any(c.needs_teacher for c in self.cells))
            if not wanted:
                continue
            variants = {}
            for c in self.cells:
                o = self.shared(c.overrides) + ['train.seed=0']
                variants.setdefault(settings_hash(cfg_path, self.shared(c.overrides)), o)
            for key, o in variants.items():
                cfg = self.resolve(cfg_path, o)
                name = f'{kind}__{key}'
                refs[(kind, key)] = Task(name, kind, cfg_path, o, {}, 0, cfg.train.end_epoch, given=given,
                                         folder=self.out / 'reference' / name)
        for c in self.cells:
            if c.needs_teacher and ('teacher', c.teacher_key) not in refs:
                raise UserError('internal: no teacher for cell ' + c.name)
        return refs


# ---------------------------------------------------------------------------------------------- running
class Runner:
    def __init__(self, grid, args):
        self.grid, self.args = grid, args
        self.lock = threading.Lock()
        self.state_path = grid.out / 'ablation.json'
        self.state = RunState(self.state_path, 'tasks', dry_run=args.dry_run, extra=lambda: {
            'command': ' '.join(sys.argv), 'base': grid.base, 'axes': {a.name: a.labels for a in grid.axes},
            'fixed': grid.fixed})
        ids = self.gpu_ids(args.gpu)
        if not ids:
            self.slots = [''] * args.jobs
        elif args.jobs <= len(ids):    # the ids split among the jobs (a job with several GPUs trains with DDP)
            self.slots = [','.join(str(i) for i in ids[j::args.jobs]) for j in range(args.jobs)]
        else:                          # more jobs than GPUs: jobs share GPUs round-robin
            self.slots = [str(ids[j % len(ids)]) for j in range(args.jobs)]
        self.free = list(range(args.jobs))
        self.done_count, self.total = 0, 0
        self.t0 = time.time()

    @staticmethod
    def gpu_ids(spec):
        if not spec:
            return []
        from common.runtime import parse_gpus
        return parse_gpus(spec)

    def record(self, task, **info):
        self.state.record(task.name, **info)

    # ------------------------------------------------------------------------------------------ one task
    def exp_of(self, task):
        if task.given:
            return None
        return find_exp(task.folder)

    def is_done(self, task):
        if task.given:
            res = self.state.stages.get(task.name, {}).get('result')
            return bool(res) and (ROOT / res).is_file()
        return is_tested(self.exp_of(task), task.epochs)

    def teacher_ckpt(self, task):
        ref = self.grid.references[('teacher', task.teacher_key)]
        if ref.given:
            given = Path(ref.given)
            return str(given if given.is_absolute() else (ROOT / given).resolve())
        path = trained_snapshot(ref.folder, ref.epochs)
        if path is None:
            raise UserError(f'cell {task.name} needs its teacher, which is not trained ({ref.folder})')
        return rel(path)

    def run_task(self, task):
        """Train and test one task; a failure is recorded and reported at the end (the other cells go on)."""
        try:
            self._run_task(task)
            return True
        except UserError as e:
            self.record(task, failed=str(e))
            self.say(f'{task.kind} {task.name}: FAILED: {e}')
            return False

    def _run_task(self, task):
        slot = self.take_slot()
        try:
            gpu = self.slots[slot]
            parallel = self.args.jobs > 1
            log = task.folder / 'run.log' if parallel else None
            env = {}
            if parallel and not gpu:
                n = max(1, (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count())
                        // self.args.jobs)
                env = {'OMP_NUM_THREADS': str(n), 'MKL_NUM_THREADS': str(n)}
            flags = (['--gpu', gpu] if gpu else []) + (['--amp'] if self.args.amp else [])
            t0 = time.time()
            self.say(f'{task.kind} {task.name}: start{" on GPU " + gpu if gpu else ""}'
                     f'{" (output: " + rel(log) + ")" if log else ""}')
            if task.given:
                path = self.test_given(task, gpu, log, env)
                self.record(task, result=rel(path), exp_dir=task.given)
            else:
                over = list(task.overrides)
                if task.needs_teacher:
                    over.append(f'distill.teacher_ckpt={self.teacher_ckpt(task)}')
                argv = ['--cfg', task.cfg, '--exp_name', task.kind, f'output_dir={rel(task.folder)}'] + over
                task.folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(task.folder / 'cell.json', json.dumps(
                    {'cfg': task.cfg, 'overrides': over, 'labels': task.labels, 'seed': task.seed}, indent=1))
                exp = train_stage(task.folder, argv, task.epochs, flags, log, env, what=f'{task.kind} {task.name}',
                                  say=self.say)
                path = test_stage(exp, task.epochs, gpu, log, env, what=f'test of {task.kind} {task.name}')
                self.record(task, result=rel(path), exp_dir=rel(exp))
            self.record(task, seconds=round(time.time() - t0, 1))
            with self.lock:
                self.done_count += 1
            self.say(f'{task.kind} {task.name}: done in {fmt_time(time.time() - t0)} '
                     f'[{self.done_count}/{self.total}, {fmt_time(time.time() - self.t0)} elapsed]')
            self.write_outputs(final=False)
        finally:
            self.give_slot(slot)

    def test_given(self, task, gpu, log, env):
        """Test a reference given on the command line (on the grid's test set)."""
        src = Path(task.given)
        src = src if src.is_absolute() else ROOT / src
        if not src.exists():
            raise UserError(f'--{task.kind} {task.given} does not exist')
        data_keys = [o for o in self.grid.fixed if o.startswith(('data.test_set=', 'test.subset=', 'data.root=',
                                                                 'test.batch_size='))]
        before = {p: p.stat().st_mtime for p in self.result_files(src)}
        rc = run_script('main/test.py', ['--ckpt', str(src)] + data_keys + (['--gpu', gpu.split(',')[0]] if gpu
                                                                            else []), log, env)
        if rc != 0:
            raise UserError(f'test of the given {task.kind} {task.given} failed (main/test.py exited with code {rc})')
        new = [p for p in self.result_files(src) if before.get(p) != p.stat().st_mtime]
        if not new:
            raise UserError(f'test of the given {task.kind} {task.given}: no result file written')
        return max(new, key=lambda p: p.stat().st_mtime)

    @staticmethod
    def result_files(src):
        folder = src.parent.parent if src.is_file() and src.parent.name == 'checkpoint' else \
            src.parent if src.is_file() else src
        return list((folder / 'result').glob('metrics_*.json'))

    def take_slot(self):
        with self.lock:
            return self.free.pop(0)

    def give_slot(self, slot):
        with self.lock:
            self.free.append(slot)

    def say(self, text):
        with self.lock:
            print(text, flush=True)

    # ------------------------------------------------------------------------------------------ all tasks
    def run(self):
        grid = self.grid
        grid.out.mkdir(parents=True, exist_ok=True)
        self.state.save()
        refs = list(grid.references.values())
        teachers = [r for r in refs if r.kind == 'teacher']
        rest = [r for r in refs if r.kind != 'teacher'] + grid.cells
        todo = [t for t in teachers + rest if not self.is_done(t)]
        self.total = len(todo)
        skipped = len(teachers) + len(rest) - len(todo)
        print(f'ablation {grid.name}: {len(grid.cells)} cell(s) ({len(grid.axes)} axes x {grid.seeds} seed(s)) + '
              f'{len(refs)} reference(s); {skipped} done before (skipped), {len(todo)} to run; jobs {self.args.jobs}; '
              f'folder {grid.out}', flush=True)
        for t in teachers + rest:
            if t not in todo:
                self.say(f'{t.kind} {t.name}: done, skipped')
        failed = []
        try:
            for phase in ([t for t in teachers if t in todo], [t for t in rest if t in todo]):
                if not phase:
                    continue
                if self.args.jobs == 1:
                    ok = [self.run_task(t) for t in phase]
                else:
                    with ThreadPoolExecutor(self.args.jobs) as pool:
                        ok = [f.result() for f in [pool.submit(self.run_task, t) for t in phase]]
                failed += [t for t, good in zip(phase, ok) if not good]
        except KeyboardInterrupt as e:
            raise type(e)('during the grid; run the same command again: finished cells are kept, interrupted ones '
                          'continue') from None
        self.write_outputs(final=True)
        if failed:
            raise UserError(f'{len(failed)} of {len(todo)} model(s) failed ({", ".join(t.name for t in failed[:3])}'
                            f'{", ..." if len(failed) > 3 else ""}; their errors are above and in '
                            f'{rel(self.state_path)}); the others are in {rel(grid.out / "table.md")}; rerun the '
                            f'same command after fixing them')
        print(f'\nablation {grid.name} done: {rel(grid.out / "table.md")}, {rel(grid.out / "results.csv")}, '
              f'{rel(grid.out / "chart.png")}', flush=True)
        print((grid.out / 'table.md').read_text())
        return grid.out

    # ------------------------------------------------------------------------------------------ outputs
    def rows(self):
        """One dict per finished task: name, kind, seed, axis labels, metrics, paths."""
        out = []
        for t in list(self.grid.references.values()) + self.grid.cells:
            rec = self.state.stages.get(t.name, {})
            path = rec.get('result')
            if not path:
                if t.given or not is_tested(self.exp_of(t), t.epochs):
                    continue
                path = rel(result_path(self.exp_of(t), t.epochs))
            p = Path(path) if Path(path).is_absolute() else ROOT / path
            if not p.is_file():
                continue
            res = json.loads(p.read_text())
            row = {'name': t.name, 'kind': t.kind, 'seed': t.seed, **{a.name: t.labels.get(a.name, '')
                                                                        for a in self.grid.axes}}
            row.update({k: res['summary'].get(k, float('nan')) for k in METRICS})
            row.update({'samples': res.get('count', ''), 'exp_dir': rec.get('exp_dir', ''), 'result': path})
            out.append(row)
        return out

    def aggregate(self, rows):
        """[(label, kind, {metric: (mean, std, n)})]: references first, then the cells in grid order."""
        groups = {}
        order = []
        for r in rows:
            if r['kind'] == 'cell':
                label = ', '.join(f'{a.name}={r[a.name]}' for a in self.grid.axes) or 'base'
            else:
                label = f'{r["kind"]} (reference)'
            if label not in groups:
                groups[label] = (r['kind'], [])
                order.append(label)
            groups[label][1].append(r)
        out = []
        for label in sorted(order, key=lambda lb: (groups[lb][0] == 'cell', order.index(lb))):
            kind, rs = groups[label]
            out.append((label, kind, {k: (*mean_std([x[k] for x in rs]), len(rs)) for k in METRICS}))
        return out

    def write_outputs(self, final=True):
        with self.lock:
            rows = self.rows()
            grid = self.grid
            cols = ['name', 'kind', 'seed'] + [a.name for a in grid.axes] + list(METRICS) + \
                ['samples', 'exp_dir', 'result']
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow(r)
            atomic_write_text(grid.out / 'results.csv', buf.getvalue())
            agg = self.aggregate(rows)
            atomic_write_text(grid.out / 'table.md', self.table(agg, len(rows)))
            if final and agg:
                self.chart(agg, grid.out / 'chart.png')

    def table(self, agg, n_rows):
        grid = self.grid
        head = ['setting', 'seeds'] + [f'{METRIC_NAMES[k]} (mm)' for k in METRICS]
        cells = []
        for label, kind, stats in agg:
            n = stats[METRICS[0]][2]
            vals = [f'{m:.2f} ± {s:.2f}' if n > 1 else f'{m:.2f}' for m, s, _ in (stats[k] for k in METRICS)]
            cells.append(['**' + label + '**' if kind != 'cell' else label, str(n)] + vals)
        lines = [f'# Ablation {grid.name}', '',
                 f'Base `{grid.base}`; fixed: `{" ".join(grid.fixed) or "none"}`; axes: '
                 + '; '.join(f'`{a.name}` = {", ".join(a.labels)}' for a in grid.axes) + f'; {grid.seeds} seed(s) '
                 'per cell (mean ± sample std over seeds). Lower is better.', '', markdown_table(head, cells)]
        missing = len(grid.cells) + len(grid.references) - n_rows
        if missing > 0:
            lines += ['', f'{missing} model(s) not finished yet (rerun the same command).']
        return '\n'.join(lines) + '\n'

    def chart(self, agg, path):
        from tool.runs import charts
        cells = [(lb, st) for lb, kind, st in agg if kind == 'cell']
        refs = {lb.replace(' (reference)', ''): st for lb, kind, st in agg if kind != 'cell'}
        m = self.args.metric
        others = [k for k in ('mpjpe', 'pa_mpjpe') if k != m][:1]
        spread = any(st[m][2] > 1 for _, st in cells)
        panels = {}
        for k in [m] + others:
            panels[f'{METRIC_NAMES[k]} (mm)'] = (
                [st[k][0] for _, st in cells], [st[k][1] for _, st in cells] if spread else None,
                {name: st[k][0] for name, st in refs.items()})
        best = min(cells, key=lambda c: c[1][m][0])[0] if cells else None
        # axis keys shortened to their last part where that stays unambiguous
        short = {a.name: a.name.split('.')[-1] for a in self.grid.axes}
        if len(set(short.values())) < len(short):
            short = {a.name: a.name for a in self.grid.axes}
        labels = [lb for lb, _ in cells]
        for full, sh in short.items():
            labels = [lb.replace(f'{full}=', f'{sh}=') for lb in labels]
        best = labels[[lb for lb, _ in cells].index(best)] if best else None
        charts.hbar_chart(labels, panels, path, highlight=(best,),
                        title=f'ablation {self.grid.name} (mean ± std over {self.grid.seeds} seed(s); '
                              f'dashed: references)')

    def dry_run(self):
        grid = self.grid
        print(f'ablation {grid.name}: base {grid.base}; folder {grid.out}')
        print(f'fixed: {" ".join(grid.fixed) or "none"}')
        for t in list(grid.references.values()) + grid.cells:
            state = 'done' if self.is_done(t) else 'to run'
            teacher = ' distill.teacher_ckpt=<teacher>' if t.needs_teacher else ''
            src = f'given {t.given}' if t.given else f'python main/train.py --cfg {t.cfg} ' + \
                ' '.join(o for o in t.overrides if o not in grid.fixed) + teacher
            print(f'  [{state}] {t.kind} {t.name}: {src} ({t.epochs} epochs)')
        return grid.out


def main(argv=None):
    args = parse_args(argv)
    grid = Grid(args)
    runner = Runner(grid, args)
    return runner.dry_run() if args.dry_run else runner.run()


if __name__ == '__main__':
    run_cli(main)
