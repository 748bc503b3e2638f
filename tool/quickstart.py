"""The whole method in one command: data, teacher, distilled student, edge-only student, baseline, tests, report.

    python tool/quickstart.py                      # --scale small: synthetic crowds, ~15 min on 2 CPU cores
    python tool/quickstart.py --scale tiny         # every stage in about a minute (a smoke run)
    python tool/quickstart.py --scale medium --seeds 2  # more people and epochs, two seeds: ~90 min on 2 CPU cores
    python tool/quickstart.py --scale full --gpu 0 # the real datasets, ResNet-50 at 256 px (when present)
    python tool/quickstart.py --seeds 3            # 3 seeds per model: mean and spread in the report
    python tool/quickstart.py --dry-run            # the plan and the commands, nothing run

Stages (each one a real command line: tool/make_synthetic.py, main/train.py, main/test.py, so the report's numbers
are the result files' numbers):
  data        the synthetic crowd set under <run>/data/Synthetic, made when missing (small, tiny)
  teacher     RGB + SMPL overlap edge, from scratch
  student     SEFD: RGB + Canny, log_softmax_l1 on backbone stages 3-4, starting from the teacher's weights
  edge_only   the same student without the distillation loss, also from the teacher's weights
  baseline    3DCrowdNet, from scratch, as many epochs as teacher + student
  test_*      each model on the test split (main/test.py)
  report      <run>/report.md with the metrics table and figures (montage.png, curves.png, occlusion.png)
The settings of each scale are one file, assets/yaml/quickstart/<scale>.yml. The run folder (default
output/quickstart_<scale>) holds state.json (finished stages, their experiment folders and times) and runs/<stage>/
(one experiment folder each). Running the command again skips finished stages and continues an interrupted
training with `main/train.py --continue --exp_dir`; changed settings are refused (--fresh starts over).
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import ROOT
from tool.runs.stages import (METRIC_NAMES, METRICS, find_exp, fmt_time, fmt_value, is_tested, machine, mean_std,
                              override, rel, result_path, run_script, test_stage, train_stage, trained_snapshot)
from tool.runs.state import RunState, read_state

PRESETS = ROOT / 'assets' / 'yaml' / 'quickstart'
SCALES = ('tiny', 'small', 'medium', 'full')
TRAIN_ORDER = ('teacher', 'student', 'edge_only', 'baseline')   # students need the teacher
REPORT_ORDER = ('baseline', 'edge_only', 'student', 'teacher')
NAMES = {'baseline': 'baseline', 'edge_only': 'edge only', 'student': 'SEFD student', 'teacher': 'teacher'}
LONG_NAMES = {'baseline': '3DCrowdNet baseline (RGB + 2D pose)',
              'edge_only': 'edge-only student (RGB + Canny, no distillation)',
              'student': 'SEFD student (RGB + Canny, distilled from the teacher)',
              'teacher': 'teacher (RGB + SMPL overlap edge from the GT: an oracle)'}
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
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise UserError(f'--out {self.run_dir} is a file; give a folder for the run')
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
        return stages + [('report', 'report', None, None)]

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
        if kind == 'test':
            return 5.0 + 0.02 * self.train_samples() / 8
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
            except KeyboardInterrupt:
                raise UserError(f'interrupted during stage {name}; run the same command again to continue from '
                                f'there') from None
            seconds = time.time() - t0
            self.measured.append((self.units(kind, model), seconds))
            self.state.record(name, done=True, seconds=round(seconds, 1))
            ran = True
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
        self.command('tool/make_synthetic.py', argv, name)
        # the teacher's SMPL overlap edges, rendered once per image (the presets read them with
        # edge.overlap_source: file) instead of once per training crop in the loader worker: measured, the rendering
        # in the worker held the teacher's stage at half its bare step's rate on 2 cores (tool/bench_pipeline.py)
        if (self.preset.get('common') or {}).get('edge.overlap_source') == 'file':
            self.command('tool/make_overlap_edges.py', ['--dataset', 'Synthetic', '--root',
                                                        rel(self.data_root / 'Synthetic')], name)

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

    # ---- report
    def run_report(self, name, model, seed):
        self.state.stages.pop('report', None)
        write_report(self)
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
            elif kind == 'data':
                print(f'  {name}: python tool/make_synthetic.py --out {rel(self.data_root / "Synthetic")} '
                      f'--num-images {self.synthetic["num_images"]}')
            else:
                print(f'  {name}: {rel(self.run_dir / "report.md")}')
        return self.run_dir


def default_student_checkpoint():
    """The experiment folder of the distilled student (seed 0) of the newest finished quickstart run of any scale
    (the demo's default model)."""
    found = []
    for scale in SCALES:
        path = ROOT / 'output' / f'quickstart_{scale}' / 'state.json'
        try:
            rec = (read_state(path).get('stages') or {}).get('student_s0', {})
        except UserError:
            continue
        exp = rec.get('exp_dir')
        if rec.get('done') and exp:
            exp = Path(exp) if Path(exp).is_absolute() else ROOT / exp
            if (exp / 'checkpoint').is_dir():
                found.append((path.stat().st_mtime, exp))
    if not found:
        raise UserError("no checkpoint: run python tool/quickstart.py first (its distilled student is the demo's "
                        "default) or pass --ckpt FILE")
    return max(found)[1]


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
                raise UserError(f'--scale full needs the real datasets (README, Data): {name} {split}: {e}; '
                                f'without them, run --scale small (synthetic crowds)') from None


# ---------------------------------------------------------------------------------------------- results
def load_results(qs):
    """{model: [per-seed result json dict]} and {model: [per-seed npz path]}."""
    results, npz = {}, {}
    for model in REPORT_ORDER:
        for seed in qs.seeds:
            path = qs.result_json(model, seed)
            if path is None:
                raise UserError(f'no test result for {model} seed {seed} in {qs.stage_dir(model, seed)}; rerun the '
                                f'quickstart')
            results.setdefault(model, []).append(json.loads(path.read_text()))
            npz.setdefault(model, []).append(path.with_suffix('.npz'))
    return results, npz


def table_rows(results):
    """[(subset label, {model: {metric: [values over seeds]}, 'count'})] : all, occlusion levels, people."""
    first = results[REPORT_ORDER[0]][0]
    rows = [('all', lambda r: r['summary'], first['count'])]
    for group, title in (('occlusion', 'occlusion'), ('people', 'people')):
        for lab, vals in first.get('groups', {}).get(group, {}).items():
            rows.append((f'{title} {lab}', lambda r, g=group, lb=lab: r['groups'][g][lb], vals['count']))
    out = []
    for label, get, count in rows:
        per_model = {m: {k: [get(r)[k] for r in results[m]] for k in METRICS} for m in REPORT_ORDER}
        out.append((label, count, per_model))
    return out


REFERENCE = 'constant mean mesh (reference)'


def metrics_table(rows, markdown=True, reference=None):
    """The metrics table; reference ({metric: value}: one constant mesh) is a row under the models on all samples."""
    head = ['subset', 'samples', 'model'] + [f'{METRIC_NAMES[k]} (mm)' for k in METRICS]
    lines = []
    for r, (label, count, per_model) in enumerate(rows):
        for i, m in enumerate(REPORT_ORDER):
            lines.append([label if i == 0 else '', str(count) if i == 0 else '', NAMES[m]] +
                         [fmt_value(per_model[m][k]) for k in METRICS])
        if r == 0 and reference:
            lines.append(['', '', REFERENCE] + [fmt_value([reference[k]]) for k in METRICS])
    if markdown:
        out = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---'] * 3 + ['---:'] * len(METRICS)) + '|']
        return '\n'.join(out + ['| ' + ' | '.join(r) + ' |' for r in lines])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
    fmt = lambda r: '  '.join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa
    sep = [fmt(head), '-' * len(fmt(head))]
    body, prev = [], None
    for r in lines:
        if r[0] and prev is not None:
            body.append('')
        body.append(fmt(r))
        prev = r
    return '\n'.join(sep + body)


def paired_difference(npz_a, npz_b, metric='pa_mpjpe'):
    """Mean and standard error of the per-sample difference a - b (same test samples, matched by ann_id)."""
    da, db = np.load(npz_a), np.load(npz_b)
    ia = {int(k): i for i, k in enumerate(da['ann_id'])}
    pairs = [(da[metric][ia[int(k)]], db[metric][j]) for j, k in enumerate(db['ann_id']) if int(k) in ia]
    if not pairs:
        return float('nan'), float('nan'), 0
    d = np.asarray([a - b for a, b in pairs], float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float('nan'), len(d)


# ---------------------------------------------------------------------------------------------- figures
def exp_config(qs, model, seed=0):
    from main.config import load_saved_config
    exp = qs.find_exp(qs.stage_dir(model, seed))
    return load_saved_config(exp / 'config.yaml'), exp


def hard_samples(dataset, k, ann_ids):
    """Indices of the k test records with the highest recorded occlusion (most people when none is recorded)."""
    recs = [(i, r) for i, r in enumerate(dataset.records) if r.ann_id in ann_ids]
    occ = np.asarray([r.occlusion for _, r in recs], float)
    people = np.asarray([len(r.scene.people) if r.scene else 1 for _, r in recs], float)
    key = np.where(np.isfinite(occ), occ, -1.0) * 100 + people
    order = np.argsort(-key, kind='stable')
    return [recs[j][0] for j in order[:k]]


def draw_montage(qs, npz, path):
    import torch

    from common import vis
    from common.body.smpl import body_model
    from common.edges.base import build_edge
    from data.dataset import get_dataset_class
    tcfg, _ = exp_config(qs, 'teacher')
    scfg, _ = exp_config(qs, 'student')
    tcfg.data.num_workers = 0
    dataset = get_dataset_class(tcfg.data.test_set)(tcfg, 'test')  # crops + the teacher's overlap edge
    preds = {m: np.load(npz[m][0]) for m in REPORT_ORDER}
    common_ids = set.intersection(*(set(int(a) for a in p['ann_id']) for p in preds.values()))
    idx = hard_samples(dataset, int(qs.preset['report'].get('crops', 4)), common_ids)
    body = body_model(tcfg.model)
    edge = build_edge(scfg.edge)
    S = tcfg.model.input_size
    rows, titles = [], []
    for i in idx:
        rec = dataset.records[i]
        inputs, targets, meta = dataset.get_sample(rec, np.random.default_rng(0))
        crop = vis.to_uint8_image(inputs['img'])
        canny = edge(inputs['img'][None])[0]
        row = [crop, vis.edge_image(canny), vis.edge_image(inputs['edge'])]
        for m in REPORT_ORDER:
            p = preds[m]
            j = int(np.nonzero(p['ann_id'] == rec.ann_id)[0][0])
            with torch.no_grad():
                verts, _ = body(*(torch.as_tensor(p[k][j:j + 1], dtype=torch.float32)
                                  for k in ('pose', 'shape', 'cam_trans')))
            row.append(vis.render_meshes(crop, [verts[0]], body.faces, tcfg.model.focal, (S / 2, S / 2),
                                         colors=[vis.PALETTE[REPORT_ORDER.index(m)]])[0])
        # the GT mesh, from the image camera into the crop's
        a = meta['img2bb_trans'].numpy()
        f, c = np.asarray(rec.person.focal, float), np.asarray(rec.person.princpt, float)
        focal = (f[0] * a[0, 0], f[1] * a[1, 1])
        princpt = tuple(a[:, :2] @ c + a[:, 2])
        row.append(vis.render_meshes(crop, [targets['mesh_cam']], body.faces, focal, princpt,
                                     colors=[(200, 200, 200)])[0])
        rows.append(row)
        occ = f'{rec.occlusion:.0%}' if np.isfinite(rec.occlusion) else 'n/a'
        titles.append(f'ann {rec.ann_id}\nhidden {occ}\n{len(rec.scene.people) if rec.scene else 1} people')
    cols = ['image', 'Canny\n(student input)', 'SMPL overlap\n(teacher input)', *(NAMES[m] for m in REPORT_ORDER),
            'ground truth']
    img = vis.montage(rows, cols, titles, tile=int(qs.preset['report'].get('tile', 128)),
                      title=f'{len(rows)} most occluded test crops (seed 0 models)')
    vis.save_image(path, img)
    return [dataset.records[i].ann_id for i in idx]


def read_scalars(tb_dir):
    """{tag: (steps, values)} of a TensorBoard folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb_dir), size_guidance={'scalars': 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get('scalars', []):
        ev = acc.Scalars(tag)
        out[tag] = (np.asarray([e.step for e in ev]), np.asarray([e.value for e in ev]))
    return out


def draw_curves(qs, path):
    from common import vis
    from main.model import TASK_TERMS
    task, distill, val = {}, {}, {}
    t_exp = qs.find_exp(qs.stage_dir('teacher', 0))
    t_steps = int(max(read_scalars(t_exp / 'tb').get('train/total', ([0], None))[0], default=0))
    for m in TRAIN_ORDER:
        exp = qs.find_exp(qs.stage_dir(m, 0))
        sc = read_scalars(exp / 'tb')
        shift = t_steps if m in ('student', 'edge_only') else 0
        terms = [sc[f'train/{t}'] for t in TASK_TERMS if f'train/{t}' in sc]
        if terms:
            steps = terms[0][0]
            task[NAMES[m]] = (steps + shift, np.sum([v for _, v in terms if len(v) == len(steps)], axis=0))
        dterms = [v for k, v in sc.items() if k.startswith('train/distill_')]
        if dterms:
            distill[NAMES[m]] = (dterms[0][0] + shift, np.sum([v for _, v in dterms], axis=0))
        if 'val/pa_mpjpe' in sc:
            val[NAMES[m]] = (sc['val/pa_mpjpe'][0] + shift, sc['val/pa_mpjpe'][1])
    colors = {NAMES[m]: REPORT_ORDER.index(m) for m in REPORT_ORDER}
    panels = {'task loss (sum of the 3DCrowdNet terms)': task, 'distillation loss': distill,
              'validation PA-MPJPE (mm)': val}
    vis.plot_curves(panels, path, xlabel='iteration (students: counted after the teacher\'s)', colors=colors,
                    title='training curves (seed 0)')


def draw_occlusion(rows, path, seeds):
    from common import vis
    sel = [(label, n, per_model) for label, n, per_model in rows if label == 'all' or label.startswith('occlusion')]
    groups = [f'{label.replace("occlusion ", "hidden ")}\n({n} people)' for label, n, _ in sel]
    panels = {}
    for k in ('mpjpe', 'pa_mpjpe'):
        panels[f'{METRIC_NAMES[k]} (mm)'] = {
            NAMES[m]: ([mean_std(pm[m][k])[0] for _, _, pm in sel],
                       [mean_std(pm[m][k])[1] for _, _, pm in sel] if seeds > 1 else None)
            for m in REPORT_ORDER}
    colors = {NAMES[m]: REPORT_ORDER.index(m) for m in REPORT_ORDER}
    vis.grouped_bar_chart(groups, None, path, panels=panels, colors=colors,
                          title='error by occlusion level (fraction of the person hidden by others)')


# ---------------------------------------------------------------------------------------------- report
def constant_mesh_reference(qs):
    """{metric: mm} of the mean training mesh predicted for every test person (main/tester.py), or None."""
    from data.dataset import get_dataset_class
    from main.tester import mean_mesh_reference
    cfg, _ = exp_config(qs, 'baseline')
    try:
        return mean_mesh_reference(cfg, get_dataset_class(cfg.data.test_set)(cfg, 'test'))
    except UserError:   # the test set has no training split to take a mean from
        return None


def write_report(qs):
    from common.body.smpl import find_official_model
    results, npz = load_results(qs)
    rows = table_rows(results)
    run = qs.run_dir
    reference = constant_mesh_reference(qs)
    ann_ids = draw_montage(qs, npz, run / 'montage.png')
    draw_curves(qs, run / 'curves.png')
    draw_occlusion(rows, run / 'occlusion.png', len(qs.seeds))

    seeds = len(qs.seeds)
    st = qs.state.stages
    ep = {m: qs.epochs(m) for m in TRAIN_ORDER}
    n_train = qs.train_samples() if qs.synthetic else None
    procedural = find_official_model(None, 'neutral') is None
    mach = qs.state.data.get('machine') or machine()
    times = {m: [st.get(f'{m}_s{s}', {}).get('seconds', 0.0) for s in qs.seeds] for m in TRAIN_ORDER}
    total = sum(s.get('seconds', 0.0) for k, s in st.items() if k != 'report')
    spec = qs.preset.get('common') or {}

    # the plain reading of the numbers, whatever the ordering
    all_row = rows[0][2]
    pa = {m: mean_std(all_row[m]['pa_mpjpe'])[0] for m in REPORT_ORDER}
    ranking = ' < '.join(f'{NAMES[m]} {pa[m]:.1f}' for m in sorted(REPORT_ORDER, key=pa.get))
    d, se, n = paired_difference(npz['student'][0], npz['edge_only'][0])
    d2, se2, _ = paired_difference(npz['student'][0], npz['baseline'][0])
    # between seeds training varies more than the per-sample error bar says: the per-seed differences
    per_seed = [paired_difference(a, b)[0] for a, b in zip(npz['student'], npz['edge_only'])]
    seeds_line = (f' Per seed: {", ".join(f"{x:+.2f}" for x in per_seed)} mm (mean {np.mean(per_seed):+.2f} ± '
                  f'{np.std(per_seed, ddof=1):.2f}, sample std over seeds).') if len(per_seed) > 1 else ''

    lines = [f'# Quickstart report: scale {qs.args.scale}', '',
             f'{qs.preset.get("description", "")}. Settings: `{rel(qs.preset_path)}`; {seeds} seed(s) per model'
             f'{" (mean ± sample std over seeds)" if seeds > 1 else ""}; test set: {qs.test_set()} test split '
             f'({rows[0][1]} people).', '']
    if procedural:
        lines += ['**Body model: the procedural stand-in** (no official SMPL files): the numbers are not comparable '
                  'to published ones.', '']
    lines += ['## Metrics (mm, lower is better)', '', metrics_table(rows, reference=reference), '',
              f'PA-MPJPE on all samples, best first: {ranking}.',
              f'Distillation (SEFD student − edge-only student, same test samples, seed 0): PA-MPJPE {d:+.2f} mm '
              f'± {se:.2f} (standard error of the per-sample differences, {n} samples); SEFD student − baseline: '
              f'{d2:+.2f} ± {se2:.2f} mm. A difference within about two standard errors is not a finding.'
              f'{seeds_line}', '',
              '## What each model saw (fairness)', '',
              '| model | starts from | epochs of its own | epochs in total | input at test time |',
              '|---|---|---:|---:|---|',
              f'| {NAMES["baseline"]} | scratch | {ep["baseline"]} | {ep["baseline"]} | RGB + 2D pose |',
              f'| {NAMES["teacher"]} | scratch | {ep["teacher"]} | {ep["teacher"]} | RGB + 2D pose + SMPL overlap '
              f'edge rendered from the GT (an oracle) |',
              f'| {NAMES["edge_only"]} | the teacher | {ep["edge_only"]} | {ep["teacher"] + ep["edge_only"]} | '
              f'RGB + 2D pose + Canny |',
              f'| {NAMES["student"]} | the teacher | {ep["student"]} | {ep["teacher"] + ep["student"]} | '
              f'RGB + 2D pose + Canny |', '',
              'Both students start from the weights of the teacher of their seed and train the same epochs with the '
              'same settings; only the distilled one adds the distillation loss (log_softmax_l1 on backbone stages '
              '3 and 4, the frozen teacher seeing the SMPL overlap edge): the edge-only row isolates the effect of '
              'the distillation loss. The baseline and the teacher train from scratch (no pretrained backbone on a '
              'fresh machine). The teacher sees the ground-truth overlap edge at test time too: it is an upper bound, '
              'not a usable model.', '']
    if n_train is not None:
        n_img = len(json.loads((qs.data_root / 'Synthetic' / 'data' / '3DPW_latest_train.json').read_text())['images'])
        lines += [f'Training data: {n_train} people in {n_img} synthetic '
                  f'images (`{rel(qs.data_root / "Synthetic")}`), batch {spec.get("train.batch_size", 64)}, '
                  f'{spec.get("model.backbone", "resnet50")} at {spec.get("model.input_size", 256)} px.', '']
    lines += ['## Figures', '',
              f'Qualitative: the most occluded test crops (annotation ids {", ".join(map(str, ann_ids))}); the '
              f'student\'s Canny input, the SMPL overlap edge (the teacher\'s input), each model\'s mesh, the GT.', '',
              '![montage](montage.png)', '', '![training curves](curves.png)', '',
              '![error by occlusion level](occlusion.png)', '',
              '## Machine and time', '',
              f'{mach["cpu"]}, {mach["cores"]} cores{", GPU " + mach["gpu"] if mach.get("gpu") else ""}; torch '
              f'{mach["torch"]}, Python {mach["python"]}; load average at the start {mach.get("load")}.', '',
              '| stage | minutes |', '|---|---:|']
    for name, rec in st.items():
        if name != 'report' and 'seconds' in rec:
            lines.append(f'| {name} | {rec["seconds"] / 60:.1f} |')
    lines += [f'| **total** | **{total / 60:.1f}** |', '',
              'Experiment folders (checkpoints, logs, TensorBoard, result files):', '']
    for m in REPORT_ORDER:
        for s in qs.seeds:
            lines.append(f'- {NAMES[m]}, seed {s}: `{st.get(f"{m}_s{s}", {}).get("exp_dir", "?")}` '
                         f'(result `{st.get(f"test_{m}_s{s}", {}).get("result", "?")}`)')
    atomic_write_text(run / 'report.md', '\n'.join(lines) + '\n')
    summary = {'scale': qs.args.scale, 'seeds': seeds, 'test_set': qs.test_set(),
               'rows': [{'subset': label, 'samples': count, 'models': {
                   m: {k: {'values': pm[m][k], 'mean': mean_std(pm[m][k])[0], 'std': mean_std(pm[m][k])[1]}
                       for k in METRICS} for m in REPORT_ORDER}} for label, count, pm in rows],
               'epochs': ep, 'train_minutes': {m: [t / 60 for t in times[m]] for m in TRAIN_ORDER},
               'total_minutes': total / 60, 'machine': mach, 'procedural_body_model': procedural,
               'constant_mean_mesh': reference}
    atomic_write_text(run / 'results.json', json.dumps(summary, indent=1))
    print('\n' + metrics_table(rows, markdown=False, reference=reference) + '\n')
    print(f'PA-MPJPE, best first: {ranking}; distillation effect (student - edge only, seed 0): {d:+.2f} ± {se:.2f} '
          f'mm.{seeds_line}')
    print(f'report: {run / "report.md"} (figures: montage.png, curves.png, occlusion.png)')


def main(argv=None):
    args = parse_args(argv)
    return Quickstart(args).run()


def cli():
    """The console script sefd-quickstart (pyproject.toml): main() with one-line errors."""
    run_cli(main)


if __name__ == '__main__':
    cli()
