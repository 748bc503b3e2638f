"""Per-sample geometry shared by every dataset loader: image loading, boxes, crop + augmentation,
keypoint / 3D joint / SMPL parameter transforms (the 3DCrowdNet / I2L-MeshNet conventions).

Coordinate systems and units (every function says which it takes and returns):

* **image px**: pixels of the original image; x right, y down; pixel *centres* sit at integer
  coordinates (the cv2 convention: `warpAffine` samples the source at pixel centres), so a horizontal
  flip maps x -> W - 1 - x.
* **crop px**: pixels of the network input crop (`input_shape`, e.g. 256x256), same conventions.
* **grid px**: the heatmap grid (`hm_shape`, e.g. 64x64): crop px * hm / input (x by widths, y by
  heights). Depth on the grid: `depth_to_grid`.
* **metres**: 3D camera coordinates (x right, y down, z forward, the camera looking along +z), SMPL
  translations, root-relative joints. Datasets in millimetres convert first (or pass
  `bbox_3d_size` in mm to `depth_to_grid`).
* **degrees**: augmentation rotation `rot`. A positive `rot` rotates the *sampling box* by +rot in
  image coordinates (clockwise on screen, since y is down), so the content of the crop turns by -rot:
  crop = s * R(-rot) (image - centre) + crop_centre with R(a) = [[cos a, -sin a], [sin a, cos a]].
  The matching 3D rotation is Rz(-rot) about the camera z axis (`rotate_root_relative`,
  `rotate_smpl_root`).
* **boxes**: (x, y, w, h) in image px, float32.
* **affine transforms**: 2x3 float32 matrices acting on column vectors (x, y, 1).

Flip convention (3DCrowdNet's): when a sample is flipped, the image is mirrored (x -> W-1-x), the box
centre becomes W-1-cx, and `img2bb_trans` maps *flipped-image* px to crop px (so the keypoints are
flipped first, `flip_joints_2d`, then transformed, `transform_joints_2d`; `joints_to_crop` does both).
Images and maps are never copied to flip them: the flip is folded into the affine given to
`cv2.warpAffine` (bilinear, zero border), which is the same sampling.

Corrupt or missing images raise `BadSample` (path + reason), so a loader can skip-and-count or stop.
"""
import math
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from common.body.joint_sets import SMPL30

__all__ = [
    'BadSample', 'load_img', 'get_bbox', 'process_bbox', 'AugConfig', 'get_aug_config', 'rotate_2d',
    'gen_trans_from_patch_cv', 'generate_patch_image', 'warp_map', 'apply_color_gain', 'image_to_chw',
    'flip_permutation', 'swap_flip_pairs', 'flip_joints_2d', 'transform_joints_2d', 'joints_to_crop',
    'crop_to_grid', 'grid_to_crop', 'truncation_mask', 'rot_z', 'rotate_root_relative', 'rotate_smpl_root',
    'flip_joints_3d', 'flip_smpl_pose', 'flip_translation_shift', 'flip_smpl_translation', 'depth_to_grid',
    'SMPL24_FLIP_PERM',
]


# ----------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------
class BadSample(Exception):
    """A sample that cannot be used (missing / unreadable / corrupt image...). `path` and `reason`
    say which and why; loaders catch it to skip-and-count, or let it propagate."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'{self.path}: {reason}')

    def __reduce__(self):  # picklable across DataLoader worker processes
        return type(self), (self.path, self.reason)


def load_img(path, dtype=np.uint8):
    """Image file -> RGB array [H,W,3] (uint8 0..255, or float32 0..255 with dtype=np.float32).

    EXIF orientation is ignored (IMREAD_IGNORE_ORIENTATION), as in the annotation tools of the
    datasets: annotations are in the stored pixel grid. Gray and 16-bit files become 8-bit RGB.
    Raises BadSample when the file is missing, unreadable or does not decode.
    """
    try:
        buf = np.fromfile(os.fspath(path), dtype=np.uint8)  # also works for non-ASCII paths
    except FileNotFoundError:
        raise BadSample(path, 'no such file') from None
    except OSError as e:
        raise BadSample(path, f'cannot read it ({e.strerror or e})') from e
    if buf.size == 0:
        raise BadSample(path, 'empty file')
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise BadSample(path, 'not a decodable image (corrupt or unsupported format)')
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img if dtype == np.uint8 else img.astype(dtype)


# ----------------------------------------------------------------------------------------------------
# Boxes
# ----------------------------------------------------------------------------------------------------
def get_bbox(joints, valid, extend=1.2):
    """Box (x,y,w,h) around the valid joints, enlarged by `extend` about its centre.

    joints [J,>=2] (any px units; the box is in the same units), valid [J] or [J,1] (> 0 = valid).
    Returns float32 [4], or None when no joint is valid.
    """
    joints = np.asarray(joints, dtype=np.float64)
    valid = np.asarray(valid).reshape(-1) > 0
    if not valid.any():
        return None
    xy = joints[valid, :2]
    (xmin, ymin), (xmax, ymax) = xy.min(0), xy.max(0)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    w, h = (xmax - xmin) * extend, (ymax - ymin) * extend
    return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float32)


def process_bbox(bbox, img_w, img_h, aspect=1.0, scale=1.25, train=True, published=False):
    """Clip a box (x,y,w,h, image px) to the image, give it the input aspect ratio (w/h) by enlarging
    its shorter side, multiply both sides by `scale`, keep its centre (as 3DCrowdNet).

    Clipping keeps the intersection of the box with the pixel range [0,W-1]x[0,H-1]: x1 = max(0,x),
    x2 = min(W-1, x + max(0, w-1)) (the reference computes x2 from the clipped x1, which shifts boxes
    that stick out on the left/top inwards; here the box is intersected instead), clipped box =
    (x1, y1, x2-x1, y2-y1).
    train=True: returns None when the box is degenerate (w*h <= 0, nothing left after clipping, or a
    single pixel): the sample is skipped. train=False (test sets): never None; a degenerate clipped box
    falls back to the unclipped box, with sides of at least 1 px.
    published=True: the reference's clipping (x2 from the clipped x1: a box sticking out on the left/top moves
    inwards, keeping its size), for published snapshots (data.crop_convention).
    Returns float32 [4] (x,y,w,h).
    """
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_w - 1.0, (x1 if published else x) + max(0.0, w - 1))
    y2 = min(img_h - 1.0, (y1 if published else y) + max(0.0, h - 1))
    ok = w * h > 0 and x2 >= x1 and y2 >= y1 and max(x2 - x1, y2 - y1) > 0
    if ok:
        x, y, w, h = x1, y1, x2 - x1, y2 - y1
    elif train:
        return None
    else:
        cx, cy = x + w / 2, y + h / 2
        w, h = max(abs(w), 1.0), max(abs(h), 1.0)
        x, y = cx - w / 2, cy - h / 2
    cx, cy = x + w / 2, y + h / 2
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    w, h = w * scale, h * scale
    return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float32)


# ----------------------------------------------------------------------------------------------------
# Augmentation parameters
# ----------------------------------------------------------------------------------------------------
@dataclass
class AugConfig:
    """One sample's augmentation: box scale factor, rotation (degrees, see the module doc), per-channel
    RGB colour gain [3], horizontal flip."""
    scale: float = 1.0
    rot: float = 0.0
    color_gain: np.ndarray = field(default_factory=lambda: np.ones(3, dtype=np.float32))
    do_flip: bool = False

    @classmethod
    def identity(cls):
        return cls()


def get_aug_config(rng=None, train=True, scale_factor=0.25, rot_factor=30.0, rot_prob=0.6,
                   color_factor=0.2, flip_prob=0.5):
    """Random augmentation (3DCrowdNet's ranges), deterministic given the numpy Generator `rng`:
    scale = 1 + scale_factor * clip(N(0,1), -1, 1); rot = rot_factor * clip(N(0,1), -2, 2) degrees
    with probability rot_prob, else 0; colour gain U(1-color_factor, 1+color_factor) per RGB channel;
    flip with probability flip_prob. train=False (or rng=None) -> the identity (test mode).
    The five draws are always made in the same order, so the stream does not depend on the outcomes.
    """
    if not train or rng is None:
        return AugConfig.identity()
    scale = 1.0 + scale_factor * float(np.clip(rng.standard_normal(), -1.0, 1.0))
    rot = rot_factor * float(np.clip(rng.standard_normal(), -2.0, 2.0))
    if rng.random() >= rot_prob:
        rot = 0.0
    gain = rng.uniform(1.0 - color_factor, 1.0 + color_factor, 3).astype(np.float32)
    do_flip = bool(rng.random() < flip_prob)
    return AugConfig(scale, rot, gain, do_flip)


# ----------------------------------------------------------------------------------------------------
# Crop
# ----------------------------------------------------------------------------------------------------
def rotate_2d(pt, rot_rad):
    """Rotate 2D vector(s) [...,2] by rot_rad: (x cos - y sin, x sin + y cos)."""
    pt = np.asarray(pt, dtype=np.float64)
    c, s = math.cos(rot_rad), math.sin(rot_rad)
    return np.stack([pt[..., 0] * c - pt[..., 1] * s, pt[..., 0] * s + pt[..., 1] * c], axis=-1)


def gen_trans_from_patch_cv(c_x, c_y, src_w, src_h, dst_w, dst_h, scale, rot, inv=False):
    """2x3 affine (float64) from the box centred at (c_x, c_y) of size (src_w, src_h) * scale, rotated
    by `rot` degrees, to a dst_w x dst_h patch (inv=True: patch -> box), from three point pairs:
    centre -> patch centre (dst_w/2, dst_h/2), centre + rotated half-height down vector -> patch centre +
    (0, dst_h/2), centre + rotated half-width right vector -> patch centre + (dst_w/2, 0)."""
    src_w, src_h = src_w * scale, src_h * scale
    rad = math.radians(rot)
    centre = np.array([c_x, c_y], dtype=np.float64)
    src = np.stack([centre, centre + rotate_2d([0.0, src_h * 0.5], rad),
                    centre + rotate_2d([src_w * 0.5, 0.0], rad)])
    dc = np.array([dst_w * 0.5, dst_h * 0.5])
    dst = np.stack([dc, dc + [0.0, dst_h * 0.5], dc + [dst_w * 0.5, 0.0]])
    a, b = (dst, src) if inv else (src, dst)
    return cv2.getAffineTransform(a.astype(np.float32), b.astype(np.float32)).astype(np.float64)


def _as_hw(shape):
    if np.isscalar(shape):
        return int(shape), int(shape)
    return int(shape[0]), int(shape[1])


def _compose_flip(trans, img_w):
    """trans (for the mirrored image) composed with the mirror x -> W-1-x: acts on the original."""
    t = np.asarray(trans, dtype=np.float64).copy()
    t[:, 2] += t[:, 0] * (img_w - 1)
    t[:, 0] = -t[:, 0]
    return t


def _crop_transforms(bbox, img_w, scale, rot, do_flip, out_shape):
    out_h, out_w = _as_hw(out_shape)
    x, y, w, h = (float(v) for v in bbox)
    c_x, c_y = x + 0.5 * w, y + 0.5 * h
    if do_flip:
        c_x = img_w - c_x - 1
    trans = gen_trans_from_patch_cv(c_x, c_y, w, h, out_w, out_h, scale, rot)
    inv = gen_trans_from_patch_cv(c_x, c_y, w, h, out_w, out_h, scale, rot, inv=True)
    return trans, inv, (out_h, out_w)


def _warp(img, trans, out_hw, interp):
    out = cv2.warpAffine(img, trans, (out_hw[1], out_hw[0]), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    if img.ndim == 3 and out.ndim == 2:  # cv2 drops a singleton channel axis
        out = out[:, :, None]
    return out


def generate_patch_image(img, bbox, scale, rot, do_flip, out_shape):
    """Crop (and augment) a person: img [H,W,C] (image px), bbox (x,y,w,h, image px), scale factor,
    rot (degrees), do_flip, out_shape (h,w) or an int.

    Returns (patch [h,w,C] of img's dtype (bilinear, zero border), img2bb_trans [2,3] float32 mapping
    image px -> crop px, bb2img_trans [2,3] float32 mapping crop px -> image px). With do_flip, both
    matrices refer to the *mirrored* image (x -> W-1-x), per 3DCrowdNet's convention; keypoints are
    flipped with `flip_joints_2d` before `transform_joints_2d` (or use `joints_to_crop`).
    """
    img = np.asarray(img)
    trans, inv, out_hw = _crop_transforms(bbox, img.shape[1], scale, rot, do_flip, out_shape)
    warp = _compose_flip(trans, img.shape[1]) if do_flip else trans
    patch = _warp(img, warp, out_hw, cv2.INTER_LINEAR)
    return patch, trans.astype(np.float32), inv.astype(np.float32)


def warp_map(map_, trans, out_shape, interp=cv2.INTER_LINEAR, do_flip=False):
    """Warp a per-pixel map (edge map, mask, part ids...; [H,W] or [H,W,C] in the *image's* pixel grid)
    with the crop transform `trans` = img2bb_trans of generate_patch_image. Pass the sample's do_flip:
    the map is then mirrored too (trans refers to the mirrored image). No colour gain; zero border.
    interp: cv2.INTER_LINEAR for continuous maps, cv2.INTER_NEAREST for labels."""
    map_ = np.asarray(map_)
    t = _compose_flip(trans, map_.shape[1]) if do_flip else np.asarray(trans, dtype=np.float64)
    return _warp(map_, t, _as_hw(out_shape), interp)


def apply_color_gain(patch, gain):
    """patch [H,W,3] (0..255) * per-channel gain, clipped to [0,255] -> float32."""
    out = np.asarray(patch, dtype=np.float32) * np.asarray(gain, dtype=np.float32).reshape(1, 1, -1)
    return np.clip(out, 0.0, 255.0, out=out)


def image_to_chw(patch):
    """[H,W,C] 0..255 -> float32 [C,H,W] in [0,1] (the network input, no mean/std)."""
    return np.ascontiguousarray(np.asarray(patch, dtype=np.float32).transpose(2, 0, 1)) / 255.0


# ----------------------------------------------------------------------------------------------------
# Keypoints (2D)
# ----------------------------------------------------------------------------------------------------
def _float_copy(a):
    """A float copy (the input's float dtype, float64 for anything else)."""
    a = np.asarray(a)
    return np.array(a, dtype=a.dtype if a.dtype.kind == 'f' else np.float64)


def flip_permutation(flip_pairs, num_joints=None):
    """Index array p with joints[p] mirrored; flip_pairs = a JointSet or pairs ((a,b),...)."""
    if hasattr(flip_pairs, 'flip_permutation'):
        return flip_pairs.flip_permutation()
    pairs = list(flip_pairs)
    n = num_joints if num_joints is not None else (max(max(p) for p in pairs) + 1 if pairs else 0)
    perm = np.arange(n)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def swap_flip_pairs(values, flip_pairs, axis=-2):
    """Swap the left/right joints of `values` along the joint axis (default -2, i.e. [...,J,D]; use
    axis=-1 for [...,J], e.g. a validity vector). Returns a copy."""
    values = np.asarray(values)
    perm = flip_permutation(flip_pairs, values.shape[axis])
    return np.take(values, perm, axis=axis)


def flip_joints_2d(joints, img_w, flip_pairs):
    """Mirror 2D joints [...,J,D>=2] (image px) of an image of width img_w: x -> W-1-x, left/right
    joints swapped (every column, so a confidence/validity or z column moves with its joint). Copy."""
    out = swap_flip_pairs(_float_copy(joints), flip_pairs)
    out[..., 0] = img_w - 1 - out[..., 0]
    return out


def transform_joints_2d(joints, trans):
    """Apply a 2x3 affine to the x,y columns of joints [...,J,D>=2]; other columns are kept. Copy."""
    out = _float_copy(joints)
    t = np.asarray(trans, dtype=np.float64)
    xy = out[..., :2].astype(np.float64)
    out[..., :2] = xy @ t[:, :2].T + t[:, 2]
    return out


def joints_to_crop(joints, img2bb_trans, do_flip=False, img_w=None, flip_pairs=None):
    """Image-px joints [...,J,D>=2] -> crop px: flipped first when do_flip (needs img_w, flip_pairs),
    then transformed by img2bb_trans (from generate_patch_image)."""
    if do_flip:
        joints = flip_joints_2d(joints, img_w, flip_pairs)
    return transform_joints_2d(joints, img2bb_trans)


def crop_to_grid(joints, input_shape, hm_shape):
    """Crop px -> grid px for the x,y columns of joints [...,J,D>=2]: x * hm_w/in_w, y * hm_h/in_h.
    Shapes as (h,w) or ints. Other columns (depth, confidence) are kept. Copy."""
    (ih, iw), (hh, hw) = _as_hw(input_shape), _as_hw(hm_shape)
    out = _float_copy(joints)
    out[..., 0] *= hw / iw
    out[..., 1] *= hh / ih
    return out


def grid_to_crop(joints, input_shape, hm_shape):
    """Inverse of crop_to_grid."""
    (ih, iw), (hh, hw) = _as_hw(input_shape), _as_hw(hm_shape)
    return crop_to_grid(joints, (hh, hw), (ih, iw))


def truncation_mask(joints, valid, hm_shape, depth_size=None):
    """valid ∧ 0 <= x < W ∧ 0 <= y < H (∧ 0 <= z < depth_size when given) for grid-px joints [J,D>=2]
    (z = column 2). valid [J] or [J,1]. hm_shape (h,w) or an int. Returns float32 [J,1]."""
    joints = np.asarray(joints, dtype=np.float64)
    h, w = _as_hw(hm_shape)
    m = (np.asarray(valid).reshape(-1) > 0) & (joints[:, 0] >= 0) & (joints[:, 0] < w) & \
        (joints[:, 1] >= 0) & (joints[:, 1] < h)
    if depth_size is not None:
        m &= (joints[:, 2] >= 0) & (joints[:, 2] < depth_size)
    return m.astype(np.float32)[:, None]


# ----------------------------------------------------------------------------------------------------
# the test crop (test loaders and the demo)
# ----------------------------------------------------------------------------------------------------
INPUT_CONF_THR = 0.05  # a detected joint counts when its confidence is above this (3DCrowdNet's test protocol)


def usable_pose(pose, img_w, img_h):
    """A detected pose [J,3] (x, y, conf; image px) with the joints no detector gives zeroed (conf 0): non-finite
    values, or farther than one image size outside the image (one joint at 1e30 would make the crop box the whole
    image; a NaN would reach the model)."""
    pose = np.array(pose, np.float32)
    x, y = pose[:, 0], pose[:, 1]
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(pose).all(1) & (x >= -img_w) & (x <= 2 * img_w) & (y >= -img_h) & (y <= 2 * img_h)
    pose[~ok] = 0
    return pose


def pose_box(pose, img_w, img_h, train, conf_thr=INPUT_CONF_THR, published=False):
    """The crop box of a detected pose [J,3] (x, y, conf; image px), as the test protocol makes it: the box of the
    joints above conf_thr (and usable_pose), x1.2, then process_bbox. None when no joint counts (or, in training, the
    box is degenerate)."""
    pose = usable_pose(pose, img_w, img_h)
    box = get_bbox(pose[:, :2], pose[:, 2] > conf_thr)
    return process_bbox(box, img_w, img_h, train=train, published=published) if box is not None else None


def test_crop(img, bbox, pose, conf_thr, size, published=False):
    """One person's test input: the crop of `bbox` without augmentation, and the input pose [J,3] (image px,
    confidence) on the heatmap grid. Returns (patch [S,S,3] of img's dtype, img2bb, bb2img, joints [J,3] (grid px,
    confidence), mask [J,1]: the joints above conf_thr that fall inside the grid). published: warped from the
    image in float32, as the reference does (here from uint8: values differ by up to 0.5/255)."""
    S, G = size, size // 4
    pose = usable_pose(pose, img.shape[1], img.shape[0])
    img = img.astype(np.float32) if published else img
    patch, img2bb, bb2img = generate_patch_image(img, bbox, 1.0, 0.0, False, (S, S))
    joints = np.zeros((len(pose), 3), np.float32)
    joints[:, :2] = crop_to_grid(transform_joints_2d(pose[:, :2], img2bb), (S, S), (G, G))
    joints[:, 2] = pose[:, 2]
    mask = truncation_mask(joints, pose[:, 2] > conf_thr, (G, G))
    return patch, img2bb, bb2img, joints, mask


def unflip_affine(img2bb, img_w):
    """The [2,3] affine from the original image to a flipped crop: a flipped crop's img2bb maps the mirrored
    image, while a renderer of the scene works on the original one."""
    return np.asarray(img2bb, np.float64) @ np.array([[-1.0, 0, img_w - 1], [0, 1, 0], [0, 0, 1]])


# ----------------------------------------------------------------------------------------------------
# 3D joints and SMPL parameters
# ----------------------------------------------------------------------------------------------------
SMPL24_FLIP_PERM = SMPL30.flip_permutation()[:24]  # the pairs of SMPL-30 among the 24 kinematic joints
if not (SMPL24_FLIP_PERM < 24).all():
    raise RuntimeError('SMPL-30 flip pairs must not mix kinematic and extra joints')


def rot_z(rot_deg):
    """3x3 rotation about the camera z axis by rot_deg: [[c,-s,0],[s,c,0],[0,0,1]] (float64)."""
    a = math.radians(rot_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotate_root_relative(joints_cam, rot_deg):
    """Root-relative camera-frame joints [...,J,3] (metres) -> Rz(-rot) joints: the 3D counterpart of
    the crop's in-plane rotation by `rot` (generate_patch_image). Rotates about the origin, so pass
    root-relative coordinates. Copy, float of the input (float64 for ints)."""
    j = _float_copy(joints_cam)
    return (j @ rot_z(-rot_deg).T).astype(j.dtype)


def _aa_to_mat(aa):
    return cv2.Rodrigues(np.asarray(aa, dtype=np.float64).reshape(3, 1))[0]


def _mat_to_aa(m):
    return cv2.Rodrigues(np.asarray(m, dtype=np.float64))[0].reshape(3)


def rotate_smpl_root(pose, rot_deg):
    """SMPL pose [...,72] (axis-angle, root first) with the root orientation pre-multiplied by Rz(-rot):
    the mesh then turns about its root joint exactly as `rotate_root_relative` turns its root-relative
    joints. Returns a copy (angle of the new root in [0, pi])."""
    pose = _float_copy(pose)
    if rot_deg == 0:
        return pose
    R = rot_z(-rot_deg)
    flat = pose.reshape(-1, pose.shape[-1])
    for row in flat:
        row[:3] = _mat_to_aa(R @ _aa_to_mat(row[:3]))
    return flat.reshape(pose.shape)


def flip_joints_3d(joints_cam, flip_pairs):
    """Mirror camera-frame joints [...,J,D>=3] about the x=0 plane (x -> -x) and swap left/right joints.
    Use on root-relative joints (the mirror of the body about its root's vertical plane)."""
    out = swap_flip_pairs(_float_copy(joints_cam), flip_pairs)
    out[..., 0] = -out[..., 0]
    return out


def flip_smpl_pose(pose):
    """Mirror an SMPL pose [...,72] (numpy or torch): swap the axis-angles of the left/right joints among
    the 24 SMPL joints and negate the y and z component of every axis-angle (M R M with M = diag(-1,1,1)
    has axis-angle (a_x, -a_y, -a_z)). The mesh of the result (zero translation) is the original mesh
    with x negated, for a left/right-symmetric body model. An involution."""
    shape = pose.shape
    p = pose.reshape(*shape[:-1], 24, 3)[..., SMPL24_FLIP_PERM, :]
    if isinstance(p, np.ndarray):
        sign = np.array([1, -1, -1], dtype=p.dtype if p.dtype.kind == 'f' else np.float64)
    else:
        import torch
        sign = torch.tensor([1.0, -1.0, -1.0], dtype=p.dtype, device=p.device)
    return (p * sign).reshape(shape)


def flip_translation_shift(root_cam, focal_x, princpt_x, img_w):
    """3DCrowdNet's x-shift (metres) for a flipped sample: 2 * ((W-1)/2 - cx) / fx * Z_r - 2 * X_r, with
    (X_r, Y_r, Z_r) = root_cam the root joint of the *original* body (camera frame, translation
    included) in an image of width img_w with camera (focal_x, princpt_x).

    Added to the original body's x it moves the root from X_r to (W-1-2cx)/fx * Z_r - X_r, the point
    that projects to W-1-u (u = the original root's projection): a point (X', Z) projects to
    W-1-u = W-1-cx - fx X/Z iff X' = (W-1-2cx)/fx Z - X. It equals the shift the *mirrored* body needs
    only when the model's root joint lies on its x=0 plane (mirroring then keeps the root's x);
    `flip_smpl_translation` is exact for any pose of a symmetric model. Only the root is exact: the
    other joints land within |W-1-2cx| * |dz| / Z px of the flipped projections (dz = depth offset from
    the root), since a mirror is the image flip only when cx = (W-1)/2.
    """
    root = np.asarray(root_cam, dtype=np.float64)
    return 2.0 * (((img_w - 1) / 2.0 - princpt_x) / focal_x * root[..., 2]) - 2.0 * root[..., 0]


def flip_smpl_translation(trans, root_cam, focal_x, princpt_x, img_w, flipped_root_x=None):
    """SMPL translation [...,3] (metres) for the body with pose `flip_smpl_pose(pose)`, such that its root
    joint projects to W-1-u, u the original root's projection (image width img_w, camera focal_x,
    princpt_x). root_cam: root joint (X_r, Y_r, Z_r) of the *original* body, translation included.

    The flipped body's root is at flipped_root_x + t'_x, where flipped_root_x is the root's x of the
    flipped-pose body at zero translation; the target is (W-1-2cx)/fx * Z_r - X_r (see
    flip_translation_shift), so t'_x = (W-1-2cx)/fx * Z_r - X_r - flipped_root_x; y and z unchanged
    (the mirror keeps depth). flipped_root_x=None assumes a left/right-symmetric body model (exact for
    the procedural body, a few mm off for the official SMPL): the mirrored root is at -(X_r - t_x), so
    t'_x = (W-1-2cx)/fx * Z_r - t_x, for any pose and shape."""
    t = np.array(trans, dtype=np.float64)
    root = np.asarray(root_cam, dtype=np.float64)
    k = (img_w - 1 - 2.0 * princpt_x) / focal_x
    if flipped_root_x is None:
        t[..., 0] = k * root[..., 2] - t[..., 0]
    else:
        t[..., 0] = k * root[..., 2] - root[..., 0] - np.asarray(flipped_root_x, dtype=np.float64)
    return t


def depth_to_grid(z, z_root, bbox_3d_size=2.0, hm_depth=64):
    """Camera depth -> grid px: ((z - z_root) / (bbox_3d_size/2) + 1) / 2 * hm_depth, so the range
    z_root ± bbox_3d_size/2 maps to [0, hm_depth]. z, z_root and bbox_3d_size in the same units
    (metres, or mm with bbox_3d_size * 1000)."""
    return ((np.asarray(z, dtype=np.float64) - z_root) / (bbox_3d_size / 2.0) + 1.0) / 2.0 * hm_depth
