"""Read a dataset in the 3DPW layout back and check every record (`make_synthetic.py --check DIR`).

Each problem is one line naming the image/annotation; the check goes on with the rest and counts them.
Checked: the JSON parses; images have id, file_name, sequence, width, height and a camera
(cam_param.focal[2], princpt[2], finite, focal > 0); the JPEG exists with that size; annotations have
finite SMPL pose[72] / shape[10] / trans[3] and a known gender, an 18x3 openpose_result with confidences
in [0, 1], a 24x2 joint_img; and, independently of the generator, the SMPL mesh through the body model
and the image's camera projects onto the annotation's bbox and joint_img.
"""
import functools
import json
from pathlib import Path

import numpy as np

SPLITS = ('train', 'validation', 'test')


def _why(e):
    """A record's problem in words: a missing field by its name, else the error's message."""
    return f'missing field {e}' if isinstance(e, KeyError) else str(e)


def _finite(x, n):
    a = np.asarray(x, np.float64).reshape(-1)
    return a if a.size == n and np.isfinite(a).all() else None


def check_dataset(root, model_dir=None, max_lines=30, print_fn=print):
    """Returns (number of annotations checked, list of problem lines)."""
    import torch
    from common.body.smpl import get_body_model
    bodies = functools.cache(lambda gender: get_body_model(gender, model_dir))

    root = Path(root)
    problems, checked = [], 0
    for split in SPLITS:
        path = root / 'data' / f'3DPW_latest_{split}.json'
        if not path.is_file():
            continue
        try:
            db = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            problems.append(f'{path}: not valid JSON ({e})')
            continue
        images = {}
        for img in db.get('images', []):
            key = f'{split} image {img.get("id")}'
            try:
                cam = img['cam_param']
                focal = _finite(cam['focal'], 2)
                princpt = _finite(cam['princpt'], 2)
                if focal is None or princpt is None or (focal <= 0).any():
                    raise ValueError('cam_param focal/princpt must be 2 finite numbers each, focal > 0')
                w, h = int(img['width']), int(img['height'])
                f = root / 'imageFiles' / img['sequence'] / img['file_name']
            except (KeyError, ValueError, TypeError) as e:
                problems.append(f'{key}: {_why(e)}')
                continue
            if not f.is_file():
                problems.append(f'{key}: image file {f} missing')
            else:
                import cv2
                im = cv2.imread(str(f))
                if im is None or im.shape[:2] != (h, w):
                    problems.append(f'{key}: {f} unreadable or not {w}x{h}')
            images[img['id']] = (focal, princpt, w, h)
        for ann in db.get('annotations', []):
            key = f'{split} annotation {ann.get("id")} (image {ann.get("image_id")})'
            checked += 1
            if ann.get('image_id') not in images:
                problems.append(f'{key}: its image is missing or has no usable camera')
                continue
            focal, princpt, w, h = images[ann['image_id']]
            try:
                sp = ann['smpl_param']
                pose, shape, trans = _finite(sp['pose'], 72), _finite(sp['shape'], 10), _finite(sp['trans'], 3)
                if pose is None or shape is None or trans is None:
                    raise ValueError('smpl_param pose[72]/shape[10]/trans[3] must be finite numbers')
                gender = sp.get('gender', 'neutral')
                op = np.asarray(ann['openpose_result'], np.float64)
                if op.size != 54 or not np.isfinite(op).all():
                    raise ValueError(f'openpose_result must be 18x3 finite numbers, got {op.size} values')
                op = op.reshape(18, 3)
                if (op[:, 2] < 0).any() or (op[:, 2] > 1).any():
                    raise ValueError('openpose_result confidences outside [0, 1]')
                jimg = _finite(ann['joint_img'], 48)
                bbox = _finite(ann['bbox'], 4)
                if jimg is None or bbox is None:
                    raise ValueError('joint_img (24x2) and bbox (4) must be finite numbers')
            except (KeyError, ValueError, TypeError) as e:
                problems.append(f'{key}: {_why(e)}')
                continue
            try:
                model = bodies(gender)
            except ValueError as e:
                problems.append(f'{key}: {e}')
                continue
            with torch.no_grad():
                v, j = model(torch.tensor(pose[None], dtype=torch.float32), torch.tensor(shape[None], dtype=torch.float32),
                             torch.tensor(trans[None], dtype=torch.float32))
            v, j = v[0].double().numpy(), j[0].double().numpy()
            if not np.isfinite(v).all() or (v[:, 2] <= 0).any():
                problems.append(f'{key}: the mesh has NaN vertices or is behind the camera')
                continue
            uv = v[:, :2] / v[:, 2:] * focal + princpt
            x0, y0 = np.clip(uv.min(0), 0, [w, h])
            x1, y1 = np.clip(uv.max(0), 0, [w, h])
            if np.abs(np.array([x0, y0, x1 - x0, y1 - y0]) - bbox).max() > 2.0:
                problems.append(f'{key}: bbox {bbox.round(1).tolist()} is not the projected mesh\'s '
                                f'{np.round([x0, y0, x1 - x0, y1 - y0], 1).tolist()}')
            juv = j[:24, :2] / j[:24, 2:] * focal + princpt
            if np.abs(juv - jimg.reshape(24, 2)).max() > 1.0:
                problems.append(f'{key}: joint_img differs from the projected SMPL joints by '
                                f'{np.abs(juv - jimg.reshape(24, 2)).max():.1f} px')
    for line in problems[:max_lines]:
        print_fn(line)
    if len(problems) > max_lines:
        print_fn(f'... and {len(problems) - max_lines} more')
    return checked, problems
