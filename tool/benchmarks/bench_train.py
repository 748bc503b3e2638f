"""Training-step cost of the baseline, the teacher and the student with each distillation loss, measured side
by side in one run (ratios; absolute times only mean something on a quiet or GPU machine).

    python tool/benchmarks/bench_train.py                       # SEFD's model (ResNet-50, 256 px), batch 8, --amp
    python tool/benchmarks/bench_train.py --losses log_softmax_l1,gc --reps 3 --no-amp
    python tool/benchmarks/bench_train.py --gpu 0

The student step = its Canny edge (kornia, in the model) + a frozen teacher forward (no grad) + its own forward
and backward + the distillation loss; the floor of student/baseline is about 1 + (teacher forward / baseline
step), ~1.33. Configurations are interleaved (A B C ... A B C ...) after warm-up so drifts hit all alike.
"""
import argparse
import statistics

import torch

from common.body.smpl import get_body_model
from common.errors import run_cli
from common.registry import DISTILL_LOSSES
from common.runtime import parse_gpus
from main.config import load_config
from main.model import Model
from tool.benchmarks.timing import interleaved, model_batch, print_machine, step_args, train_step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_args(ap)
    ap.add_argument('--no-amp', dest='amp', action='store_false')
    ap.add_argument('--losses', default=','.join(['none', *DISTILL_LOSSES.names()]),
                    help='none = the edge-only student')
    ap.add_argument('--gpu', default='-1', help='GPU id (default: the CPU)')
    args = ap.parse_args()
    print_machine(args.amp)
    gpus = parse_gpus(args.gpu)
    device = torch.device('cuda', gpus[0]) if gpus else torch.device('cpu')
    torch.manual_seed(0)
    base = [f'model.backbone={args.backbone}', f'model.input_size={args.size}',
            f'model.procedural_vertices={args.vertices}', f'train.amp={str(args.amp).lower()}']
    body = get_body_model('neutral', None, args.vertices)
    tcfg = load_config(None, base + ['mode=teacher', 'edge.type=smpl_overlap'])
    teacher = Model(tcfg, body).to(device)
    if args.amp:
        teacher = teacher.to(memory_format=torch.channels_last)
    bcfg = load_config(None, base)
    runs = {'baseline': train_step(bcfg, body, model_batch(body, bcfg, args.batch), device),
            'teacher': train_step(tcfg, body, model_batch(body, tcfg, args.batch), device)}
    for loss in args.losses.split(','):
        cfg = load_config(None, base + ['mode=student', 'edge.type=canny', f'distill.loss={loss}',
                                        'distill.teacher_ckpt=bench'])   # the default stages 3, 4 for every loss
        runs[f'student {loss}'] = train_step(cfg, body, model_batch(body, cfg, args.batch), device,
                                             None if loss == 'none' else teacher)
    times = interleaved(runs, args.reps)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'{args.backbone}, {args.size} px, batch {args.batch}, amp {args.amp}, {device}, '
          f'{torch.get_num_threads()} threads, {args.reps} interleaved reps (median s/step; ratio to the baseline):')
    for k, v in med.items():
        print(f'  {k:28s} {v:8.3f}  x{v / med["baseline"]:.2f}   (all: {" ".join(f"{x:.2f}" for x in times[k])})')
    students = {k: v / med['baseline'] for k, v in med.items() if k.startswith('student')}
    worst = max(students, key=students.get)
    print(f'student/baseline: {min(students.values()):.2f} .. {max(students.values()):.2f} (worst: {worst}; '
          f'floor: 1 + one frozen teacher forward / the baseline step)')


if __name__ == '__main__':
    run_cli(main)
