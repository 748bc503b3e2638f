"""The training input 2D pose against the test input, per joint: how often each joint is there, how far from the truth.

    python tool/experiments/compare_input_pose.py                                  # the quickstart's synthetic set
    python tool/experiments/compare_input_pose.py --data data --samples 2000

For the training split in both data.input_pose modes (detector: the test-time detector replayed; published:
3DCrowdNet's PoseFix input with clean GT on every other joint) and for the test split's recorded detections: per
SMPL-30 joint the fraction of samples where it is given (its heatmap is drawn) and the median distance of a given
joint from the true one, in percent of the body's 2D extent. The synthetic set only (its test split records its
detector's input); tests/data/test_input_pose.py holds the detector mode to the test rates.
"""
import argparse
from pathlib import Path

import numpy as np

from common.body.joint_sets import SMPL30
from common.errors import UserError, run_cli
from common.paths import ROOT
from common.pipeline import preprocessing as pre
from common.pipeline.preprocessing import INPUT_CONF_THR
from data.dataset import get_dataset_class
from main.config import load_config


def load(root, split, mode, size, vertices=3000):
    cfg = load_config('assets/yaml/baseline.yml', ['model.backbone=resnet18', f'model.input_size={size}',
                                                   f'model.procedural_vertices={vertices}', 'data.test_set=Synthetic',
                                                   f'data.root={root}', f'data.input_pose={mode}'])
    return get_dataset_class('Synthetic')(cfg, split)


def per_joint(present, error):
    present, error = np.asarray(present), np.asarray(error)
    err = np.full(present.shape[1], np.nan)
    for j in range(present.shape[1]):
        if present[:, j].any():
            err[j] = np.median(error[present[:, j], j])
    return present.mean(0), err


def training_inputs(ds, n):
    present, error = [], []
    for k in range(n):
        rec = ds.records[k % len(ds.records)]
        inputs, targets, _ = ds.get_sample(rec, np.random.default_rng(k))
        gt = targets['orig_joint_img'][:, :2].numpy()
        present.append(inputs['joints_mask'].numpy()[:, 0] > 0)
        error.append(np.linalg.norm(inputs['joints'].numpy()[:, :2] - gt, axis=1) / np.linalg.norm(np.ptp(gt, 0)))
    return per_joint(present, error)


def recorded_inputs(ds):
    S, G = ds.size, ds.hm
    present, error = [], []
    for rec in ds.records:
        inputs, meta = ds.test_inputs(rec, rec.joints_2d, INPUT_CONF_THR)
        joints = ds.smpl_joints(*ds.camera_frame_smpl(rec.person), rec.person.gender)
        gt = pre.crop_to_grid(pre.transform_joints_2d(ds.project(joints, rec.person), meta['img2bb_trans'].numpy()),
                              (S, S), (G, G))
        present.append(inputs['joints_mask'].numpy()[:, 0] > 0)
        error.append(np.linalg.norm(inputs['joints'].numpy()[:, :2] - gt, axis=1) / np.linalg.norm(np.ptp(gt, 0)))
    return per_joint(present, error)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='output/quickstart_small/data', help='data.root holding Synthetic/')
    ap.add_argument('--samples', type=int, default=1000, help='training samples drawn per mode')
    ap.add_argument('--size', type=int, default=128, help='model.input_size')
    args = ap.parse_args(argv)
    root = Path(args.data) if Path(args.data).is_absolute() else ROOT / args.data
    if not (root / 'Synthetic' / 'data' / '3DPW_latest_test.json').is_file():
        raise UserError(f'--data {args.data}: no synthetic set there (python tool/quickstart.py makes one, or '
                        f'python tool/make_data/make_synthetic.py --out {args.data}/Synthetic)')
    cols = {'test': recorded_inputs(load(root, 'test', 'detector', args.size))}
    for mode in ('detector', 'published'):
        cols[f'train, {mode}'] = training_inputs(load(root, 'train', mode, args.size), args.samples)
    names = list(cols)
    print(f'per joint: given in % of samples | median error in % of the body\'s 2D extent ({root})')
    print(f'{"joint":12s}' + ''.join(f'{n:>22s}' for n in names))
    for j, joint in enumerate(SMPL30.joints):
        cells = []
        for n in names:
            p, e = cols[n][0][j], cols[n][1][j]
            cells.append(f'{100 * p:8.0f}% | ' + (f'{100 * e:6.1f}%' if np.isfinite(e) else '      -'))
        print(f'{joint:12s}' + ''.join(f'{c:>22s}' for c in cells))


if __name__ == '__main__':
    run_cli(main)
