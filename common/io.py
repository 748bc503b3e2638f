"""Atomic writes (a crash or a full disk never leaves a half-written checkpoint, config or result, and a failed write
is an OSError naming the file), and bounded reads of the files a user hands in (checkpoints, archives, YAML)."""
import errno
import os
import re
import tempfile
from pathlib import Path


# how torch.save's zip writer words a failed write (a full disk, a file size limit)
TORCH_WRITE_FAILED = re.compile(r'PytorchStreamWriter|inline_container|file write failed')
_UMASK = os.umask(0)
os.umask(_UMASK)


def make_folder(path):
    """mkdir -p; a file standing where a folder of the path must be is named as such (mkdir says 'File exists')."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        blocking = next(p for p in [path, *path.parents] if p.exists() and not p.is_dir())
        raise NotADirectoryError(errno.ENOTDIR, 'a file, where a folder is needed', str(blocking)) from None
    return path


def _atomic(path, write):
    path = Path(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; the result gets the usual permissions
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # a failed write names the file it was for, whatever the writer calls it: os names no file for a write to
        # an open file and the temporary for a failed rename, torch.save reports a full disk as a RuntimeError
        if isinstance(e, OSError) and e.filename in (None, tmp):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        if isinstance(e, RuntimeError) and TORCH_WRITE_FAILED.search(str(e)):
            detail = str(e).strip().splitlines()[0][:120]
            raise OSError(errno.EIO, f'writing failed, is the disk full? ({detail})', str(path)) from e
        raise
    return path


def atomic_write(path, write):
    """write(f) into a temporary file beside path, then renamed to path (usual permissions)."""
    return _atomic(path, write)


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
    it holds; a missing or unreadable one gets one line too, and so do a compressed archive that would expand without
    bound (check_archive) and weights with NaN or inf (check_tensors)."""
    import pickle

    import torch

    from common.errors import UserError
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f'{what} file not found: {path} (check the path)')
    check_archive(path, what)
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            obj = torch.load(path, map_location='cpu', weights_only=True)
        check_tensors(obj, path, what)
        return obj
    except UserError:
        raise
    except pickle.UnpicklingError as e:
        names = re.findall(r'GLOBAL ([\w.]+)', str(e))
        if names:
            raise UserError(f'{what} {path} is refused: it holds {", ".join(names[:4])}, which loading would have to '
                            f'run (files are read weights-only); save its state dict alone with torch.save') from e
        detail, cause = 'no torch data in it', e   # torch's own text here suggests weights_only=False: not for these
    except Exception as e:  # noqa: BLE001 - any other failure means an unreadable file
        detail, cause = f'{type(e).__name__}: {str(e).splitlines()[0][:160]}', e
    raise UserError(f'cannot read {what} {path}: {detail} (the file is corrupt or not a torch checkpoint)') from cause


# A file from outside may expand this much when read: compressed zip entries (a torch checkpoint, an npz) hold any
# amount of data in a few bytes, while torch and numpy write their files uncompressed (a factor of ~1)
MAX_EXPANSION, MAX_EXPANDED_BYTES = 32, 512 << 20


def check_archive(path, what='file'):
    """One line for a zip archive (torch checkpoint, npz) whose entries would expand to more than MAX_EXPANSION times
    the file and more than MAX_EXPANDED_BYTES: a zip bomb is refused before anything is decompressed."""
    import zipfile

    from common.errors import UserError
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return   # not a readable archive: its reader says what is wrong
    size = os.path.getsize(path)
    if total > max(MAX_EXPANSION * size, MAX_EXPANDED_BYTES):
        raise UserError(f'{what} {path} is refused: its {size / 2 ** 20:.1f} MB expand to {total / 2 ** 30:.1f} GB '
                        f'when read (compressed entries; torch and numpy write theirs uncompressed): re-save it '
                        f'uncompressed (torch.save / np.savez)')


def check_tensors(obj, path, what='checkpoint', key=''):
    """One line for the first floating tensor or array in obj (nested dicts, lists) with NaN or inf values (a diverged
    run's weights would otherwise surface later, as a failed SVD or a NaN loss), or that claims more elements than its
    data holds beyond MAX_EXPANDED_BYTES (a crafted stride-0 view: bounded reads)."""
    import numpy as np
    import torch

    from common.errors import UserError
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_tensors(v, path, what, f'{key}.{k}' if key else str(k))
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_tensors(v, path, what, f'{key}[{i}]')
        return
    if isinstance(obj, torch.Tensor):
        claimed = obj.numel() * obj.element_size()
        if claimed > MAX_EXPANDED_BYTES and claimed > obj.untyped_storage().nbytes():
            raise UserError(f'{what} {path} is refused: {key} claims {claimed / 2 ** 30:.1f} GB over '
                            f'{obj.untyped_storage().nbytes()} bytes of data')
        bad = int((~torch.isfinite(obj)).sum()) if obj.is_floating_point() or obj.is_complex() else 0
    elif isinstance(obj, np.ndarray) and np.issubdtype(obj.dtype, np.inexact):
        bad = int((~np.isfinite(obj)).sum())
    else:
        return
    if bad:
        size = obj.size if isinstance(obj, np.ndarray) else obj.numel()
        raise UserError(f'{what} {path} holds NaN or inf: {key} ({bad} of {size} values); it was saved from a diverged '
                        f'run or is corrupt: use an earlier snapshot')


# YAML experiment files are a few KB; aliases let a small file stand for an exponentially large structure
MAX_YAML_BYTES, MAX_YAML_VALUES = 1 << 20, 100_000


def load_yaml_bounded(text, source):
    """yaml.safe_load of text from outside, refused in one line when its aliases expand it beyond MAX_YAML_VALUES
    values (a 'billion laughs' file) or it nests deeper than the parser can follow. YAML errors propagate."""
    import yaml

    from common.errors import UserError
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        sizes = {}

        def expanded(node):   # values the node stands for with its aliases expanded (each shared node counted once)
            if id(node) not in sizes:
                children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else \
                    node.value if isinstance(node, yaml.SequenceNode) else []
                sizes[id(node)] = min(1 + sum(expanded(c) for c in children), MAX_YAML_VALUES + 1)
            return sizes[id(node)]
        if root is not None and expanded(root) > MAX_YAML_VALUES:
            raise UserError(f'{source} is refused: its aliases expand it to more than {MAX_YAML_VALUES} values')
        return yaml.safe_load(text)
    except RecursionError:
        raise UserError(f'{source} is refused: it nests deeper than the YAML reader follows') from None
