"""How the student's two Canny implementations differ, on training-like crops
(values; speed: tool/benchmarks/bench_edges.py).

    python tool/experiments/compare_canny.py                          # crops of data/Synthetic (test split), 256 px
    python tool/experiments/compare_canny.py --dataset-root DIR --size 128 --num 64

kornia (the default, SEFD's): the NMS-thinned gradient magnitude, continuous, not thresholded, 5x5 max filter.
opencv: binary hysteresis edges (same grayscale, blur, Sobel and thresholds), 5x5 dilation, computed in the loader.
Printed: value statistics of each map, how much of each map's support the other covers, and how the binary
kornia hysteresis edges and OpenCV's edges agree before dilation (so the thresholds are the same).
"""
import argparse

import numpy as np
import torch

from common.edges.canny import canny_edge_map, opencv_canny, to_grayscale
from common.errors import run_cli


def crops(root, size, num):
    """Test crops of the synthetic set as the test loader makes them: [N,3,S,S] in [0,1]."""
    from data.dataset import get_dataset_class
    from main.config import load_config
    cfg = load_config(None, [f'data.root={root}', f'model.input_size={size}', 'data.test_set=Synthetic'])
    ds = get_dataset_class('Synthetic')(cfg, 'test')
    idx = np.linspace(0, len(ds) - 1, min(num, len(ds))).astype(int)
    samples = (ds[int(i)] for i in idx)
    return torch.stack([s[0]['img'] for s in samples if s is not None])   # None: an unreadable image, left out


def kornia_binary(img, low=0.1, high=0.2):
    import kornia
    return kornia.filters.canny(to_grayscale(img), low, high)[1]


def near(mask, r):
    return torch.nn.functional.max_pool2d(mask.float(), 2 * r + 1, 1, r) > 0 if r else mask > 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dataset-root', default='', help='folder holding Synthetic/ (default: data/)')
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--num', type=int, default=64)
    args = ap.parse_args(argv)
    img = crops(args.dataset_root, args.size, args.num)
    k = canny_edge_map(img, dilation=5)
    o = torch.stack([torch.from_numpy(opencv_canny(x.permute(1, 2, 0).numpy() * 255))[None] for x in img])
    kb = kornia_binary(img) > 0
    ob = torch.stack([torch.from_numpy(opencv_canny(x.permute(1, 2, 0).numpy() * 255, dilation=1))[None] for x in img]) > 0

    print(f'{len(img)} test crops of the synthetic set, {args.size} px')
    nz = k[k > 0]
    print(f'kornia magnitude (5x5 max): non-zero {float((k > 0).float().mean()):.1%} of pixels; values mean '
          f'{float(nz.mean()):.3f}, median {float(nz.median()):.3f}, p99 {float(torch.quantile(nz, 0.99)):.3f}, '
          f'max {float(k.max()):.3f}; {float((k > 1).float().mean()):.2%} of pixels above 1')
    print(f'opencv edges (5x5 dilation): {{0, 1}}; non-zero {float(o.mean()):.1%} of pixels')
    print(f'opencv support inside kornia support: {float(((o > 0) & (k > 0)).sum() / (o > 0).sum()):.1%}; kornia '
          f'support inside opencv support: {float(((o > 0) & (k > 0)).sum() / (k > 0).sum()):.1%}')
    for r in (0, 1):
        p = float((ob & near(kb, r)).sum() / ob.sum())
        q = float((kb & near(ob, r)).sum() / kb.sum())
        print(f'binary Canny edges before dilation, within {r} px: {p:.1%} of OpenCV\'s are kornia edges, {q:.1%} of '
              f'kornia\'s are OpenCV edges')


if __name__ == '__main__':
    run_cli(main)
