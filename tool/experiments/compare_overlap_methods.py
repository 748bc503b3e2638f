"""The two SMPL overlap-edge methods side by side, on the synthetic data: a figure and numbers.

    python tool/experiments/compare_overlap_methods.py                        # data/Synthetic, validation + test scenes
    python tool/experiments/compare_overlap_methods.py --splits test --rows 4 --out /tmp/cmp.png
    python tool/experiments/compare_overlap_methods.py --root /tmp/synth      # another dataset in the 3DPW layout
    python tool/experiments/compare_overlap_methods.py --procedural --frames 6   # procedural 1080x1920 crowds instead

Scenes: the synthetic dataset (made by `python tool/make_data/make_synthetic.py`), read with
data.Synthetic.Synthetic.read_scenes and posed with data.scenes.scene_meshes and the default body models
(get_body_model(<gender>): official SMPL files when installed, else the procedural stand-in, as the
generator used), every image with at least two people. If the dataset is missing, a small one (--generate
images, default 40) is made in a temporary folder with tool/make_data/make_synthetic.py (same code, other seed
range). --procedural uses the crowds of tool/benchmarks/bench_overlap.py (shaded renders as images) instead.

For each scene: method='canny' (SEFD: shaded renders, Canny magnitude, alone sum minus joint),
method='geometric' (hidden contours from depth buffers) and geometric with occluding=True (also each
person's outline over another's body, which the Canny difference marks too).

Numbers, on undilated maps (box areas -> no dilation, so that thin contours are compared): edge pixels
of each map (canny: value > 0.1, kornia's low threshold), and agreement within 2 px: precision = share
of the geometric map's pixels with a canny pixel within 2 px, recall = share of the canny map's pixels
with a geometric pixel within 2 px (also for its strong pixels only, > 0.5: the weak ones are mostly
hidden shading ridges that the Canny of a shaded render finds inside limbs); means over the scenes
(pixel-weighted over all scenes in brackets). Times per frame are for the real maps (dilated with the
annotation boxes), at the dataset's resolution.
Figure (assets/overlap_methods.png): the image | canny map | geometric | geometric, occluding (each map
in red over the dimmed image), one row per scene (the --rows scenes with the most hidden contour),
cropped to the people.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common.edges.overlap import overlap_edges
from common.errors import run_cli
from common.io import atomic_write_bytes
from common.paths import ROOT
from common.render.renderer import Renderer

THIN = 1e-3   # box area for undilated maps
VARIANTS = (('canny', dict(method='canny')), ('geometric', dict(method='geometric')),
            ('geometric+occluding', dict(method='geometric', occluding=True)))
GENDERS = ('neutral', 'male', 'female')


def within(a, b, tol=2.0):
    """Share of the pixels of mask a that have a pixel of mask b within tol px (nan if a is empty)."""
    if not a.any():
        return float('nan')
    if not b.any():
        return 0.0
    d = cv2.distanceTransform((~b).astype(np.uint8), cv2.DIST_L2, 3)
    return float((d[a] <= tol).mean())


def synthetic_frames(root, splits, min_people=2, limit=0):
    """Frames (dicts as tool/bench_overlap.make_frames gives, plus 'image' RGB and 'name') of the scenes
    of a dataset in the 3DPW layout with at least `min_people` people."""
    from common.body.smpl import get_body_model
    from common.pipeline.preprocessing import load_img
    from data.scenes import scene_meshes
    from data.Synthetic import Synthetic
    models = {g: get_body_model(g) for g in GENDERS}
    frames = []
    for split in splits:
        scenes, problems = Synthetic.read_scenes(root, split)
        for p in problems:
            print(f'skipped: {p}')
        for sc in scenes:
            if len(sc.people) < min_people:
                continue
            meshes, camera = scene_meshes(sc, models)
            boxes = np.stack([p.bbox for p in sc.people])
            faces = [models[p.gender if p.gender in models else 'neutral'].faces for p in sc.people]
            frames.append(dict(meshes=meshes, faces=faces, camera=camera, boxes=boxes, box_areas=boxes[:, 2] * boxes[:, 3],
                               image=load_img(Path(Synthetic.image_dir(root)) / sc.image), name=sc.image))
            if limit and len(frames) >= limit:
                return frames
    return frames


def generate_synthetic(out, num_images, seed=7):
    """A small synthetic set in `out` (all images in the test split), made by tool/make_data/make_synthetic.py."""
    from tool.make_data.make_synthetic import main as make
    rc = make(['--out', str(out), '--num-images', str(num_images), '--seed', str(seed), '--split', 'test',
               '--min-people', '2', '--contact-sheet', 'none', '--no-progress'])
    if rc:
        raise SystemExit(f'tool/make_data/make_synthetic.py failed (exit {rc})')


def run(fr, renderer, thin, **kw):
    areas = np.full(len(fr['meshes']), THIN) if thin else fr['box_areas']
    return overlap_edges(fr['meshes'], fr['faces'], fr['camera'], areas, renderer=renderer, **kw)


def tile(img, box, size):
    x0, y0, x1, y1 = box
    crop = img[y0:y1, x0:x1]
    s = size / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                      interpolation=cv2.INTER_AREA)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - crop.shape[0]) // 2, (size - crop.shape[1]) // 2
    out[y:y + crop.shape[0], x:x + crop.shape[1]] = crop if crop.ndim == 3 else crop[..., None]
    return out


def overlay(rgb, m):
    """Edge map m in [0, 1] in red over the dimmed grey image (RGB uint8)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.45 + 40
    a = np.clip(m, 0, 1)[..., None]
    out = np.repeat(grey[..., None], 3, 2) * (1 - a) + a * np.array([255.0, 30.0, 30.0])
    return np.clip(out, 0, 255).astype(np.uint8)


def figure(rows, cell, first='image'):
    """rows: list of (rgb image, {variant: map}, box) -> one BGR image with a header."""
    header = np.full((28, cell * 4, 3), 255, np.uint8)
    for k, name in enumerate((first,) + tuple(n for n, _ in VARIANTS)):
        cv2.putText(header, name, (k * cell + 6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    lines = [header]
    for rgb, maps, box in rows:
        cells = [tile(rgb, box, cell)]
        for name, _ in VARIANTS:
            cells.append(tile(overlay(rgb, maps[name]), box, cell))
        lines.append(np.concatenate(cells, 1)[:, :, ::-1])
    return np.concatenate(lines, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--root', default=str(ROOT / 'data' / 'Synthetic'), help='synthetic dataset (3DPW layout)')
    ap.add_argument('--splits', default='validation,test', help='comma-separated splits to read')
    ap.add_argument('--frames', type=int, default=0, help='at most this many scenes (0: all with >= 2 people)')
    ap.add_argument('--generate', type=int, default=40,
                    help='images to generate into a temporary folder when --root holds no dataset')
    ap.add_argument('--procedural', action='store_true',
                    help='procedural crowds of tool/benchmarks/bench_overlap.py (1080x1920) '
                         'instead of the synthetic data')
    ap.add_argument('--landscape', action='store_true', help='--procedural: 1920x1080 instead of 1080x1920')
    ap.add_argument('--seed', type=int, default=1, help='--procedural: frame seed')
    ap.add_argument('--rows', type=int, default=3, help='scenes shown in the figure')
    ap.add_argument('--cell', type=int, default=220, help='figure cell size (px)')
    ap.add_argument('--out', default=str(ROOT / 'assets' / 'overlap_methods.png'))
    args = ap.parse_args()

    tmp = None
    if args.procedural:
        from tool.benchmarks.bench_overlap import make_frames
        width, height = (1920, 1080) if args.landscape else (1080, 1920)
        frames = make_frames(args.frames or 6, width, height, args.seed)
        source = f'procedural crowds {width}x{height}'
    else:
        root = Path(args.root)
        splits = [s for s in args.splits.split(',') if s]
        if not any((root / 'data' / f'3DPW_latest_{s}.json').is_file() for s in splits):
            tmp = tempfile.TemporaryDirectory(prefix='synthetic_')
            print(f'no synthetic dataset in {root} (make it with: python tool/make_data/make_synthetic.py); generating '
                  f'{args.generate} images into {tmp.name}')
            root, splits = Path(tmp.name), ['test']
            generate_synthetic(root, args.generate)
        frames = synthetic_frames(root, splits, limit=args.frames)
        if not frames:
            raise SystemExit(f'no scene with >= 2 people in {root} ({", ".join(splits)})')
        source = f'synthetic scenes from {root} ({", ".join(splits)})'
    renderer = Renderer()
    for fr in frames[:1]:   # warm-up
        for _, kw in VARIANTS:
            run(fr, renderer, False, **kw)

    times = {n: [] for n, _ in VARIANTS}
    counts = {n: [] for n, _ in VARIANTS}
    agree = {n: ([], [], []) for n, _ in VARIANTS[1:]}
    pooled = {n: np.zeros((3, 2)) for n, _ in VARIANTS[1:]}   # (hits, total) per measure
    kept = []
    for fr in frames:
        maps = {}
        for name, kw in VARIANTS:
            t0 = time.perf_counter()
            maps[name] = run(fr, renderer, False, **kw)
            times[name].append(time.perf_counter() - t0)
        thin = {name: run(fr, renderer, True, **kw) for name, kw in VARIANTS}
        canny = thin['canny'] > 0.1
        strong = thin['canny'] > 0.5
        counts['canny'].append(int(canny.sum()))
        for name, _ in VARIANTS[1:]:
            g = thin[name] > 0
            counts[name].append(int(g.sum()))
            for k, (a, b) in enumerate(((g, canny), (canny, g), (strong, g))):
                s = within(a, b)
                agree[name][k].append(s)
                if a.any():
                    pooled[name][k] += (s * a.sum(), a.sum())
        kept.append((int((thin['geometric'] > 0).sum()), fr, maps))

    # the figure: the scenes with the most hidden contour
    rows = []
    for _, fr, maps in sorted(kept, key=lambda t: -t[0])[:args.rows]:
        rgb = fr.get('image')
        if rgb is None:
            rgb = renderer.render(fr['meshes'], fr['faces'], fr['camera'], outputs=('rgb',)).rgb
        fg = renderer.render(fr['meshes'], fr['faces'], fr['camera'], outputs=('person_id',)).mask
        ys, xs = np.nonzero(fg | (maps['canny'] > 0))
        m = 10
        box = (max(xs.min() - m, 0), max(ys.min() - m, 0), min(xs.max() + m, fr['camera'].width),
               min(ys.max() + m, fr['camera'].height))
        rows.append((rgb, maps, box))

    n_people = [len(fr['meshes']) for fr in frames]
    sizes = sorted({f'{fr["camera"].width}x{fr["camera"].height}' for fr in frames})
    print(f'{len(frames)} {source}: {", ".join(sizes)}, {min(n_people)}-{max(n_people)} people '
          f'({sum(n_people)} in all)')
    print(f'{"method":22s} {"ms/frame":>9s} {"edge px/frame":>14s} {"precision@2px":>16s} {"recall@2px":>16s} '
          f'{"recall@2px (canny>0.5)":>23s}')
    for name, _ in VARIANTS:
        cols = [''] * 3
        if name in agree:
            cols = [f'{np.nanmean(x):.3f} ({h / max(t, 1):.3f})' for x, (h, t) in zip(agree[name], pooled[name])]
        print(f'{name:22s} {1e3 * statistics.mean(times[name]):9.1f} {statistics.mean(counts[name]):14.0f} '
              f'{cols[0]:>16s} {cols[1]:>16s} {cols[2]:>23s}')
    print('(edge pixels on undilated maps; precision/recall of each geometric map against the canny map, '
          'whose pixels > 0.1 count as edges; the last column: only its strong pixels, > 0.5; mean over '
          'scenes, pixel-weighted in brackets)')

    img = figure(rows, args.cell, 'shaded render' if args.procedural else 'image')
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.tobytes())
    print(f'figure: {out} ({img.shape[1]}x{img.shape[0]}, {len(buf) / 1024:.0f} KB)')
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    run_cli(main)
