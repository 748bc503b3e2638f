"""Training-step cost of the baseline, measured side by side in one run (ratios; absolute times only
mean something on a quiet or GPU machine).

    python tool/benchmarks/bench_model.py                      # SEFD's model (ResNet-50, 256 px), batch 8
    python tool/benchmarks/bench_model.py --backbone resnet18 --size 128 --batch 4 --reps 3

Prints, for the same batch: full baseline step fp32 vs --amp (the precision common/runtime.py picks, +
channels_last), and the full step vs the bare backbone forward+backward (what the heads, the body model and the losses add to the backbone).
Configurations are interleaved (A B C A B C ...) so drifts of a shared machine hit all of them alike.
"""
import argparse
import statistics

import torch

from common.body.body_samples import make_batch
from common.body.smpl import body_model
from common.errors import run_cli
from main.config import load_config
from main.model import Model
from tool.benchmarks.timing import interleaved, print_machine, step_args, train_step


def backbone_fn(model, img):
    bb = model.backbone

    def step():
        bb.zero_grad(set_to_none=True)
        c4 = bb(bb(img), skip_early=True)[-1]
        c4.float().mean().backward()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_args(ap)
    args = ap.parse_args()
    print_machine(True)
    torch.manual_seed(0)
    base = [f'model.backbone={args.backbone}', f'model.input_size={args.size}',
            f'model.procedural_vertices={args.vertices}']
    cfg, cpu = load_config(None, base), torch.device('cpu')
    body = body_model(cfg.model)
    batch = make_batch(body, args.batch, args.size)

    amp = load_config(None, [*base, 'train.amp=true'])
    runs = {'step fp32': train_step(cfg, body, batch, cpu),
            'step --amp (+ channels_last)': train_step(amp, body, batch, cpu),
            'bare backbone fwd+bwd fp32': backbone_fn(Model(cfg, body).train(), batch[0]['img'])}
    times = interleaved(runs, args.reps)

    print(f'{args.backbone}, {args.size} px, batch {args.batch}, {torch.get_num_threads()} threads, '
          f'{body.num_vertices} body vertices, {args.reps} interleaved reps (median s/step):')
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f'  {k:34s} {v:8.3f}  (all: {" ".join(f"{x:.2f}" for x in times[k])})')
    full, amp_t, bare = med['step fp32'], med['step --amp (+ channels_last)'], med['bare backbone fwd+bwd fp32']
    print(f'speedup amp vs fp32:              x{full / amp_t:.2f}')
    print(f'full step / bare backbone (fp32): {full / bare:.2f}  (1 = all time in the backbone; best-of ratio '
          f'{min(times["step fp32"]) / min(times["bare backbone fwd+bwd fp32"]):.2f})')


if __name__ == '__main__':
    run_cli(main)
