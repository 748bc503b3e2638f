"""Atomic writes: a crash or a full disk never leaves a half-written checkpoint, config or result."""
import os
import tempfile
from pathlib import Path


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; the result gets the usual permissions
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data):
    return _atomic(path, lambda f: f.write(data))


def atomic_write_text(path, text):
    return atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj, path):
    import torch
    return _atomic(path, lambda f: torch.save(obj, f))


def atomic_np_save(path, **arrays):
    """np.savez to `path` atomically (np.savez would append .npz to a temporary name)."""
    import numpy as np
    return _atomic(path, lambda f: np.savez(f, **arrays))
