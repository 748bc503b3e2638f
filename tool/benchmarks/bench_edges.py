"""Cost of the student edge maps, measured side by side in one run (ratios; absolute times only mean something
on a quiet or GPU machine).

    python tool/benchmarks/bench_edges.py                       # 256 px crops; student step: ResNet-50, 256 px, batch 8
    python tool/benchmarks/bench_edges.py --reps 3 --step-backbone resnet18 --step-size 128 --step-batch 4
    python tool/benchmarks/bench_edges.py --no-step             # the edge maps only

Prints, on the CPU (and on the GPU when there is one): ms per 256x256 crop (batch 1) and per batch of 8 for
canny (kornia: SEFD's NMS magnitude, batched in the model; opencv: binary edges per sample, what a loader
worker computes), rcf, hed, pidinet (converted to vanilla convs) and see; then the distilled student's
training step (with its frozen teacher) for each edge type, as a ratio to the kornia-Canny student's step.
The learned nets carry random weights (the cost does not depend on them). Configurations are interleaved
(A B C A B C ...) after a warm-up, so drifts of a shared machine hit all of them alike.
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from common.errors import run_cli
from tool.benchmarks.timing import interleaved, print_machine, sync

LEARNED = ('rcf', 'hed', 'pidinet', 'see')
EDGES = ('canny', 'canny_opencv') + LEARNED


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    p.add_argument('--size', type=int, default=256, help='crop size of the edge timings')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first (oneDNN primitive caches)')
    p.add_argument('--no-step', action='store_true', help='skip the student training steps')
    p.add_argument('--step-backbone', default='resnet50')
    p.add_argument('--step-size', type=int, default=256)
    p.add_argument('--step-batch', type=int, default=8)
    p.add_argument('--vertices', type=int, default=3000, help='procedural body model size')
    return p.parse_args(argv)


def edge_cfg(kind, weights=''):
    from main.config import load_config
    impl = 'opencv' if kind == 'canny_opencv' else 'kornia'
    kind = 'canny' if kind.startswith('canny') else kind
    return load_config(None, ['mode=student', f'edge.type={kind}', f'edge.canny_impl={impl}',
                              f'edge.weights={weights}']).edge


def write_random_weights(folder):
    """Random-init weights of each learned net in its official format, so build_edge takes its real path."""
    from tool.experiments.train_edge import build
    paths = {}
    for kind in LEARNED:
        paths[kind] = Path(folder) / f'{kind}.pth'
        torch.save(build(kind, training=True).official_checkpoint(), paths[kind])
    return paths


def edge_fn(est, img, device):
    """One call of the estimator on img, as the student computes it (loader-side estimators: per sample)."""
    if est.in_loader:
        return lambda: est.batch_numpy(img)
    return lambda: (est(img), sync(device))


def bench_edge_maps(paths, args, device):
    from common.edges.base import build_edge
    g = torch.Generator().manual_seed(0)
    one = torch.rand(1, 3, args.size, args.size, generator=g).to(device)
    many = torch.rand(args.batch, 3, args.size, args.size, generator=g).to(device)
    fns = {}
    for kind in EDGES:
        est = build_edge(edge_cfg(kind, paths.get(kind, ''))).to(device).eval()
        fns[(kind, 1)] = edge_fn(est, one, device)
        fns[(kind, args.batch)] = edge_fn(est, many, device)
    times = interleaved(fns, args.reps, args.warmup)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    best = {k: min(v) * 1000 for k, v in times.items()}
    key = ('canny', args.batch)
    print(f'\nedge maps on {device} ({torch.get_num_threads()} threads), {args.size}x{args.size}, '
          f'median of {args.reps} interleaved reps (best-of: the least disturbed on a shared machine):')
    print(f'  {"edge":14s} {"ms/crop (b=1)":>14s} {f"ms/batch {args.batch}":>14s} {"ms/crop in batch":>17s} '
          f'{"x kornia canny":>15s} {"(best-of)":>10s}')
    for kind in EDGES:
        b1, bn = med[(kind, 1)], med[(kind, args.batch)]
        print(f'  {kind:14s} {b1:14.1f} {bn:14.1f} {bn / args.batch:17.1f} {bn / med[key]:15.2f} '
              f'{best[(kind, args.batch)] / best[key]:10.2f}')


def bench_student_steps(paths, args):
    from common.body.smpl import get_body_model
    from main.config import load_config
    from main.model import Model
    from tool.benchmarks.timing import model_batch, train_step
    cpu = torch.device('cpu')
    common = [f'model.backbone={args.step_backbone}', f'model.input_size={args.step_size}',
              f'model.procedural_vertices={args.vertices}']
    body = get_body_model('neutral', None, args.vertices)
    teacher = Model(load_config(None, common + ['mode=teacher', 'edge.type=smpl_overlap']), body)
    fns = {}
    for kind in EDGES:
        impl = 'opencv' if kind == 'canny_opencv' else 'kornia'
        cfg = load_config(None, common + ['mode=student', f'edge.type={"canny" if kind.startswith("canny") else kind}',
                                          f'edge.canny_impl={impl}', f'edge.weights={paths.get(kind, "")}',
                                          'distill.loss=log_softmax_l1', 'distill.teacher_ckpt=x'])
        fns[kind] = train_step(cfg, body, model_batch(body, cfg, args.step_batch), cpu, teacher)
    times = interleaved(fns, args.reps, args.warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(f'\ndistilled student training step (teacher included), {args.step_backbone}, {args.step_size} px, '
          f'batch {args.step_batch}, CPU fp32, median of {args.reps} interleaved reps:')
    for kind in EDGES:
        note = '  (edges computed serially here; a loader computes them in its workers)' \
            if kind == 'canny_opencv' else ''
        print(f'  {kind:14s} {med[kind]:8.2f} s/step   x{med[kind] / med["canny"]:.2f} of the canny student '
              f'(best-of x{best[kind] / best["canny"]:.2f}){note}')


def main(argv=None):
    args = parse_args(argv)
    print_machine()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_random_weights(tmp)
        devices = [torch.device('cpu')] + ([torch.device('cuda')] if torch.cuda.is_available() else [])
        for device in devices:
            bench_edge_maps(paths, args, device)
        if not args.no_step:
            bench_student_steps(paths, args)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
