"""What the benchmarks (tool/bench_*.py) share: interleaved timing and one training step of a model.

Benchmarks print ratios measured side by side in one run: configurations are interleaved (A B C A B C ...) after
warm-up rounds (the first CPU steps build oneDNN kernels, seconds each), so the drifts of a shared machine hit all
of them alike.
"""
import time

import torch

from common.body.body_samples import make_batch
from common.runtime import machine_line, make_scaler, precision_name, to_device
from main.model import Model
from main.trainer import forward_losses, make_optimizer, optimize


def print_machine(amp=False, device=None):
    """The line every benchmark starts with: CPU, its features, threads, and the precision a run actually uses."""
    dev = device or torch.device('cpu')
    print(f'machine: {machine_line(dev)}; --amp here computes in {precision_name(True, dev)}; this run: '
          f'{precision_name(amp, dev)}', flush=True)


def step_args(ap, reps=5):
    """The training-step size options every step benchmark shares (defaults: the published setting)."""
    ap.add_argument('--backbone', default='resnet50')
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--reps', type=int, default=reps)
    ap.add_argument('--vertices', type=int, default=3000, help='procedural body model size')
    return ap


def interleaved(fns, reps, warmup=2):
    """{name: [seconds of each timed call]} of the callables in fns, called round-robin."""
    times = {k: [] for k in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def model_batch(body, cfg, batch_size, seed=0):
    """A training batch for cfg's model (make_batch; a student gets the teacher's edge as 'teacher_edge')."""
    inputs, targets, meta = make_batch(body, batch_size, cfg.model.input_size, cfg.model.focal, cfg.model.camera_3d_size,
                                       cfg.model.bbox_3d_size, 4 if cfg.mode != 'baseline' else 3, seed=seed)
    if cfg.mode == 'student':
        inputs['teacher_edge'] = inputs.pop('edge')
    return inputs, targets, meta


def train_step(cfg, body, batch, device, teacher=None):
    """A callable doing one optimizer step of a fresh Model(cfg) on `batch` (amp and channels_last per
    cfg.train.amp). An edge computed in the loader workers is computed here, serially, as part of the step."""
    model = Model(cfg, body, teacher=teacher).to(device).train()
    if cfg.train.amp:
        model = model.to(memory_format=torch.channels_last)
    opt, scaler = make_optimizer(model, cfg), make_scaler(cfg.train.amp, device)
    inputs, targets, meta = (to_device(b, device, cfg.train.amp) for b in batch)
    loader_edge = model.edge is not None and model.edge.module.in_loader

    def step():
        x = dict(inputs, edge=model.edge.module.batch_numpy(inputs['img'])) if loader_edge else inputs
        optimize(forward_losses(model, x, targets, meta, cfg.train.amp, device)[0], model, opt, scaler)
        sync(device)
    return step
