"""The two SMPL overlap-edge methods side by side: a figure and numbers.

    python tool/compare_overlap_methods.py                     # 6 procedural crowd frames, 1080x1920
    python tool/compare_overlap_methods.py --frames 3 --out /tmp/cmp.png

Frames: procedural-body crowds as in tool/bench_overlap.py (the synthetic dataset's scenes can replace
them once it exists). For each frame: method='canny' (SEFD: shaded renders, Canny magnitude, alone sum
minus joint), method='geometric' (hidden contours from depth buffers) and geometric with occluding=True
(also each person's outline over another's body, which the Canny difference marks too).

Numbers, on undilated maps (box areas -> no dilation, so that thin contours are compared): edge pixels
of each map (canny: value > 0.1, kornia's low threshold), and agreement within 2 px: precision = share
of the geometric map's pixels with a canny pixel within 2 px, recall = share of the canny map's pixels
with a geometric pixel within 2 px (also for its strong pixels only, > 0.5: the weak ones are mostly
hidden shading ridges that the Canny of a shaded render finds inside limbs). Times per frame are for the real (dilated) maps.
Figure (assets/overlap_methods.png): shaded render | canny map | geometric | geometric, occluding, one
row per frame (the first --rows frames), cropped to the people.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common.edges.overlap import overlap_edges  # noqa: E402
from common.utils.io import atomic_write_bytes  # noqa: E402
from common.utils.render import Renderer  # noqa: E402
from tool.bench_overlap import make_frames  # noqa: E402

THIN = 1e-3   # box area for undilated maps
VARIANTS = (('canny', dict(method='canny')), ('geometric', dict(method='geometric')),
            ('geometric+occluding', dict(method='geometric', occluding=True)))


def within(a, b, tol=2.0):
    """Share of the pixels of mask a that have a pixel of mask b within tol px (nan if a is empty)."""
    if not a.any():
        return float('nan')
    if not b.any():
        return 0.0
    d = cv2.distanceTransform((~b).astype(np.uint8), cv2.DIST_L2, 3)
    return float((d[a] <= tol).mean())


def run(fr, renderer, thin, **kw):
    areas = np.full(len(fr['meshes']), THIN) if thin else fr['box_areas']
    return overlap_edges(fr['meshes'], fr['faces'], fr['focal'], fr['princpt'], fr['width'], fr['height'], areas,
                         renderer=renderer, **kw)


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


def figure(rows, cell):
    """rows: list of (rgb render, {variant: map}, box) -> one BGR image with a header."""
    header = np.full((28, cell * 4, 3), 255, np.uint8)
    for k, name in enumerate(('shaded render',) + tuple(n for n, _ in VARIANTS)):
        cv2.putText(header, name, (k * cell + 6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    lines = [header]
    for rgb, maps, box in rows:
        cells = [tile(rgb[:, :, ::-1], box, cell)]
        for name, _ in VARIANTS:
            m = (255 - np.clip(maps[name], 0, 1) * 255).astype(np.uint8)   # dark edges on white
            cells.append(tile(np.repeat(m[..., None], 3, 2), box, cell))
        lines.append(np.concatenate(cells, 1))
    return np.concatenate(lines, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--frames', type=int, default=6)
    ap.add_argument('--rows', type=int, default=3, help='frames shown in the figure')
    ap.add_argument('--cell', type=int, default=220, help='figure cell size (px)')
    ap.add_argument('--landscape', action='store_true', help='1920x1080 instead of 1080x1920')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--out', default=str(ROOT / 'assets' / 'overlap_methods.png'))
    args = ap.parse_args()
    width, height = (1920, 1080) if args.landscape else (1080, 1920)
    frames = make_frames(args.frames, width, height, args.seed)
    renderer = Renderer()
    for fr in frames[:1]:   # warm-up
        for _, kw in VARIANTS:
            run(fr, renderer, False, **kw)

    times = {n: [] for n, _ in VARIANTS}
    counts = {n: [] for n, _ in VARIANTS}
    agree = {n: ([], [], []) for n, _ in VARIANTS[1:]}
    rows = []
    for k, fr in enumerate(frames):
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
            agree[name][0].append(within(g, canny))
            agree[name][1].append(within(canny, g))
            agree[name][2].append(within(strong, g))
        if k < args.rows:
            rgb = renderer.render(fr['meshes'], fr['faces'], fr['focal'], fr['princpt'], width, height,
                                  outputs=('rgb',)).rgb
            ys, xs = np.nonzero((rgb < 250).any(2))
            box = (max(xs.min() - 10, 0), max(ys.min() - 10, 0), min(xs.max() + 10, width), min(ys.max() + 10, height))
            rows.append((rgb, maps, box))

    n_people = [len(fr['meshes']) for fr in frames]
    print(f'{len(frames)} frames {width}x{height}, {min(n_people)}-{max(n_people)} people')
    print(f'{"method":22s} {"ms/frame":>9s} {"edge px/frame":>14s} {"precision@2px":>14s} {"recall@2px":>11s} '
          f'{"recall@2px (canny>0.5)":>23s}')
    for name, _ in VARIANTS:
        p = r = r5 = ''
        if name in agree:
            p, r, r5 = (f'{np.nanmean(x):.3f}' for x in agree[name])
        print(f'{name:22s} {1e3 * statistics.mean(times[name]):9.1f} {statistics.mean(counts[name]):14.0f} '
              f'{p:>14s} {r:>11s} {r5:>23s}')
    print('(edge pixels on undilated maps; precision/recall of each geometric map against the canny map, '
          'whose pixels > 0.1 count as edges; the last column: only its strong pixels, > 0.5)')

    img = figure(rows, args.cell)
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.tobytes())
    print(f'figure: {out} ({img.shape[1]}x{img.shape[0]}, {len(buf) / 1024:.0f} KB)')


if __name__ == '__main__':
    main()
