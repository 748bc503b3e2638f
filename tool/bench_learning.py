"""How fast candidate settings learn: PA-MPJPE on the synthetic test split against wall time, side by side.

    python tool/bench_learning.py                          # the CANDIDATES below, one after the other
    python tool/bench_learning.py --candidates default,published --epochs 6
    python tool/bench_learning.py --smoke                  # two tiny candidates, to check the tool itself

Each candidate trains (main/train.py, one snapshot per epoch, no validation) on one synthetic set (made under
output/bench_learning/data when missing); the wall time of each snapshot is its file time minus the experiment's
start (loading and checkpoint writing included, testing not). Then main/test.py tests every snapshot on the test
split. Output: the curves (assets/learning_speed.png, or --plot), a markdown table (output/bench_learning/table.md
and the terminal), and results.json. Candidates run one after the other in one invocation so that they share the
machine's conditions; on a shared machine, rerun and compare. Rerunning skips finished trainings and tests.
It measures what each fix of README "What limits learning here" is worth: the default, the default with one fix
undone, and everything as published; the table also has MPJPE (the global orientation shows there). One more
candidate, crop_64, measures how much the image itself adds (a model that ignores it learns as well from 64 px).
"""
import argparse
import json
import time
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import ROOT
from tool.benchmark import print_machine
from tool.runs.stages import fmt_time, machine, override, rel, run_script, train_stage

# What every candidate shares (the quickstart's synthetic setting); a candidate's overrides come on top.
COMMON = {'data.train_sets_3d': ['Synthetic'], 'data.train_sets_2d': [], 'data.test_set': 'Synthetic',
          'data.num_workers': 1, 'train.val_every': 0, 'train.vis_every': 0, 'train.ckpt_every': 0,
          'train.print_freq': 10}

# Candidate settings: name -> (description, experiment file, overrides). The default, and the default with one of the
# fixes of README "What limits learning here" undone (its published 3DCrowdNet choice back), then all of them undone;
# from scratch (no pretrained weights on a fresh machine), ResNet-18 at 128 px, batch 16, as the quickstart.
R18 = {'model.backbone': 'resnet18', 'model.input_size': 128, 'train.batch_size': 16, 'train.lr': 1e-3,
       'train.lr_backbone': 1e-4, 'train.lr_dec_epochs': [100]}
PUBLISHED = {'data.input_pose': 'published', 'model.pose_to_head': False, 'model.camera': 'published',
             'train.loss_weights.smpl_root': 1.0, 'train.loss_weights.cam_prior': 0.0}
CANDIDATES = {
    'default': ('the defaults', 'assets/yaml/baseline.yml', R18),
    'input_published': ('training input pose as published (PoseFix, clean GT on all 30 joints)',
                        'assets/yaml/baseline.yml', {**R18, 'data.input_pose': 'published'}),
    'head_published': ('no input pose in the head (model.pose_to_head=false)', 'assets/yaml/baseline.yml',
                       {**R18, 'model.pose_to_head': False}),
    'camera_published': ('published camera (sigmoid from half the depth, no prior)', 'assets/yaml/baseline.yml',
                         {**R18, 'model.camera': 'published', 'train.loss_weights.cam_prior': 0.0}),
    'root_weight_1': ('root rotation weighted 1, as the other terms', 'assets/yaml/baseline.yml',
                      {**R18, 'train.loss_weights.smpl_root': 1.0}),
    'published': ('all of the above as published (3DCrowdNet from scratch)', 'assets/yaml/baseline.yml',
                  {**R18, **PUBLISHED}),
    # not a published choice: how much the image adds (a model that ignores it learns as well from 64 px crops)
    'crop_64': ('64 px crops instead of 128 (a quarter of the pixels)', 'assets/yaml/baseline.yml',
                {**R18, 'model.input_size': 64}),
}
SMOKE = {
    'smoke_a': ('ResNet-18, 64 px, 2 iterations per epoch', 'assets/yaml/baseline.yml',
                {'model.backbone': 'resnet18', 'model.input_size': 64, 'model.procedural_vertices': 800,
                 'train.batch_size': 2, 'train.max_iters': 2, 'data.num_workers': 0, 'train.print_freq': 1}),
    'smoke_b': ('ResNet-18, 64 px, lr 1e-4', 'assets/yaml/baseline.yml',
                {'model.backbone': 'resnet18', 'model.input_size': 64, 'model.procedural_vertices': 800,
                 'train.batch_size': 2, 'train.max_iters': 2, 'data.num_workers': 0, 'train.print_freq': 1,
                 'train.lr': 1e-4}),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--candidates', default='', help=f'comma-separated names (default all: {", ".join(CANDIDATES)})')
    ap.add_argument('--epochs', type=int, default=2, help='epochs per candidate (one test point per epoch)')
    ap.add_argument('--num-images', type=int, default=600, help='synthetic images (made once, shared)')
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
        rc = run_script('tool/make_synthetic.py', ['--out', rel(root / 'Synthetic'), '--num-images', num_images,
                                                   '--seed', 0, '--split', '65,5,30', '--contact-sheet', 'none'])
        if rc != 0:
            raise UserError(f'tool/make_synthetic.py failed (exit code {rc})')
    return root


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
        results[name] = {'description': desc, 'exp_dir': rel(exp), 'points': curve(exp, args.epochs, args.gpu)}
    from common import vis
    mach = machine()
    plot = Path(args.plot) if Path(args.plot).is_absolute() else ROOT / args.plot
    series = {f'{n} ({r["description"]})': ([p[0] for p in r['points']], [p[1] for p in r['points']])
              for n, r in results.items()}
    vis.plot_curves({'PA-MPJPE (mm), synthetic test split': series}, plot, xlabel='wall time (minutes)',
                    title=f'learning speed ({mach["cores"]} cores, {mach["cpu"]})')
    lines = ['| candidate | setting | minutes (all epochs) | PA-MPJPE first epoch | PA-MPJPE last epoch | '
             'MPJPE last epoch |', '|---|---|---:|---:|---:|---:|']
    for n, r in results.items():
        pts = r['points']
        lines.append(f'| {n} | {r["description"]} | {pts[-1][0]:.1f} | {pts[0][1]:.1f} | {pts[-1][1]:.1f} | '
                     f'{pts[-1][2]:.1f} |')
    text = '\n'.join(lines) + '\n'
    atomic_write_text(out / 'table.md', text)
    atomic_write_text(out / 'results.json', json.dumps({'machine': mach, 'epochs': args.epochs,
                                                        'num_images': args.num_images, 'candidates': results},
                                                       indent=1))
    print('\n' + text)
    print(f'figure: {rel(plot)}; table: {rel(out / "table.md")}')
    return out


if __name__ == '__main__':
    run_cli(main)
