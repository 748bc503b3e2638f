"""LSP and LSPET's joints.mat (Johnson & Everingham, BMVC 2010 and CVPR 2011): one person per image, 14 joints in
LSP14 order, image px. The two files differ in layout and in what their third value means:
- LSP: `joints` [3,14,2000] (x, y, occluded: 1 = hidden, so visible = 1 - value), images/im0001.jpg ... im2000.jpg;
  the test split is images 1001-2000, the training split 1-1000.
- LSPET: `joints` [14,3,10000] (x, y, visible), images/im00001.jpg ... im10000.jpg; all one split.
"""
from pathlib import Path

import numpy as np

from common.errors import UserError
from data.scenes import report_problems


def read_joints_mat(path, layout):
    """[N,14,3] (x, y, visible 0/1) of either file, from its shape."""
    import scipy.io
    from scipy.io.matlab import MatReadError
    path = Path(path)
    if not path.is_file():
        raise UserError(f'missing {path}; expected layout: {layout}')
    try:
        j = np.asarray(scipy.io.loadmat(str(path))['joints'], np.float64)
    except (ValueError, KeyError, TypeError, OSError, MatReadError) as e:
        raise UserError(f'{path}: not a joints.mat with a "joints" array ({e}); expected layout: {layout}') from e
    if j.ndim == 3 and j.shape[:2] == (3, 14):       # LSP: occlusion flag
        out = j.transpose(2, 1, 0).copy()
        out[:, :, 2] = 1 - out[:, :, 2]
    elif j.ndim == 3 and j.shape[:2] == (14, 3):     # LSPET: visibility flag
        out = j.transpose(2, 0, 1).copy()
    else:
        raise UserError(f'{path}: "joints" has shape {list(j.shape)}, expected [3,14,N] (LSP) or [14,3,N] (LSPET)')
    if not np.isfinite(out).all():
        raise UserError(f'{path}: joints contain NaN/inf')
    out[:, :, 2] = out[:, :, 2] > 0.5
    return out


def benchmark_people(root, names, joints, name):
    """[(image path, (H, W), joints [14,3], image index)] of the images that exist (their size, read from the file
    header, sets the crop); missing or unreadable ones are skipped and named in one warning."""
    from PIL import Image
    people, problems = [], []
    for i, (file, k) in enumerate(zip(names, joints)):
        path = Path(root) / 'images' / file
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, ValueError) as e:
            problems.append(f'{path}: {type(e).__name__}')
            continue
        people.append((path, (h, w), k, i))
    report_problems(name, problems)
    return people
