"""How fast candidate settings learn, and whether the models they train use their image and edge map, side by side.

    python tool/benchmarks/bench_learning.py                          # the CANDIDATES below, one after the other
    python tool/benchmarks/bench_learning.py --candidates default,r18_scratch --epochs 4
    python tool/benchmarks/bench_learning.py --data output/quickstart_small/data   # an existing synthetic set
                                                                                   # (with edge files)
    python tool/benchmarks/bench_learning.py --smoke                  # two tiny candidates, to check the tool itself

Each candidate trains (main/train.py, one snapshot per epoch, no validation) on one synthetic set (made under
output/bench_learning/data when missing, with the teacher's overlap-edge files); the wall time of each snapshot is
its file time minus the experiment's start (loading and checkpoint writing included, testing not). Then main/test.py
tests every snapshot on the test split, and tool/experiments/probe_inputs.py probes the last one (images swapped between
people, edge maps zeroed). Output: the curves (assets/learning_speed.png, or --plot), a markdown table
(output/bench_learning/table.md and the terminal), and results.json. Candidates run one after the other in one
invocation so that they share the machine's conditions; on a shared machine, rerun and compare. Rerunning skips
finished trainings, tests and probes.
The candidates: the default, the default with one of its choices undone (docs: what limits learning), teachers for
the oracle comparison, and the former from-scratch ResNet-18 defaults.
"""
import argparse
import json
import time
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import ROOT
from tool.benchmarks.timing import print_machine
from tool.runs.stages import fmt_time, machine, override, rel, run_script, train_stage

# What every candidate shares (the quickstart's synthetic setting); a candidate's overrides come on top.
COMMON = {'data.train_sets_3d': ['Synthetic'], 'data.train_sets_2d': [], 'data.test_set': 'Synthetic',
          'data.num_workers': 1, 'edge.overlap_source': 'file', 'train.val_every': 0, 'train.vis_every': 0,
          'train.ckpt_every': 0, 'train.print_freq': 10, 'model.input_size': 128, 'train.batch_size': 16,
          'train.lr': 1e-3, 'train.lr_backbone': 1e-4, 'train.lr_dec_epochs': [100]}
BASELINE, TEACHER = 'assets/yaml/baseline.yml', 'assets/yaml/teacher.yml'
# The default: EfficientNet-Lite0 from its ImageNet weights
LITE = {'model.backbone': 'efficientnet_lite0', 'model.pretrained': 'imagenet'}
# The former default: ResNet-18 from scratch, pose fused as published, the image gate closed at the start
R18 = {'model.backbone': 'resnet18', 'model.pretrained': '', 'model.pose2feat': 'published',
       'model.image_gate_init': 0.0}
PUBLISHED = {'data.input_pose': 'published', 'model.pose_to_head': False, 'model.camera': 'published',
             'train.loss_weights.smpl_root': 1.0, 'train.loss_weights.cam_prior': 0.0}
# name -> (description, experiment file, overrides)
CANDIDATES = {
    'default': ('EfficientNet-Lite0, ImageNet weights', BASELINE, LITE),
    'lite0_scratch': ('EfficientNet-Lite0 from scratch', BASELINE, {**LITE, 'model.pretrained': ''}),
    'lite0_fusion_published': ('pose heatmaps fused as published (conv-BN-ReLU replaces the stem feature)', BASELINE,
                               {**LITE, 'model.pose2feat': 'published'}),
    'lite0_gate_open': ('image gate open at the start', BASELINE, {**LITE, 'model.image_gate_init': 1.0}),
    'lite0_backbone_lr_3e-4': ('backbone at lr 3e-4', BASELINE, {**LITE, 'train.lr_backbone': 3e-4}),
    'lite0_gate_open_lr_1e-3': ('image gate open, backbone at lr 1e-3 (as the heads)', BASELINE,
                                {**LITE, 'model.image_gate_init': 1.0, 'train.lr_backbone': 1e-3}),
    'teacher_gate_open': ('teacher, image gate open at the start', TEACHER, {**LITE, 'model.image_gate_init': 1.0}),
    'teacher_gate_open_lr_1e-3': ('teacher, image gate open, backbone at lr 1e-3', TEACHER,
                                  {**LITE, 'model.image_gate_init': 1.0, 'train.lr_backbone': 1e-3}),
    'lite0_no_pose_in_head': ('no input pose in the head (model.pose_to_head=false)', BASELINE,
                              {**LITE, 'model.pose_to_head': False}),
    'lite0_head_pose_dropout': ('image gate open, the head without the input pose in half of the training samples',
                                BASELINE, {**LITE, 'model.image_gate_init': 1.0, 'model.head_pose_dropout': 0.5}),
    'teacher': ('teacher (RGB + SMPL overlap edge), EfficientNet-Lite0, ImageNet weights', TEACHER, LITE),
    'teacher_edge_published': ('teacher, edge channel started as published (N(0, 1e-3))', TEACHER,
                               {**LITE, 'model.edge_init': 'published'}),
    'r18_scratch': ('the former default: ResNet-18 from scratch', BASELINE, R18),
    'r18_published': ('ResNet-18 from scratch, all as published (3DCrowdNet)', BASELINE, {**R18, **PUBLISHED}),
}
SMOKE = {
    'smoke_a': ('ResNet-18, 64 px, 2 iterations per epoch', BASELINE,
                {'model.backbone': 'resnet18', 'model.input_size': 64, 'model.procedural_vertices': 800,
                 'train.batch_size': 2, 'train.max_iters': 2, 'data.num_workers': 0, 'train.print_freq': 1}),
    'smoke_b': ('ResNet-18, 64 px, lr 1e-4', BASELINE,
                {'model.backbone': 'resnet18', 'model.input_size': 64, 'model.procedural_vertices': 800,
                 'train.batch_size': 2, 'train.max_iters': 2, 'data.num_workers': 0, 'train.print_freq': 1,
                 'train.lr': 1e-4}),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--candidates', default='', help=f'comma-separated names (default all: {", ".join(CANDIDATES)})')
    ap.add_argument('--epochs', type=int, default=2, help='epochs per candidate (one test point per epoch)')
    ap.add_argument('--num-images', type=int, default=600, help='synthetic images (made once, shared)')
    ap.add_argument('--data', default='', help='an existing data root holding Synthetic/ (with its overlap-edge '
                                               'files), instead of making one')
    ap.add_argument('--out', default='output/bench_learning', help='working folder')
    ap.add_argument('--plot', default='assets/learning_speed.png', help='the figure')
    ap.add_argument('--gpu', default='', help='GPU id for train.py/test.py')
    ap.add_argument('--smoke', action='store_true', help='two tiny candidates, 2 epochs, 12 images (checks the tool)')
    args = ap.parse_args(argv)
    if args.smoke:
        args.epochs, args.num_images = min(args.epochs, 2), min(args.num_images, 12)
    return args


def ensure_data(out, num_images):
    root = out / 'data'
    ann = root / 'Synthetic' / 'data' / '3DPW_latest_test.json'
    if not ann.is_file():
        # a third of the images for testing: differences of a few mm between candidates need a few hundred people
        rc = run_script('tool/make_data/make_synthetic.py',
                        ['--out', rel(root / 'Synthetic'), '--num-images', num_images, '--seed', 0, '--split', '65,5,30',
                         '--contact-sheet', 'none'])
        rc = rc or run_script('tool/make_data/make_overlap_edges.py',
                              ['--dataset', 'Synthetic', '--root', rel(root / 'Synthetic')])
        if rc != 0:
            raise UserError(f'making the synthetic set failed (exit code {rc})')
    return root


def probed(exp, epochs, gpu):
    """tool/experiments/probe_inputs.py's report on the last snapshot (made when missing)."""
    path = exp / 'result' / 'probe.json'
    snap = exp / 'checkpoint' / f'snapshot_{epochs - 1}.pth.tar'
    if not path.is_file() or path.stat().st_mtime < snap.stat().st_mtime:
        rc = run_script('tool/experiments/probe_inputs.py',
                        ['--ckpt', rel(exp), '--epoch', epochs - 1, '--out', rel(path)] + (['--gpu', gpu] if gpu else []))
        if rc != 0:
            raise UserError(f'tool/experiments/probe_inputs.py failed on {snap}')
    return json.loads(path.read_text())


def curve(exp, epochs, gpu):
    """[(minutes since the start, PA-MPJPE, MPJPE)] of the experiment's snapshots (each tested when needed)."""
    start = (exp / 'config.yaml').stat().st_mtime
    points = []
    for e in range(epochs):
        snap = exp / 'checkpoint' / f'snapshot_{e}.pth.tar'
        res = exp / 'result' / f'metrics_Synthetic_{e}.json'
        if not res.is_file() or res.stat().st_mtime < snap.stat().st_mtime:
            rc = run_script('main/test.py', ['--exp_dir', rel(exp), '--test_epoch', e] +
                            (['--gpu', gpu] if gpu else []))
            if rc != 0 or not res.is_file():
                raise UserError(f'main/test.py failed on {snap}')
        s = json.loads(res.read_text())['summary']
        points.append(((snap.stat().st_mtime - start) / 60, s['pa_mpjpe'], s['mpjpe']))
    return points


def table_line(name, r):
    pts, v = r['points'], r['probe']['variants']
    given, swapped, zero = v['given'], v['image_swapped'], v.get('edge_zero')
    pct = lambda a, b: f'{a:.1f} ({(a / b - 1) * 100:+.0f}%)'  # noqa: E731
    hidden = given['hidden']['pa_mpjpe'] if given['hidden'] else None
    gate = r['probe']['gate']
    return (f'| {name} | {r["description"]} | {pts[-1][0]:.1f} | {", ".join(f"{p[1]:.1f}" for p in pts)} | '
            f'{pts[-1][2]:.1f} | {"-" if hidden is None else f"{hidden:.1f}"} | '
            f'{pct(swapped["summary"]["mpjpe"], given["summary"]["mpjpe"])} | '
            f'{pct(zero["hidden"]["pa_mpjpe"], hidden) if zero and hidden else "-"} | '
            f'{"-" if gate is None else f"{gate:+.3f}"} |')


def main(argv=None):
    args = parse_args(argv)
    print_machine()
    table = SMOKE if args.smoke else CANDIDATES
    names = [n.strip() for n in args.candidates.split(',') if n.strip()] or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise UserError(f'unknown candidate(s) {unknown}; known: {", ".join(table)}')
    out = (ROOT / args.out).resolve() if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data:
        data = (ROOT / args.data).resolve() if not Path(args.data).is_absolute() else Path(args.data)
        if not (data / 'Synthetic' / 'data' / '3DPW_latest_test.json').is_file():
            raise UserError(f'--data {args.data}: no synthetic set in it (Synthetic/data/3DPW_latest_test.json)')
    else:
        data = ensure_data(out, args.num_images)
    t0 = time.time()
    results = {}
    for i, name in enumerate(names):
        desc, cfg, over = table[name]
        stage = out / name
        argv = ['--cfg', cfg, '--exp_name', name, override('output_dir', rel(stage)), override('data.root', rel(data)),
                override('train.end_epoch', args.epochs)] + \
            [override(k, v) for k, v in {**COMMON, **over}.items()]
        print(f'[{i + 1}/{len(names)}] {name}: {desc} ({fmt_time(time.time() - t0)} elapsed)', flush=True)
        exp = train_stage(stage, argv, args.epochs, ['--gpu', args.gpu] if args.gpu else [], what=f'candidate {name}')
        results[name] = {'description': desc, 'exp_dir': rel(exp), 'points': curve(exp, args.epochs, args.gpu),
                         'probe': probed(exp, args.epochs, args.gpu)}
    from tool.runs import charts
    mach = machine()
    plot = Path(args.plot) if Path(args.plot).is_absolute() else ROOT / args.plot
    series = {f'{n} ({r["description"]})': ([p[0] for p in r['points']], [p[1] for p in r['points']])
              for n, r in results.items()}
    charts.plot_curves({'PA-MPJPE (mm), synthetic test split': series}, plot, xlabel='wall time (minutes)',
                    title=f'learning speed ({mach["cores"]} cores, {mach["cpu"]})')
    lines = ['| candidate | setting | minutes | PA-MPJPE per epoch | MPJPE | PA-MPJPE, most hidden third | '
             'MPJPE, images swapped | PA-MPJPE most hidden, edge zeroed | image gate |',
             '|---|---|---:|---|---:|---:|---:|---:|---:|']
    for n, r in results.items():
        lines.append(table_line(n, r))
    text = '\n'.join(lines) + '\n'
    atomic_write_text(out / 'table.md', text)
    data_made = None if args.data else args.num_images   # --data: a set made elsewhere, its size not ours to say
    atomic_write_text(out / 'results.json', json.dumps({'machine': mach, 'epochs': args.epochs, 'data': rel(data),
                                                        'num_images': data_made, 'candidates': results}, indent=1))
    print('\n' + text)
    print(f'figure: {rel(plot)}; table: {rel(out / "table.md")}')
    return out


if __name__ == '__main__':
    run_cli(main)
