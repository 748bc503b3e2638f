"""Evaluation metrics: the one place MPJPE, PA-MPJPE, MPVPE and the 3DPW protocol, and the 2D keypoint metrics of
SEFD's other benchmarks (COCO keypoint AP through pycocotools, PCKh), are defined.

Per-sample functions take [B,N,3] (any leading dims) torch tensors or numpy arrays and return one
value per sample, computed in float64, in the input units times `scale` (scale=1000 for m -> mm).
torch in -> torch out, numpy in -> numpy out.
"""
from collections import defaultdict

import numpy as np
import torch

from common.body.joint_sets import H36M17, H36M_EVAL14
from common.geometry.transforms import procrustes_align


def _as_tensor(x):
    """numpy / scipy.sparse / torch -> float64 torch tensor, and whether the input was torch."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64), True
    if hasattr(x, 'toarray'):  # scipy sparse regressors
        x = x.toarray()
    return torch.from_numpy(np.asarray(x, dtype=np.float64)), False


def _out(x, as_torch):
    return x if as_torch else x.cpu().numpy()


def _check(pred, gt, what):
    if tuple(pred.shape) != tuple(gt.shape) or pred.shape[-1] != 3:
        raise ValueError(f'{what}: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must both be [...,N,3]')


def _mean_l2(pred, gt):
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean(dim=-1)


def mpjpe(pred, gt, scale=1.0):
    """Mean per-joint L2 error, [...,J,3] -> [...]. No alignment: root-relate the inputs first."""
    _check(pred, gt, 'mpjpe')
    p, is_t = _as_tensor(pred)
    g, _ = _as_tensor(gt)
    return _out(_mean_l2(p, g.to(p.device)) * scale, is_t)


def pa_mpjpe(pred, gt, scale=1.0):
    """MPJPE after the similarity Procrustes alignment of pred onto gt, [...,J,3] -> [...]."""
    _check(pred, gt, 'pa_mpjpe')
    p, is_t = _as_tensor(pred)
    g, _ = _as_tensor(gt)
    g = g.to(p.device)
    return _out(_mean_l2(procrustes_align(p, g), g) * scale, is_t)


def mpvpe(pred_verts, gt_verts, scale=1.0):
    """Mean per-vertex L2 error, [...,V,3] -> [...]. No alignment: root-relate the inputs first."""
    _check(pred_verts, gt_verts, 'mpvpe')
    return mpjpe(pred_verts, gt_verts, scale)


def evaluate_3dpw(pred_mesh, gt_mesh, h36m_regressor, smpl_pelvis_regressor):
    """The 3DPW protocol (3DCrowdNet / SEFD `evaluate`), per sample, in mm.

    pred_mesh, gt_mesh: [B,V,3] in metres (pred usually root-relative, gt in the camera frame: each is
    made root-relative here). h36m_regressor: [17,V] (H36M17 order). smpl_pelvis_regressor: [V] or
    [1,V], row 0 of the SMPL joint regressor.
    - joints = H36M regressor . mesh, minus their own H36M Pelvis, Eval-14 subset -> MPJPE, PA-MPJPE;
    - MPVPE: both meshes minus their own SMPL pelvis (a different root from the joints').
    Returns {'mpjpe', 'pa_mpjpe', 'mpvpe'}: numpy float64 arrays [B].
    """
    pred, _ = _as_tensor(pred_mesh)
    gt, _ = _as_tensor(gt_mesh)
    J, _ = _as_tensor(h36m_regressor)
    pel, _ = _as_tensor(smpl_pelvis_regressor)
    dev = pred.device
    gt, J, pel = gt.to(dev), J.to(dev), pel.to(dev)
    _check(pred, gt, 'evaluate_3dpw')
    if pred.ndim != 3:
        raise ValueError(f'evaluate_3dpw: meshes must be [B,V,3], got {tuple(pred.shape)}')
    V = pred.shape[1]
    if tuple(J.shape) != (len(H36M17), V):
        raise ValueError(f'evaluate_3dpw: h36m_regressor must be [{len(H36M17)},{V}], got {tuple(J.shape)}')
    if pel.ndim == 2 and pel.shape[0] == 1:
        pel = pel[0]
    if tuple(pel.shape) != (V,):
        raise ValueError(f'evaluate_3dpw: smpl_pelvis_regressor must be [{V}] (row 0 of the SMPL joint '
                         f'regressor), got {tuple(pel.shape)}')

    root = H36M17.root_idx
    eval14 = torch.as_tensor(H36M_EVAL14, device=dev)

    def joints(mesh):
        j = torch.einsum('jv,bvc->bjc', J, mesh)
        return (j - j[:, root:root + 1])[:, eval14]

    def pelvis_relative(mesh):
        return mesh - torch.einsum('v,bvc->bc', pel, mesh)[:, None]

    pj, gj = joints(pred), joints(gt)
    return {
        'mpjpe': _mean_l2(pj, gj).mul(1000).cpu().numpy(),
        'pa_mpjpe': _mean_l2(procrustes_align(pj, gj), gj).mul(1000).cpu().numpy(),
        'mpvpe': _mean_l2(pelvis_relative(pred), pelvis_relative(gt)).mul(1000).cpu().numpy(),
    }


def evaluate_h36m(pred_mesh, gt_joints, h36m_regressor):
    """Human3.6M protocol 2 (I2L-MeshNet / 3DCrowdNet), per sample, in mm: predicted joints = H36M regressor
    . mesh; both sets root-relative at their H36M Pelvis; MPJPE and PA-MPJPE over the Eval-14 joints.

    pred_mesh [B,V,3] (m); gt_joints [B,17,3] (H36M17 order, m, any translation); h36m_regressor [17,V].
    """
    pred, _ = _as_tensor(pred_mesh)
    gt, _ = _as_tensor(gt_joints)
    J, _ = _as_tensor(h36m_regressor)
    gt, J = gt.to(pred.device), J.to(pred.device)
    if gt.ndim != 3 or tuple(gt.shape[1:]) != (len(H36M17), 3):
        raise ValueError(f'evaluate_h36m: gt_joints must be [B,{len(H36M17)},3], got {tuple(gt.shape)}')
    root, eval14 = H36M17.root_idx, torch.as_tensor(H36M_EVAL14, device=pred.device)
    pj = torch.einsum('jv,bvc->bjc', J, pred)
    pj, gj = (pj - pj[:, root:root + 1])[:, eval14], (gt - gt[:, root:root + 1])[:, eval14]
    return {'mpjpe': _mean_l2(pj, gj).mul(1000).cpu().numpy(),
            'pa_mpjpe': _mean_l2(procrustes_align(pj, gj), gj).mul(1000).cpu().numpy()}


class MetricAccumulator:
    """Collects per-sample metric values over a test loop; summary() is the plain mean over all
    samples (not a mean of batch means, which would weight a short last batch wrongly)."""

    def __init__(self):
        self._values = defaultdict(list)

    def reset(self):
        self._values.clear()

    def add(self, metrics):
        """metrics: {name: per-sample values} (torch, numpy, list or scalar)."""
        for k, v in metrics.items():
            if isinstance(v, torch.Tensor):
                v = v.detach().cpu().numpy()
            self._values[k].append(np.asarray(v, dtype=np.float64).reshape(-1))

    def per_sample(self):
        """{name: all values added, concatenated}."""
        return {k: np.concatenate(v) for k, v in self._values.items()}

    def counts(self):
        return {k: int(sum(a.size for a in v)) for k, v in self._values.items()}

    @property
    def count(self):
        """Number of samples (of the most populated metric, if they differ)."""
        return max(self.counts().values(), default=0)

    def __len__(self):
        return self.count

    def summary(self):
        """{name: mean over all samples}; {} before any add()."""
        return {k: float(v.mean()) if v.size else float('nan') for k, v in self.per_sample().items()}


# ---------------------------------------------------------------------------------------------- 2D keypoints
COCO17_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
CROWDPOSE14_SIGMAS = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10


def keypoint_ap(gt, detections, sigmas=COCO17_SIGMAS):
    """COCO keypoint AP, AP50, AP75 (pycocotools' COCOeval, iouType 'keypoints', OKS with `sigmas`).

    gt: a COCO-style dict (images, annotations with keypoints [J*3], area, iscrowd, num_keypoints; categories);
    detections: [{image_id, category_id, keypoints [J*3], score}]. Returns {'ap', 'ap50', 'ap75'} in [0, 1]; with no
    detection at all, zeros."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not detections:
        return {'ap': 0.0, 'ap50': 0.0, 'ap75': 0.0}
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints its progress
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        dets = coco.loadRes(copy.deepcopy(list(detections)))
        ev = COCOeval(coco, dets, 'keypoints')
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {'ap': float(ev.stats[0]), 'ap50': float(ev.stats[1]), 'ap75': float(ev.stats[2])}


def head_size_from_box(head_boxes):
    """MPII's head size: 0.6 x the diagonal of the annotated head box [N,4] (x1, y1, x2, y2)."""
    b = np.asarray(head_boxes, np.float64)
    return 0.6 * np.linalg.norm(b[:, 2:4] - b[:, 0:2], axis=1)


def head_size_from_joints(joints, top, neck):
    """LSP-style head size: the length of the head segment, head top to neck, [N,J,2+] -> [N]."""
    j = np.asarray(joints, np.float64)
    return np.linalg.norm(j[:, top, :2] - j[:, neck, :2], axis=1)


def pckh(pred, gt, visible, head_size, thr=0.6):
    """PCKh@thr: the fraction of visible GT joints whose prediction lies within thr x the person's head size.
    pred, gt [N,J,2] (px), visible [N,J] bool, head_size [N] (px). Returns (overall, per-joint [J]) fractions."""
    pred, gt = np.asarray(pred, np.float64)[..., :2], np.asarray(gt, np.float64)[..., :2]
    vis = np.asarray(visible, bool)
    hit = (np.linalg.norm(pred - gt, axis=-1) <= thr * np.asarray(head_size, np.float64)[:, None]) & vis
    per_joint = hit.sum(0) / np.maximum(vis.sum(0), 1)
    return float(hit.sum() / max(vis.sum(), 1)), per_joint


# ---------------------------------------------------------------------------------------------- mesh fit to 2D
# Whether a predicted mesh sits on its person in a photograph, where no 3D truth exists: the mesh's projected COCO-17
# joints against the 2D detector's confident keypoints, all in units of the person's box height.
CONFIDENT = 0.5          # detector score above which a keypoint counts
FIT_PCK = 0.10           # PCK radius, box heights
ON_MESH_DILATION = 0.03  # the mesh mask is grown by this many box heights (the keypoints of a limb seen edge-on)
HEIGHT_RANGE = (0.8, 1.25)   # projected height / keypoint height of a mesh "of the person's size"
_HEAD = (0, 1, 2, 3, 4)       # COCO-17 nose, eyes, ears
_FEET = (15, 16)              # COCO-17 ankles
FIT_COUNTS = ('keypoints', 'pck_hits', 'err_sum', 'on_mesh_hits')


def mesh_fit_2d(joints_2d, keypoints, box_height, person_mask=None, conf=CONFIDENT):
    """One person's fit: joints_2d [17,2] the mesh's COCO-17 joints projected into the image (px); keypoints [17,3]
    the detector's (x, y, score); box_height (px); person_mask HxW bool, the pixels where the rendered scene shows
    this person's mesh (people in front hide it), or None.

    Returns counts that pool over people (FIT_COUNTS: confident keypoints, those within FIT_PCK box heights, the sum
    of errors in box heights, those on the mask grown by ON_MESH_DILATION box heights; on_mesh_hits is None without
    a mask) and height_ratio: the y extent of the projected joints over that of the keypoints, both over the
    confident ones, when a head and a foot keypoint are confident (else None)."""
    p = np.asarray(joints_2d, np.float64)[:, :2]
    kp = np.asarray(keypoints, np.float64)
    ok = np.isfinite(kp).all(1) & (kp[:, 2] > conf)
    h = max(float(box_height), 1.0)
    err = np.linalg.norm(p[ok] - kp[ok, :2], axis=1) / h
    out = {'keypoints': int(ok.sum()), 'pck_hits': int((err <= FIT_PCK).sum()), 'err_sum': float(err.sum()),
           'on_mesh_hits': None, 'height_ratio': None}
    if person_mask is not None:
        out['on_mesh_hits'] = int(on_mask(kp[ok, :2], person_mask, ON_MESH_DILATION * h).sum())
    if ok[list(_HEAD)].any() and ok[list(_FEET)].any():
        kp_h = np.ptp(kp[ok, 1])
        out['height_ratio'] = float(np.ptp(p[ok, 1]) / kp_h) if kp_h > 0 else None
    return out


def on_mask(points, mask, radius):
    """[N] bool: which points (x, y px) lie within `radius` px of a True pixel of mask (HxW); outside the image:
    False."""
    import cv2
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    mask = np.asarray(mask, bool)
    H, W = mask.shape
    hit = np.zeros(len(pts), bool)
    x, y = np.round(pts[:, 0]).astype(np.int64), np.round(pts[:, 1]).astype(np.int64)
    inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    if not mask.any() or not inside.any():
        return hit
    # distance of every pixel to the nearest mask pixel (0 on it)
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    hit[inside] = dist[y[inside], x[inside]] <= radius
    return hit


def pool_fits(fits):
    """The fits of several people (mesh_fit_2d's dicts) pooled over their keypoints: {'people', 'keypoints', 'pck',
    'err', 'on_mesh' (fractions; err in box heights; None when nothing counts), 'sized': people with a height ratio,
    'in_range': of those, how many lie in HEIGHT_RANGE, 'height_ratio': their median}."""
    fits = list(fits)
    n = sum(f['keypoints'] for f in fits)
    masked = [f for f in fits if f['on_mesh_hits'] is not None]
    ratios = [f['height_ratio'] for f in fits if f['height_ratio'] is not None]
    lo, hi = HEIGHT_RANGE
    return {'people': len(fits), 'keypoints': n,
            'pck': sum(f['pck_hits'] for f in fits) / n if n else None,
            'err': sum(f['err_sum'] for f in fits) / n if n else None,
            'on_mesh': (sum(f['on_mesh_hits'] for f in masked) / sum(f['keypoints'] for f in masked)
                        if masked and sum(f['keypoints'] for f in masked) else None),
            'sized': len(ratios), 'in_range': sum(lo <= r <= hi for r in ratios),
            'height_ratio': float(np.median(ratios)) if ratios else None}
