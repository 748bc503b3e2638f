"""PoseFix-style synthesis of noisy input 2D poses for training (3DCrowdNet / PoseFix).

At training time the network's input 2D pose is not the ground truth but a corrupted copy that looks
like a bottom-up detector's output: each labelled COCO-17 joint independently becomes one of five
errors, realised by rejection sampling points around *anchors*:

* anchors of joint j: its GT position; the neighbours' joint j; its own symmetric joint (the other
  side, when labelled); the neighbours' symmetric joint. Only labelled joints (conf > 0) are anchors:
  the reference forced the neighbours' confidences to 1, so their unlabelled joints became anchors at
  the image origin; here an unlabelled neighbour joint is never an anchor.
* radii from the COCO OKS sigmas: d(ks) = sqrt(-2 * area * (2 sigma_j)^2 * ln ks) for ks in
  {0.85, 0.50, 0.10} (d85 < d50 < d10), `area` = the person's box area in crop px^2.
* error types (samples at radius r ~ U(lo, hi), angle ~ U(0, 2 pi) around an anchor):
  - jitter: 500 samples, r in [d85, d50) around GT, kept if farther than r from every other anchor;
  - miss: 2000 samples per anchor, r in [d50, d10), kept if farther than d50 from every other anchor;
    the survivors of non-GT anchors count 1/4 (the reference subsamples them to len // 4);
  - inversion: 500 samples, r in [0, d50) around the own symmetric joint, kept if farther than r from
    every other anchor;
  - swap: 500 samples per neighbour anchor (neighbours' joint j and symmetric joint), r in [0, d50),
    kept if farther than r from GT and from the own symmetric joint;
  - good: 125 samples, r in [0, d85) around GT, kept if farther than r from every other anchor.
* base probabilities by num_valid (labelled GT joints) and num_overlap (neighbours), see
  `error_probabilities`; a type with no surviving sample gets probability 0, the rest is renormalised,
  a type is drawn and its joint set to a uniformly drawn survivor (x, y, 1); when no type survives the
  joint becomes (0, 0, 0).

Implementation: vectorised over joints and samples. The type is drawn *before* its samples: draw a type
from the base probabilities, realise it, and if nothing survived, remove it and redraw from the
renormalised rest. Emptiness of each type is an independent event, so this is the same distribution as
realising all five and renormalising, at a fraction of the cost (mostly "good", 125 samples).
Everything is deterministic given the numpy Generator.

Units: everything in crop px (the 256x256 input), as 3DCrowdNet does; scale to the heatmap grid after.
Unlabelled GT joints (conf 0) come out as (0, 0, 0) (nothing to perturb; the loaders' heatmap mask is
the clean GT truncation mask anyway).

Non-COCO datasets: map their GT to COCO-17 (`to_coco17`), synthesise, then `replace_common_joints`
writes back only the joints whose names exist in COCO-17; the others (pelvis, neck, head top, thorax...)
keep their clean GT. 3DCrowdNet's index lists (H36M 1-6,9,11-16; MuCo 2-13; MPII 0-6,10-15; CrowdPose
0-11,14) are these joints, plus MPII/CrowdPose's Pelvis, which the reference also leaves at clean GT.
"""
import functools
import math

import numpy as np

from common.body.joint_sets import COCO17, COCO19, SMPL30, add_midpoints, map_joints

__all__ = ['COCO_SIGMAS', 'KS', 'ERROR_TYPES', 'NUM_SAMPLES', 'oks_radii', 'error_probabilities',
           'synthesize_pose', 'synthesize_pose_types', 'to_coco17', 'replace_common_joints',
           'bbox_area_in_crop', 'bbox_iou', 'overlapping', 'detector_joints']

COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89,
                        .89]) / 10.0
KS = (0.85, 0.50, 0.10)
ERROR_TYPES = ('jitter', 'miss', 'inversion', 'swap', 'good')
JITTER, MISS, INVERSION, SWAP, GOOD = range(5)
NUM_SAMPLES = {'jitter': 500, 'miss': 2000, 'inversion': 500, 'swap': 500, 'good': 125}

_NJ = len(COCO17)
_FLIP = COCO17.flip_permutation()
_HAS_PAIR = _FLIP != np.arange(_NJ)
_FAR = 1e12  # position of a non-anchor: never closer than any radius (its square fits float32)


def oks_radii(area):
    """[3,17] distances (crop px) at which the OKS of each COCO joint is 0.85, 0.50, 0.10 for a person of
    `area` px^2: d(ks) = sqrt(-2 * area * (2 sigma)^2 * ln ks). A non-positive area gives zeros."""
    area = max(float(area), 0.0) if math.isfinite(float(area)) else 0.0
    ks = np.asarray(KS)[:, None]
    return np.sqrt(-2.0 * area * (2.0 * COCO_SIGMAS[None]) ** 2 * np.log(ks))


def error_probabilities(num_valid, num_overlap):
    """[17,5] base probabilities of (jitter, miss, inversion, swap, good) per COCO joint, for a person
    with num_valid labelled joints and num_overlap overlapping persons."""
    return _error_probabilities(int(num_valid), _crowded(num_valid, num_overlap)).copy()


def _crowded(num_valid, num_overlap):
    """The swap-prone case: few labelled joints and a neighbour, or several neighbours."""
    return bool((num_valid <= 10 and num_overlap > 0) or (num_valid <= 15 and num_overlap >= 3))


@functools.lru_cache(maxsize=None)
def _error_probabilities(num_valid, crowded):
    j = np.arange(_NJ)
    face, upper = j <= 4, (j >= 5) & (j <= 10)
    # jitter: nose/knees/ankles, eyes..wrists, hips
    jit_a = (j == 0) | (j >= 13)
    jit = np.where(jit_a, 0.15, np.where(j <= 10, 0.20, 0.25)) if num_valid <= 10 else \
        np.where(jit_a, 0.10, np.where(j <= 10, 0.15, 0.20))
    # miss: face, shoulders/ankles, the rest
    sh_ank = np.isin(j, (5, 6, 15, 16))
    levels = (0.15, 0.20, 0.25) if num_valid <= 5 else (0.10, 0.13, 0.15) if num_valid <= 10 else (0.02, 0.05, 0.10)
    miss = np.where(face, levels[0], np.where(sh_ank, levels[1], levels[2]))
    inv = np.where(face, 0.01, np.where(upper, 0.03, 0.06))
    swap = np.where(face, 0.02, np.where(upper, 0.15, 0.10)) if crowded else \
        np.where(face, 0.01, np.where(upper, 0.06, 0.03))
    p = np.stack([jit, miss, inv, swap], axis=1)
    p = np.concatenate([p, 1.0 - p.sum(1, keepdims=True)], axis=1)
    p.flags.writeable = False  # cached
    return p


# ----------------------------------------------------------------------------------------------------
# Vectorised sampling helpers
# ----------------------------------------------------------------------------------------------------
def _ring(rng, centers, lo, hi, n):
    """Points around centers [m,C,2] at r ~ U(lo,hi) ([m] each), angle ~ U(0,2pi): ([m,C,n] x, y, r)."""
    m, c = centers.shape[:2]
    # float32: numpy's float64 sin/cos are ~10x slower here, and 1e-5 px is plenty for crop pixels
    lo, hi, centers = lo.astype(np.float32), hi.astype(np.float32), centers.astype(np.float32)
    r = lo[:, None, None] + (hi - lo)[:, None, None] * rng.random((m, c, n), dtype=np.float32)
    ang = np.float32(2.0 * math.pi) * rng.random((m, c, n), dtype=np.float32)
    return centers[:, :, 0, None] + r * np.cos(ang), centers[:, :, 1, None] + r * np.sin(ang), r


def _clear(x, y, thr2, obstacles):
    """True where the point is farther than sqrt(thr2) from all obstacles [m,O,2] (pass _FAR for
    non-obstacles). x, y, thr2: [m,C,n] (thr2 may broadcast)."""
    ok = np.ones(x.shape, dtype=bool)
    for o in range(obstacles.shape[1]):  # O is small (2 + 2K); the sample axes are vectorised
        dx = x - obstacles[:, None, o, 0, None]
        dy = y - obstacles[:, None, o, 1, None]
        ok &= dx * dx + dy * dy > thr2
    return ok


def _pick_uniform(rng, mask):
    """One True entry per row of mask [m,M], uniformly: (index [m], has [m])."""
    if mask.shape[1] == 0:
        return np.zeros(len(mask), dtype=np.int64), np.zeros(len(mask), dtype=bool)
    cnt = mask.sum(1)
    k = np.floor(rng.random(len(mask)) * cnt)
    idx = np.argmax(np.cumsum(mask, axis=1) > k[:, None], axis=1)
    return idx, cnt > 0


def _compress(valid, positions):
    """Valid anchors first (stable), truncated to the largest valid count: (order [m,A'], valid, pos)."""
    order = np.argsort(~valid, axis=1, kind='stable')
    a = max(int(valid.sum(1).max()), 1) if len(valid) else 1
    order = order[:, :a]
    return order, np.take_along_axis(valid, order, 1), np.take_along_axis(positions, order[..., None], 1)


class _Anchors:
    """Anchors of every joint: columns 0 = GT, 1..K = neighbours' joint j, K+1 = own symmetric joint,
    K+2..2K+1 = neighbours' symmetric joint. pos [17,A,2], valid [17,A], obst = pos with _FAR where
    invalid."""

    def __init__(self, gt, near):
        k = len(near)
        self.k = k
        valid = gt[:, 2] > 0
        nb_pos, nb_val = near[:, :, :2].transpose(1, 0, 2), (near[:, :, 2] > 0).T  # [17,K,2], [17,K]
        self.pos = np.concatenate([gt[:, None, :2], nb_pos, gt[_FLIP, None, :2], nb_pos[_FLIP]], axis=1)
        self.valid = np.concatenate([valid[:, None], nb_val, (_HAS_PAIR & valid[_FLIP])[:, None],
                                     _HAS_PAIR[:, None] & nb_val[_FLIP]], axis=1)
        self.obst = np.where(self.valid[..., None], self.pos, _FAR).astype(np.float32)  # samples are float32
        self.sym = k + 1
        self.nb_cols = np.r_[1:k + 1, k + 2:2 * k + 2]


def _nothing(m):
    return np.zeros((m, 2)), np.zeros(m, dtype=bool)


def _around_one(rng, anchors, sel, center_col, lo, hi, n):
    """jitter / inversion / good: n samples around one anchor column, kept if farther than their own
    radius from every other anchor. Returns (xy [m,2], has [m])."""
    if n <= 0:
        return _nothing(len(sel))
    centers = anchors.pos[sel, center_col][:, None]
    x, y, r = _ring(rng, centers, lo, hi, n)
    obst = anchors.obst[sel].copy()
    obst[:, center_col] = _FAR
    ok = _clear(x, y, r * r, obst)[:, 0]
    idx, has = _pick_uniform(rng, ok)
    rows = np.arange(len(sel))
    return np.stack([x[rows, 0, idx], y[rows, 0, idx]], axis=1), has


def _miss(rng, anchors, sel, d50, d10, n):
    if n <= 0:
        return _nothing(len(sel))
    order, valid, pos = _compress(anchors.valid[sel], anchors.pos[sel])
    obst = np.where(valid[..., None], pos, _FAR).astype(np.float32)
    x, y, _ = _ring(rng, pos, d50, d10, n)  # [m,C,n]
    m, c = valid.shape
    ok = np.repeat(valid[:, :, None], n, axis=2)
    thr2 = (d50 * d50).astype(np.float32)[:, None, None]
    # a sample around centre a (r < d10) can be within d50 of anchor b only if |a-b| < d10 + d50: only
    # those (centre, obstacle) pairs are checked (exact; saves most of the work in crowds)
    gap = np.linalg.norm(obst[:, :, None].astype(np.float64) - obst[:, None].astype(np.float64), axis=-1)
    reach = ((gap < (d10 + d50)[:, None, None] + 1.0) & valid[:, :, None] & valid[:, None, :]).any(0)  # [C,O]
    np.fill_diagonal(reach, False)  # a centre is no obstacle to its own samples
    for o in range(c):
        cols = np.flatnonzero(reach[:, o])
        if cols.size:
            dx = x[:, cols] - obst[:, None, o, 0, None]
            dy = y[:, cols] - obst[:, None, o, 1, None]
            ok[:, cols] &= dx * dx + dy * dy > thr2
    counts = ok.sum(2)
    weights = np.where(order == 0, counts, counts // 4)  # survivors of non-GT anchors count 1/4
    group, has = _pick_uniform_weighted(rng, weights)
    rows = np.arange(m)
    idx, _ = _pick_uniform(rng, ok[rows, group])
    return np.stack([x[rows, group, idx], y[rows, group, idx]], axis=1), has


def _pick_uniform_weighted(rng, weights):
    tot = weights.sum(1)
    u = rng.random(len(weights)) * tot
    return np.argmax(np.cumsum(weights, axis=1) > u[:, None], axis=1), tot > 0


def _swap(rng, anchors, sel, d50, n):
    if n <= 0:
        return _nothing(len(sel))
    cols = anchors.nb_cols
    order, valid, pos = _compress(anchors.valid[sel][:, cols], anchors.pos[sel][:, cols])
    x, y, r = _ring(rng, pos, np.zeros_like(d50), d50, n)
    obst = anchors.obst[sel][:, [0, anchors.sym]]  # kept if farther than r from GT and own symmetric joint
    ok = _clear(x, y, r * r, obst) & valid[:, :, None]
    m = len(sel)
    idx, has = _pick_uniform(rng, ok.reshape(m, -1))
    rows = np.arange(m)
    return np.stack([x.reshape(m, -1)[rows, idx], y.reshape(m, -1)[rows, idx]], axis=1), has


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------
def synthesize_pose(gt_coco17, near_joints, area, rng, num_overlap=None):
    """A detector-like noisy copy of a person's COCO-17 pose.

    gt_coco17 [17,3] (x, y, conf) in crop px, conf > 0 = labelled; near_joints [K,17,3] (or None / empty):
    the overlapping persons' COCO-17 joints in the same crop px with their *real* labels (conf 0 =
    unlabelled, never an anchor); area: this person's box area in crop px^2 (`bbox_area_in_crop`);
    rng: numpy Generator; num_overlap: defaults to K.
    Returns float32 [17,3]: (x, y, 1) for each synthesised joint, (0, 0, 0) for unlabelled GT joints and
    for joints where no error type had a surviving sample.
    """
    return synthesize_pose_types(gt_coco17, near_joints, area, rng, num_overlap)[0]


def synthesize_pose_types(gt_coco17, near_joints, area, rng, num_overlap=None):
    """`synthesize_pose` that also says what happened to each joint: (pose float32 [17,3], types int64
    [17]) with types[j] an index into ERROR_TYPES (jitter, miss, inversion, swap, good), or -1 where the
    joint is (0,0,0). Same random stream as synthesize_pose."""
    gt = np.asarray(gt_coco17, dtype=np.float64).reshape(_NJ, -1)[:, :3]
    if near_joints is None or np.size(near_joints) == 0:
        near = np.zeros((0, _NJ, 3))
    else:
        near = np.asarray(near_joints, dtype=np.float64)
        near = near.reshape(-1, _NJ, near.shape[-1])[..., :3]
    num_overlap = len(near) if num_overlap is None else int(num_overlap)
    out = np.zeros((_NJ, 3), dtype=np.float64)
    types = np.full(_NJ, -1, dtype=np.int64)
    valid = gt[:, 2] > 0
    if not valid.any():
        return out.astype(np.float32), types
    d85, d50, d10 = oks_radii(area)
    anchors = _Anchors(gt, near)
    num_valid = int(valid.sum())
    probs = _error_probabilities(num_valid, _crowded(num_valid, num_overlap))
    avail = np.ones((_NJ, 5), dtype=bool)
    avail[:, INVERSION] = anchors.valid[:, anchors.sym]
    avail[:, SWAP] = anchors.valid[:, anchors.nb_cols].any(1)

    pending = np.flatnonzero(valid)
    while pending.size:
        p = probs[pending] * avail[pending]
        tot = p.sum(1)
        pending, p, tot = pending[tot > 0], p[tot > 0], tot[tot > 0]  # nothing left: stays (0,0,0)
        if not pending.size:
            break
        kind = np.argmax(np.cumsum(p, axis=1) > (rng.random(len(pending)) * tot)[:, None], axis=1)
        done = np.zeros(len(pending), dtype=bool)
        for t in range(5):
            which = np.flatnonzero(kind == t)
            if not which.size:
                continue
            sel = pending[which]
            if t == JITTER:
                xy, has = _around_one(rng, anchors, sel, 0, d85[sel], d50[sel], NUM_SAMPLES['jitter'])
            elif t == MISS:
                xy, has = _miss(rng, anchors, sel, d50[sel], d10[sel], NUM_SAMPLES['miss'])
            elif t == INVERSION:
                xy, has = _around_one(rng, anchors, sel, anchors.sym, np.zeros(len(sel)), d50[sel],
                                      NUM_SAMPLES['inversion'])
            elif t == SWAP:
                xy, has = _swap(rng, anchors, sel, d50[sel], NUM_SAMPLES['swap'])
            else:
                xy, has = _around_one(rng, anchors, sel, 0, np.zeros(len(sel)), d85[sel], NUM_SAMPLES['good'])
            out[sel[has], :2] = xy[has]
            out[sel[has], 2] = 1.0
            types[sel[has]] = t
            avail[sel[~has], t] = False
            done[which[has]] = True
        pending = pending[~done]
    return out.astype(np.float32), types


def to_coco17(joints, joint_set):
    """Joints [J,D] of `joint_set` -> COCO-17 order [17,D] by name (missing joints all-zero, i.e.
    unlabelled)."""
    return map_joints(np.asarray(joints), joint_set, COCO17)


def detector_joints(synth_coco17):
    """A synthesised COCO-17 pose [17,3] -> SMPL-30 [30,3] holding only what a COCO / OpenPose detector gives at
    test time: the 17 COCO joints, the neck and the pelvis (midpoints of the shoulders and of the hips, their
    confidence the parents' product, as the test loader makes them); every other joint (0, 0, 0)."""
    return map_joints(add_midpoints(np.asarray(synth_coco17, np.float32), COCO17, ('Pelvis', 'Neck')), COCO19, SMPL30)


def replace_common_joints(joints, joint_set, synth_coco17, conf_col=None):
    """Write the synthesised COCO-17 joints back into a dataset's joints [J,D] (copy): x, y of every
    joint whose name exists in COCO-17 are replaced (and column `conf_col`, when given, gets the
    synthesised 0/1); the other joints keep their clean GT."""
    out = np.array(joints, dtype=np.float64 if np.asarray(joints).dtype.kind != 'f' else np.asarray(joints).dtype)
    names = [n for n in joint_set.joints if n in COCO17.joints]
    dst = np.array([joint_set.index(n) for n in names], dtype=np.int64)
    src = np.array([COCO17.index(n) for n in names], dtype=np.int64)
    synth = np.asarray(synth_coco17)
    out[dst, :2] = synth[src, :2]
    if conf_col is not None:
        out[dst, conf_col] = synth[src, 2]
    return out


def bbox_area_in_crop(bbox, trans):
    """Area (crop px^2) of a box (x,y,w,h, image px) after the crop affine `trans` [2,3]: the lengths of
    its transformed top edge and right edge multiplied (3DCrowdNet's rule; flips do not change it)."""
    x, y, w, h = (float(v) for v in bbox)
    pts = np.array([[x, y], [x + w, y], [x + w, y + h]], dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    p = pts @ t[:, :2].T + t[:, 2]
    return float(np.linalg.norm(p[1] - p[0]) * np.linalg.norm(p[2] - p[1]))


def bbox_iou(box, boxes):
    """IoU of one (x,y,w,h) box with boxes [N,4] -> [N]."""
    box, boxes = np.asarray(box, dtype=np.float64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def overlapping(box, boxes, thr=0.1, exclude=None):
    """Indices of the boxes (tight person boxes, x,y,w,h) whose IoU with `box` is >= thr (3DCrowdNet's
    neighbour rule), without index `exclude` (the person itself)."""
    iou = bbox_iou(box, boxes)
    keep = iou >= thr
    if exclude is not None:
        keep[exclude] = False
    return np.flatnonzero(keep)
