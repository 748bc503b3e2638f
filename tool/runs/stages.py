"""Running main/train.py and main/test.py as stages of a larger job (tool/quickstart.py, tool/experiments/ablation.py,
tool/benchmarks/bench_learning.py): resumable training in a stage folder, the result file of a test, key=value
overrides.

A stage folder holds the experiment folder(s) train.py makes in it (`output_dir=<stage folder>`). A stage is
trained when its experiment has the snapshot of its last epoch; an experiment with any checkpoint continues with
`train.py --continue --exp_dir`; experiment folders without a checkpoint (a run killed before its first save)
are removed and the training starts again.
"""
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from common.errors import UserError
from common.paths import ROOT
from main.checkpoint import snapshot_name

METRICS = ('mpjpe', 'pa_mpjpe', 'mpvpe')
METRIC_NAMES = {'mpjpe': 'MPJPE', 'pa_mpjpe': 'PA-MPJPE', 'mpvpe': 'MPVPE'}


def override(key, value):
    """key=value as train.py reads it (YAML flow style for lists and mappings)."""
    if isinstance(value, (list, tuple, dict)):
        text = yaml.safe_dump(value if not isinstance(value, tuple) else list(value), default_flow_style=True,
                              width=10 ** 6).strip()
    elif isinstance(value, bool):
        text = 'true' if value else 'false'
    elif value is None:
        text = ''
    else:
        text = str(value)
    return f'{key}={text}'


def rel(path):
    """A path as commands and state files name it: relative to the repository when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def find_exp(stage_dir):
    """The experiment folder train.py made in a stage folder: the newest one holding a checkpoint, or None."""
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return None
    exps = sorted((p for p in stage_dir.iterdir() if (p / 'config.yaml').is_file()), key=lambda p: p.name)
    with_ckpt = [p for p in exps if any((p / 'checkpoint').glob('*.pth.tar'))]
    return with_ckpt[-1] if with_ckpt else None


def last_snapshot(exp, epochs):
    """The snapshot of an experiment's last epoch (epochs - 1), written yet or not."""
    return Path(exp) / 'checkpoint' / snapshot_name(epochs - 1)


def trained_snapshot(stage_dir, epochs):
    """The last-epoch snapshot of the stage's experiment once its training has finished, else None."""
    exp = find_exp(stage_dir)
    path = last_snapshot(exp, epochs) if exp is not None else None
    return path if path is not None and path.is_file() else None


def run_script(script, argv, log=None, env=None):
    """python <script> <argv> from the repository root; output to the terminal, or appended to `log`.
    Returns the exit code (a KeyboardInterrupt propagates)."""
    cmd = [sys.executable, str(ROOT / script)] + [str(a) for a in argv]
    # PYTHONPATH: the script imports this clone, whichever clone the editable install points to
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=str(ROOT), **(env or {}))
    if log is None:
        return subprocess.call(cmd, cwd=ROOT, env=env)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd[1:])}\n')
        f.flush()
        return subprocess.call(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)


def train_stage(stage_dir, argv, epochs, device_flags=(), log=None, env=None, what='training', say=print):
    """Train into stage_dir (argv: train.py's arguments incl. output_dir=stage_dir), continuing an interrupted
    run; returns the experiment folder. Raises UserError when train.py fails."""
    stage_dir = Path(stage_dir)
    if trained_snapshot(stage_dir, epochs) is not None:
        return find_exp(stage_dir)
    exp = find_exp(stage_dir)
    if stage_dir.is_dir():  # experiment folders train.py made (config.yaml) that a kill left without a checkpoint
        for p in stage_dir.iterdir():
            if p.is_dir() and p != exp and (p / 'config.yaml').is_file() and \
                    not any((p / 'checkpoint').glob('*.pth.tar')):
                shutil.rmtree(p, ignore_errors=True)
    if exp is not None:
        say(f'continuing {rel(exp)}')
        rc = run_script('main/train.py', ['--continue', '--exp_dir', rel(exp), *device_flags], log, env)
    else:
        rc = run_script('main/train.py', [*argv, *device_flags], log, env)
    if rc != 0:
        where = f'; its output is in {log}' if log else ' (its message is above)'
        raise UserError(f'{what} failed: main/train.py exited with code {rc}{where}')
    if trained_snapshot(stage_dir, epochs) is None:
        raise UserError(f'{what}: main/train.py ended without the snapshot of epoch {epochs - 1} in {stage_dir}')
    return find_exp(stage_dir)


def result_path(exp, epochs):
    """The result file main/test.py writes for the last snapshot of an experiment of this project."""
    from main.config import load_saved_config
    from main.test import result_stem
    cfg = load_saved_config(Path(exp) / 'config.yaml')
    return Path(exp) / 'result' / f'{result_stem(cfg, last_snapshot(exp, epochs))}.json'


def is_tested(exp, epochs):
    """Whether the result file of the last snapshot exists and is newer than that snapshot."""
    if exp is None or not last_snapshot(exp, epochs).is_file():
        return False
    path = result_path(exp, epochs)
    return path.is_file() and path.stat().st_mtime >= last_snapshot(exp, epochs).stat().st_mtime


def test_stage(exp, epochs, gpu='', log=None, env=None, what='test'):
    """main/test.py on the last snapshot of exp; returns its result json path."""
    argv = ['--exp_dir', rel(exp), '--test_epoch', epochs - 1] + (['--gpu', gpu.split(',')[0]] if gpu else [])
    rc = run_script('main/test.py', argv, log, env)
    if rc != 0:
        where = f'; its output is in {log}' if log else ' (its message is above)'
        raise UserError(f'{what} failed: main/test.py exited with code {rc}{where}')
    path = result_path(exp, epochs)
    if not path.is_file():
        raise UserError(f'{what}: main/test.py wrote no {path}')
    return path


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def fmt_value(values):
    """'mean ± std' over seeds, or the one value."""
    m, s = mean_std(values)
    return f'{m:.2f} ± {s:.2f}' if len(values) > 1 else f'{m:.2f}'


def machine():
    """The machine in a few words (for reports)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''
    return {'cpu': cpu, 'cores': cores, 'gpu': gpu, 'torch': torch.__version__, 'python': platform.python_version(),
            'load': [round(x, 2) for x in os.getloadavg()] if hasattr(os, 'getloadavg') else []}


def fmt_time(seconds):
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'
