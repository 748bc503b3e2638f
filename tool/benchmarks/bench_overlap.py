"""SMPL overlap edges: our geometric method vs a SEFD-style pipeline, side by side in one run.

    python tool/benchmarks/bench_overlap.py                          # 10 frames 1080x1920 (3DPW portrait), 2 reps
    python tool/benchmarks/bench_overlap.py --landscape --frames 5   # 1920x1080
    python tool/benchmarks/bench_overlap.py --reps 1 --crops 4

Frames: 2-5 procedural-body people (default body model) overlapping at plausible sizes (800-1500 px
tall, focal 1500-2000 px). Timed on the same frames, interleaved (A B C A B C ...) after a warm-up:
  (a) ours: overlap_edges(method='geometric'): depth renders of the overlapping people in windows;
  (b) SEFD-style: every person alone and all together rendered at FULL frame as shaded RGB, SEFD's
      Canny magnitude (common.edges.canny) of each at full resolution, per-person dilation, sum - joint;
  (c) overlap_edges(method='canny'): the same as (b) in windows around the people (its result is
      checked against (b));
  and the on-the-fly crop map, overlap_edges_crop(method='geometric') per 256x256 crop (3DCrowdNet-like
  crops: person box x1.25, rotation +-30 deg, scale jitter, flips).
Ratios are what counts on a shared machine.
"""
import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from common.body.body_samples import random_smpl_params
from common.body.smpl import get_body_model
from common.edges.canny import canny_magnitude
from common.camera import Camera
from common.edges.overlap import dilation_size, overlap_edges, overlap_edges_crop
from common.errors import run_cli
from common.render.renderer import Renderer
from tool.benchmarks.timing import print_machine

SMPL_L_SHOULDER, SMPL_R_SHOULDER = 16, 17   # SMPL-24 joint indices


def projected_box(v, camera):
    """x, y, w, h of the projected vertices (what an annotation box of the whole body would be)."""
    u, w = camera.project(v).T
    return np.array([u.min(), w.min(), u.max() - u.min(), w.max() - w.min()])


def make_frames(n_frames=10, width=1080, height=1920, seed=0, people=(2, 5), body_model=None):
    """Crowd frames of procedural-body people that overlap: list of dicts with meshes, faces, camera (a
    common.camera.Camera), boxes [N, 4] (x, y, w, h) and box_areas."""
    model = body_model or get_body_model('neutral')
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    frames = []
    for _ in range(n_frames):
        n = int(rng.integers(people[0], people[1] + 1))
        f = float(rng.uniform(1500, 2000))
        pose, shape = random_smpl_params(n, g)
        # arms lowered from the T-pose towards the sides (the poses of people walking or standing)
        pose[:, 3 * SMPL_L_SHOULDER + 2] -= torch.empty(n).uniform_(0.6, 1.3, generator=g)
        pose[:, 3 * SMPL_R_SHOULDER + 2] += torch.empty(n).uniform_(0.6, 1.3, generator=g)
        heights = rng.uniform(800, 1500, n)          # px, in a portrait 1080x1920 frame
        heights *= min(width, height) / 1080.0 if width > height else 1.0
        z = np.sort(f * 1.75 / heights)
        for k in range(1, n):  # at least 0.4 m apart in depth: bodies do not interpenetrate
            z[k] = max(z[k], z[k - 1] + 0.4)
        z = rng.permutation(z)
        # pixel centres spread over the middle of the frame, closer than a body width: they overlap
        us = np.linspace(0.5 - 0.075 * (n - 1), 0.5 + 0.075 * (n - 1), n) * width + rng.normal(0, 0.03 * width, n)
        rng.shuffle(us)
        trans = [[(us[k] - width / 2) * z[k] / f, float(rng.uniform(-0.05, 0.15)), z[k]] for k in range(n)]
        with torch.no_grad():
            verts, _ = model(pose, shape, torch.tensor(trans, dtype=torch.float32))
        meshes = list(verts.numpy())
        camera = Camera(width, height, f, (width / 2.0, height / 2.0))
        boxes = np.stack([projected_box(v, camera) for v in meshes])
        frames.append(dict(meshes=meshes, faces=model.faces, camera=camera, boxes=boxes,
                           box_areas=boxes[:, 2] * boxes[:, 3]))
    return frames


def crop_affine(box, size, rot_deg=0.0, scale=1.0, flip=False):
    """3DCrowdNet-like crop: the box's centre to the crop centre, its longer side x1.25 to `size` px
    (times `scale`), rotated by rot_deg, mirrored with `flip`. 2x3, image px -> crop px (cv2)."""
    x, y, w, h = box
    c = (x + w / 2, y + h / 2)
    s = size / (1.25 * max(w, h)) * scale
    a = cv2.getRotationMatrix2D(c, rot_deg, s)
    a[:, 2] += np.array([size / 2, size / 2]) - np.array(c)
    if flip:
        a = np.array([[-1.0, 0, size - 1], [0, 1, 0]]) @ np.vstack([a, [0, 0, 1]])
    return a


def sefd_full_frame(frame, renderer):
    """SEFD-style reference pipeline at full frame (its released tools): shaded renders on white, Canny magnitude
    of each at full resolution, dilation, clip(sum alone - joint, 0, 1). The joint map is dilated with
    the most common person size (equal to the per-person rule when all sizes agree, as at 1080x1920)."""
    m, faces, camera = frame['meshes'], frame['faces'], frame['camera']
    ks = [dilation_size(a) for a in frame['box_areas']]

    def edges(meshes, k):
        rgb = renderer.render(meshes, faces, camera, outputs=('rgb',)).rgb
        with torch.no_grad():
            e = canny_magnitude(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0, 0].numpy()
        return cv2.dilate(e, np.ones((k, k), np.uint8)) if k > 1 else e

    total = sum(edges([v], k) for v, k in zip(m, ks))
    joint = edges(m, max(set(ks), key=ks.count))
    return np.clip(total - joint, 0, 1)


def sefd_literal(frame, renderer):
    """(b) as the published tool runs it: the reference's Canny module on each full-frame render (kornia's
    canny with its defaults, hysteresis computed and thrown away, then kornia.morphology.dilation with all
    of 3, 5, 7, 9 of which one is used). For context only (--literal)."""
    import kornia
    m, faces, camera = frame['meshes'], frame['faces'], frame['camera']
    ks = [dilation_size(a) for a in frame['box_areas']]

    def edges(meshes, k):
        rgb = renderer.render(meshes, faces, camera, outputs=('rgb',)).rgb
        with torch.no_grad():
            img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
            mag = kornia.filters.canny(kornia.color.rgb_to_grayscale(kornia.color.bgr_to_rgb(img)))[0]
            dil = {s: kornia.morphology.dilation(mag, torch.ones(s, s)) for s in (3, 5, 7, 9)}
        return (dil[k] if k > 1 else mag)[0, 0].numpy()

    total = sum(edges([v], k) for v, k in zip(m, ks))
    return np.clip(total - edges(m, max(set(ks), key=ks.count)), 0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--frames', type=int, default=10)
    ap.add_argument('--reps', type=int, default=2, help='timed passes over the frames (after a warm-up)')
    ap.add_argument('--crops', type=int, default=6, help='256x256 crops timed per frame and pass')
    ap.add_argument('--landscape', action='store_true', help='1920x1080 instead of 1080x1920')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--literal', action='store_true',
                    help="also time the reference's own Canny module (kornia dilations etc.) on the first 2 frames")
    args = ap.parse_args()
    print_machine()
    width, height = (1920, 1080) if args.landscape else (1080, 1920)
    frames = make_frames(args.frames, width, height, args.seed)
    renderer = Renderer()
    rng = np.random.default_rng(args.seed + 1)
    crops = []
    for fr in frames:
        cs = []
        for k in range(args.crops):
            box = fr['boxes'][k % len(fr['boxes'])]
            cs.append(crop_affine(box, 256, rot_deg=float(rng.uniform(-30, 30)), scale=float(rng.uniform(0.8, 1.2)),
                                  flip=bool(rng.random() < 0.5)))
        crops.append(cs)

    def ours(fr):
        return overlap_edges(fr['meshes'], fr['faces'], fr['camera'], fr['box_areas'], method='geometric',
                             renderer=renderer)

    def ours_canny(fr):
        return overlap_edges(fr['meshes'], fr['faces'], fr['camera'], fr['box_areas'], method='canny',
                             renderer=renderer)

    def crop(fr, a):
        return overlap_edges_crop(fr['meshes'], fr['faces'], fr['camera'], a, 256, fr['box_areas'],
                                  method='geometric', renderer=renderer)

    n_people = [len(fr['meshes']) for fr in frames]
    print(f'{len(frames)} frames {width}x{height}, {min(n_people)}-{max(n_people)} people '
          f'({sum(n_people)} in all), {len(frames[0]["meshes"][0])} vertices per body, '
          f'torch threads {torch.get_num_threads()}')
    # warm-up (GL buffers, kernels) and the check that the windowed canny method equals the full frame
    diffs, pix = [], []
    for fr, cs in zip(frames, crops):
        ours(fr)
        ref = sefd_full_frame(fr, renderer)
        diffs.append(float(np.abs(ours_canny(fr) - ref).max()))
        pix.append(int((ours(fr) > 0).sum()))
        for a in cs:
            crop(fr, a)
    t = {'ours': [], 'sefd': [], 'canny': [], 'crop': []}
    for _ in range(args.reps):
        for fr, cs in zip(frames, crops):
            for name, fn in (('ours', ours), ('sefd', lambda x: sefd_full_frame(x, renderer)), ('canny', ours_canny)):
                t0 = time.perf_counter()
                fn(fr)
                t[name].append(time.perf_counter() - t0)
            for a in cs:
                t0 = time.perf_counter()
                crop(fr, a)
                t['crop'].append(time.perf_counter() - t0)
    mean = {k: statistics.mean(v) for k, v in t.items()}
    med = {k: statistics.median(v) for k, v in t.items()}
    print(f'(a) ours, geometric windowed : {1 / mean["ours"]:8.2f} frames/s  ({1e3 * mean["ours"]:.1f} ms/frame, '
          f'median {1e3 * med["ours"]:.1f})')
    print(f'(b) SEFD-style full frame    : {1 / mean["sefd"]:8.2f} frames/s  ({1e3 * mean["sefd"]:.0f} ms/frame)')
    print(f'(c) ours, canny windowed     : {1 / mean["canny"]:8.2f} frames/s  ({1e3 * mean["canny"]:.0f} ms/frame); '
          f'max |(c) - (b)| over frames = {max(diffs):.2g}')
    print(f'speedup (a) vs (b): {mean["sefd"] / mean["ours"]:.0f}x   (target >= 100x); '
          f'(c) vs (b): {mean["sefd"] / mean["canny"]:.1f}x')
    print(f'on-the-fly crop map, geometric, 256x256: mean {1e3 * mean["crop"]:.2f} ms/crop, median '
          f'{1e3 * med["crop"]:.2f}, p90 {1e3 * float(np.percentile(t["crop"], 90)):.2f} over {len(t["crop"])} '
          f'crops (target <= 10 ms)')
    print(f'overlap pixels per frame (geometric): mean {statistics.mean(pix):.0f}')
    if args.literal:
        lit, base, mine = [], [], []
        for fr in frames[:2]:
            for name, fn, acc in (('lit', lambda x: sefd_literal(x, renderer), lit),
                                  ('sefd', lambda x: sefd_full_frame(x, renderer), base), ('ours', ours, mine)):
                t0 = time.perf_counter()
                fn(fr)
                acc.append(time.perf_counter() - t0)
        print(f"the reference's Canny module as published (2 frames): {1e3 * statistics.mean(lit):.0f} ms/frame; "
              f"vs (b) {statistics.mean(lit) / statistics.mean(base):.1f}x slower, vs (a) "
              f"{statistics.mean(lit) / statistics.mean(mine):.0f}x slower")


if __name__ == '__main__':
    run_cli(main)
