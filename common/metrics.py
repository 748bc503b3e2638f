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
