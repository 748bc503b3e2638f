"""Render SMPL overlap-edge maps (the teacher's 4th input channel) for a dataset, offline.

    python tool/make_data/make_overlap_edges.py --dataset PW3D --split test
    python tool/make_data/make_overlap_edges.py --dataset MSCOCO --workers 2 --all-edges
    python tool/make_data/make_overlap_edges.py --dataset Synthetic --root output/synthetic_check

Writes 8-bit PNGs (edge strength x 255) beside the images, one rule for every dataset (data/scenes.py):
    <dataset root>/overlap_edges/<image path relative to the image folder>.png   (and all_edges/ with --all-edges)
or, with --layout sefd, JPEGs under the names and folders of SEFD's distributed maps (data/scenes.py
sefd_edge_paths; e.g. 3DPW <root>/data/SMPL_overlap_edge1/<sequence>/<file>.jpg), so they can be exchanged
with SEFD's code. Both layouts are read by `edge.overlap_source: file`.
Resumable: files that exist and decode at the image's size are skipped; every file is written atomically.
Bad entries (a missing camera field, NaN parameters, an unreadable annotation file) are reported in one
line each, counted, and the rest goes on.
"""
import argparse
import functools
import importlib
import multiprocessing as mp
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.errors import UserError, check_number, run_cli
from common.io import atomic_write_bytes
from common.paths import ROOT
from data.scenes import EDGE_DIR, SEFD_EDGE_DATASETS, edge_path, scene_meshes, sefd_edge_paths

DATASETS = ('PW3D', 'Synthetic', 'Human36M', 'MuCo', 'MSCOCO', 'MPII', 'CrowdPose')
ALL_EDGE_DIR = 'all_edges'

_worker = {}


def _init_worker(smpl_dir, vertices, method, occluding):
    from common.body.smpl import get_body_model
    from common.render.renderer import Renderer
    _worker.update(renderer=Renderer(), method=method, occluding=occluding,
                   bodies=functools.cache(lambda g: get_body_model(g, smpl_dir, vertices)))


def valid_file(path, width, height):
    if not path.is_file():
        return False
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img is not None and img.shape[:2] == (height, width)


def encode(edge, suffix='.png'):
    """8-bit image bytes in the format of the file's suffix (.png, or SEFD's .jpg at OpenCV's default quality)."""
    ok, buf = cv2.imencode(suffix, np.clip(np.rint(edge * 255), 0, 255).astype(np.uint8))
    if not ok:
        raise RuntimeError(f'{suffix} encoding failed')
    return buf.tobytes()


def process(job):
    """One scene -> its PNG(s). Returns (status, key, reason)."""
    from common.edges.overlap import overlap_edges
    scene, out_path, all_path = job
    try:
        genders = {p.gender for p in scene.people} | {'neutral'}
        bodies = {g: _worker['bodies'](g) for g in genders}
        meshes, camera = scene_meshes(scene, bodies)
        faces = bodies['neutral'].faces
        areas = [float(p.bbox[2] * p.bbox[3]) for p in scene.people]
        out = overlap_edges(meshes, faces, camera, areas, method=_worker['method'], renderer=_worker['renderer'],
                            return_all=all_path is not None, occluding=_worker['occluding'])
        overlap, all_edges = out if all_path is not None else (out, None)
        atomic_write_bytes(out_path, encode(overlap, out_path.suffix))
        if all_path is not None:
            atomic_write_bytes(all_path, encode(all_edges, all_path.suffix))
        return 'done', scene.key, ''
    except (ValueError, UserError, RuntimeError, KeyError) as e:
        return 'failed', scene.key, f'{type(e).__name__}: {e}'


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset', required=True, choices=DATASETS)
    ap.add_argument('--root', default='', help='dataset folder (default data/<dataset>)')
    ap.add_argument('--split', default='', help='one split (default: all the dataset has)')
    ap.add_argument('--method', default='geometric', choices=('geometric', 'canny'))
    ap.add_argument('--occluding', action='store_true',
                    help="also mark occluders' outlines over the people behind (geometric; closer to SEFD's Canny)")
    ap.add_argument('--all-edges', action='store_true', help='also write the all-edges map to all_edges/')
    ap.add_argument('--layout', default='ours', choices=('ours', 'sefd'),
                    help="ours: overlap_edges/<image>.png; sefd: the names and folders of SEFD's distributed maps")
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--overwrite', action='store_true')
    ap.add_argument('--limit', type=int, default=0, help='at most this many images (0 = all)')
    ap.add_argument('--smpl-dir', default=None, help='SMPL model folder (default common/utils/human_model_files)')
    ap.add_argument('--vertices', type=int, default=3000, help='procedural body size when no SMPL files exist')
    args = ap.parse_args(argv)
    for name, low, high in (('workers', 0, 256), ('limit', 0, None), ('vertices', 100, 100000)):
        check_number(f'--{name}', getattr(args, name), low, high)
    return args


def collect_jobs(args, module, root):
    jobs, problems, skipped = [], [], 0
    for split in ([args.split] if args.split else module.SPLITS):
        try:
            scenes, bad = module.read_scenes(root, split)
        except UserError as e:
            problems.append(f'{split}: {e}')
            continue
        problems += bad
        for scene in scenes:
            out = edge_path(root, scene.image) if args.layout == 'ours' else \
                next(iter(sefd_edge_paths(args.dataset, root, scene.image, split)), None)
            if out is None:
                problems.append(f'{scene.key}: {scene.image} has no SEFD name (not s_S_act_A_subact_B_ca_C_<frame>)')
                continue
            all_out = root / ALL_EDGE_DIR / out.relative_to(root / EDGE_DIR) if args.all_edges else None
            if not args.overwrite and valid_file(out, scene.width, scene.height) and \
                    (all_out is None or valid_file(all_out, scene.width, scene.height)):
                skipped += 1
                continue
            jobs.append((scene, out, all_out))
            if args.limit and len(jobs) >= args.limit:
                return jobs, problems, skipped
    return jobs, problems, skipped


def main(argv=None):
    args = parse_args(argv)
    module = importlib.import_module(f'data.{args.dataset}.{args.dataset}')
    root = Path(args.root).resolve() if args.root else ROOT / 'data' / args.dataset
    if args.layout == 'sefd' and args.all_edges:
        raise UserError("--all-edges writes this project's layout only (SEFD's loaders never read its all-edge maps)")
    if args.layout == 'sefd' and args.dataset not in SEFD_EDGE_DATASETS:
        raise UserError(f'SEFD distributes no overlap edges for {args.dataset}: use --layout ours')
    jobs, problems, skipped = collect_jobs(args, module, root)
    for p in problems:
        print(f'skipped: {p}', file=sys.stderr)
    counts, failures = Counter(), []
    init = (args.smpl_dir, args.vertices, args.method, args.occluding)
    if args.workers > 1 and len(jobs) > 1:
        # spawn: a renderer cannot be used in a process forked after its parent rendered
        with mp.get_context('spawn').Pool(args.workers, _init_worker, init) as pool:
            results = pool.imap_unordered(process, jobs, chunksize=4)
            for status, key, reason in tqdm(results, total=len(jobs), desc=args.dataset):
                counts[status] += 1
                if reason:
                    failures.append(f'{key}: {reason}')
    else:
        _init_worker(*init)
        for job in tqdm(jobs, desc=args.dataset):
            status, key, reason = process(job)
            counts[status] += 1
            if reason:
                failures.append(f'{key}: {reason}')
    for f in failures:
        print(f'failed: {f}', file=sys.stderr)
    print(f'{args.dataset}: {counts["done"]} written, {skipped} already there, '
          f'{counts["failed"] + len(problems)} failed or skipped as bad input -> '
          f'{root / EDGE_DIR if args.layout == "ours" else str(root) + " (SEFD layout)"}')
    bad = counts['failed'] + len(problems)
    if bad and not counts['done'] and not skipped:
        raise UserError(f'{args.dataset}: no overlap edge could be made ({bad} failed or skipped; the reasons are '
                        f'above)')
    return counts, skipped, problems, failures


if __name__ == '__main__':
    run_cli(main)
