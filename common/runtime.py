"""What the machine can do, and the precision `--amp` picks from it.

bf16 autocast pays only where the hardware computes bf16 natively (x86 CPUs with AVX-512 BF16 or AMX, Arm CPUs
with BF16, recent GPUs). Elsewhere oneDNN emulates it: measured 2x slower than fp32 on an AVX-512 Xeon without
BF16 and 18x on an AVX2-only EPYC, although `torch.ops.mkldnn._is_mkldnn_bf16_supported()` says True on the
former. So `--amp` is decided per device and says what it chose.
"""
import functools
import platform
from pathlib import Path

import torch

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
