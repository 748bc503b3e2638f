"""Atomic writes: a crash or a full disk never leaves a half-written checkpoint, config or result."""
import os
import re
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


def _numpy_data_globals():
    """What pickled numpy arrays and scalars name: rebuilding data, nothing callable beyond that (the RNG state of
    older checkpoints of this project, numpy scalars in published snapshots)."""
    import numpy as np
    core = getattr(np, '_core', None) or np.core
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def load_torch_file(path, what='checkpoint'):
    """torch.load of a file a user hands in, on the CPU and weights-only: tensors, plain Python data and numpy
    arrays, never anything whose loading runs code. A file that needs more is refused with one line naming what
    it holds; a missing or unreadable one gets one line too."""
    import pickle

    import torch

    from common.errors import UserError
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f'{what} file not found: {path} (check the path)')
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        names = re.findall(r'GLOBAL ([\w.]+)', str(e))
        if names:
            raise UserError(f'{what} {path} is refused: it holds {", ".join(names[:4])}, which loading would have to '
                            f'run (files are read weights-only); save its state dict alone with torch.save') from None
        detail = 'no torch data in it'   # torch's own text here suggests weights_only=False: not for these files
    except Exception as e:  # noqa: BLE001 - any other failure means an unreadable file
        detail = f'{type(e).__name__}: {str(e).splitlines()[0][:160]}'
    raise UserError(f'cannot read {what} {path}: {detail} (the file is corrupt or not a torch checkpoint)')
