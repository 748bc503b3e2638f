"""What the machine can do and how a process uses it: the precision `--amp` picks, autocast and the scaler,
devices and the process group, moving batches, RNG states.

bf16 autocast pays only where the hardware computes bf16 natively (x86 CPUs with AVX-512 BF16 or AMX, Arm CPUs
with BF16, recent GPUs). Elsewhere oneDNN emulates it: measured 2x slower than fp32 on an AVX-512 Xeon without
BF16 and 18x on an AVX2-only EPYC, although `torch.ops.mkldnn._is_mkldnn_bf16_supported()` says True on the
former. So `--amp` is decided per device and says what it chose.
"""
import contextlib
import datetime
import functools
import os
import platform
import random
import socket
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from common.errors import UserError

# /proc/cpuinfo flags that mean native bf16 arithmetic (x86: AVX-512 BF16, AMX; Arm: the BF16 extension)
NATIVE_BF16_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')
REPORTED_FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'asimd', 'sve', 'bf16')


@functools.lru_cache(maxsize=None)
def cpu_flags():
    """The CPU's feature flags (a frozenset; empty where /proc/cpuinfo cannot be read)."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key = line.split(':', 1)[0].strip().lower()
        if key in ('flags', 'features'):
            return frozenset(line.split(':', 1)[1].split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_name():
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features():
    """The flags that decide CPU speed and precision here, e.g. 'avx2 avx512f avx512_vnni' ('none known')."""
    have = [f for f in REPORTED_FLAGS if f in cpu_flags()]
    return ' '.join(have) or 'none known'


def cpu_has_native_bf16():
    return any(f in cpu_flags() for f in NATIVE_BF16_FLAGS) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def amp_choice(device):
    """(dtype, why) of `--amp` on `device`: bf16 where it is computed natively, fp16 (with a GradScaler) on GPUs
    without bf16, else None: fp32."""
    if device.type == 'cuda':
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16, f'bf16 ({torch.cuda.get_device_name(device)} computes it natively)'
        return torch.float16, f'fp16 with a GradScaler ({torch.cuda.get_device_name(device)} has no native bf16)'
    if device.type == 'cpu' and cpu_has_native_bf16():
        return torch.bfloat16, 'bf16 (the CPU has native bf16: ' + \
            ' '.join(f for f in NATIVE_BF16_FLAGS if f in cpu_flags()) + ')'
    if device.type == 'cpu':
        return None, (f'fp32: this CPU ({cpu_name()}; {cpu_features()}) has no native bf16, where bf16 autocast is '
                      f'emulated and slower than fp32')
    return None, f'fp32: no autocast rule for {device.type}'


def amp_dtype(device):
    """The autocast dtype of `--amp` on `device`, or None for fp32."""
    return amp_choice(device)[0]


def precision_name(amp, device):
    """'fp32' / 'bf16' / 'fp16': what a run with train.amp=amp actually computes in."""
    dtype = amp_dtype(device) if amp else None
    return {torch.bfloat16: 'bf16', torch.float16: 'fp16'}.get(dtype, 'fp32')


def machine_line(device=None):
    """One line for benchmark headers: CPU, its features, threads, torch, device."""
    dev = device or torch.device('cpu')
    gpu = f', {torch.cuda.get_device_name(dev)}' if dev.type == 'cuda' else ''
    return (f'{cpu_name()} ({cpu_features()}; native bf16: {"yes" if cpu_has_native_bf16() else "no"}), '
            f'{torch.get_num_threads()} threads, torch {torch.__version__}{gpu}')


def amp_context(enabled, device):
    """Autocast in the precision --amp picks for the device (common/runtime.py); nothing where that is fp32."""
    dtype = amp_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(enabled, device):
    """A GradScaler only where fp16 is used; bf16 has fp32's range and needs none."""
    use = enabled and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=use)


def to_device(tree, device, channels_last=False):
    if isinstance(tree, dict):
        return {k: to_device(v, device, channels_last) for k, v in tree.items()}
    if torch.is_tensor(tree):
        t = tree.to(device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t
    return tree


def unwrap(model):
    return model.module if isinstance(model, DistributedDataParallel) else model


def rng_state():
    """The RNG states as tensors and plain data, so checkpoints load weights-only."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {'torch': torch.get_rng_state(), 'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                       int(has_gauss), float(gauss)],
             'python': random.getstate()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    kind, keys, pos, has_gauss, gauss = state['numpy']   # older checkpoints hold numpy's own tuple
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available() and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


def parse_gpus(spec):
    """'0,1' or '0-3' -> [0, 1, ...]; '' -> GPU 0 if there is one, else [] (CPU); '-1' or 'cpu' -> []."""
    if spec in ('-1', 'cpu'):
        return []
    if not spec:
        return [0] if torch.cuda.is_available() else []
    ids = []
    try:
        for part in spec.split(','):
            a, _, b = part.partition('-')
            ids += list(range(int(a), int(b) + 1)) if b else [int(a)]
    except ValueError:
        raise UserError(f"--gpu {spec!r}: give ids like '0', '0,1' or '0-3'") from None
    if ids and not torch.cuda.is_available():
        raise UserError(f'--gpu {spec} asked for GPUs but torch sees none; drop --gpu to run on the CPU')
    if ids and max(ids) >= torch.cuda.device_count():
        raise UserError(f'--gpu {spec}: only {torch.cuda.device_count()} GPU(s) visible')
    return ids


def init_process(rank, world_size, gpu=None, port=None, timeout_s=600):
    """Device of this rank (GPU `gpu` or the CPU), with the process group joined when there are several.
    A collective waits at most timeout_s for a rank that stopped answering."""
    device = torch.device('cuda', gpu) if gpu is not None else torch.device('cpu')
    if gpu is not None:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        if port:  # our own spawn; torchrun sets MASTER_ADDR/PORT itself
            os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
            os.environ.setdefault('MASTER_PORT', str(port))
        dist.init_process_group('nccl' if gpu is not None else 'gloo', rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    return device


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
