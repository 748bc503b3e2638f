"""Training-step cost of the baseline, the teacher and the student with each distillation loss, measured side
by side in one run (ratios; absolute times only mean something on a quiet or GPU machine).

    python tool/bench_train.py                       # ResNet-50, 256 px, batch 8, --amp (the issue's setting)
    python tool/bench_train.py --losses log_softmax_l1,gc --reps 3 --no-amp
    python tool/bench_train.py --gpu 0

The student step = its Canny edge (kornia, in the model) + a frozen teacher forward (no grad) + its own forward
and backward + the distillation loss; the floor of student/baseline is about 1 + (teacher forward / baseline
step), ~1.33. Configurations are interleaved (A B C ... A B C ...) after warm-up so drifts hit all alike.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common.nets.distill import DISTILL_LOSS_NAMES  # noqa: E402
from common.utils.body_samples import make_batch  # noqa: E402
from common.utils.smpl import get_body_model  # noqa: E402
from main.config import load_config  # noqa: E402
from main.model import Model  # noqa: E402
from main.trainer import forward_losses, make_optimizer, make_scaler, optimize, parse_gpus, to_device  # noqa: E402


def make_step(cfg, body, batch, device, teacher=None):
    model = Model(cfg, body, teacher=teacher).to(device).train()
    if cfg.train.amp:
        model = model.to(memory_format=torch.channels_last)
    opt, scaler = make_optimizer(model, cfg), make_scaler(cfg.train.amp, device)
    inputs, targets, meta = (to_device(b, device, cfg.train.amp) for b in batch)

    def step():
        optimize(forward_losses(model, inputs, targets, meta, cfg.train.amp, device)[0], model, opt, scaler)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backbone', default='resnet50')
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--no-amp', dest='amp', action='store_false')
    ap.add_argument('--losses', default=','.join(DISTILL_LOSS_NAMES), help='none = the edge-only student')
    ap.add_argument('--gpu', default='-1', help='GPU id (default: the CPU)')
    ap.add_argument('--vertices', type=int, default=3000, help='procedural body model size')
    args = ap.parse_args()
    gpus = parse_gpus(args.gpu)
    device = torch.device('cuda', gpus[0]) if gpus else torch.device('cpu')
    torch.manual_seed(0)
    base = [f'model.backbone={args.backbone}', f'model.input_size={args.size}',
            f'model.procedural_vertices={args.vertices}', f'train.amp={str(args.amp).lower()}']
    body = get_body_model('neutral', None, args.vertices)
    b3 = make_batch(body, args.batch, args.size)
    b4 = make_batch(body, args.batch, args.size, in_channels=4)
    student_b = ({**{k: v for k, v in b4[0].items() if k != 'edge'}, 'teacher_edge': b4[0]['edge']}, b4[1], b4[2])

    tcfg = load_config(None, base + ['mode=teacher', 'edge.type=smpl_overlap'])
    teacher = Model(tcfg, body).to(device)
    if args.amp:
        teacher = teacher.to(memory_format=torch.channels_last)
    runs = {'baseline': make_step(load_config(None, base), body, b3, device),
            'teacher': make_step(tcfg, body, b4, device)}
    for loss in args.losses.split(','):
        cfg = load_config(None, base + ['mode=student', 'edge.type=canny', f'distill.loss={loss}',
                                        'distill.teacher_ckpt=bench', 'distill.stages=[3,4]', 'distill.weights=[1,2]'] +
                          (['distill.stages=[2,3,4]', 'distill.weights=[1,1,2]'] if loss == 'fsp' else []))
        runs[f'student {loss}'] = make_step(cfg, body, student_b, device, teacher=None if loss == 'none' else teacher)

    times = {k: [] for k in runs}
    for _ in range(2):  # warm-up: allocator, oneDNN primitive caches (one round is not enough on CPU)
        for fn in runs.values():
            fn()
    for _ in range(args.reps):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'{args.backbone}, {args.size} px, batch {args.batch}, amp {args.amp}, {device}, '
          f'{torch.get_num_threads()} threads, {args.reps} interleaved reps (median s/step; ratio to the baseline):')
    for k, v in med.items():
        print(f'  {k:28s} {v:8.3f}  x{v / med["baseline"]:.2f}   (all: {" ".join(f"{x:.2f}" for x in times[k])})')
    students = {k: v / med['baseline'] for k, v in med.items() if k.startswith('student')}
    worst = max(students, key=students.get)
    print(f'student/baseline: {min(students.values()):.2f} .. {max(students.values()):.2f} (worst: {worst}; '
          f'target <= 1.45)')


if __name__ == '__main__':
    main()
