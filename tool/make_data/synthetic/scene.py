"""Scene layout: the camera, people standing on a common floor, and object occluders.

Frames. The *world* frame is the camera's, levelled: x right, y DOWN (gravity), z forward horizontal,
origin at the camera centre, floor at y = camera height. The camera is pitched down by `tilt_deg`;
`SceneCamera.R` maps world to camera coordinates (OpenCV axes). SMPL's template is y-up, so an upright
body facing the camera has world root orientation Rx(pi); `yaw` turns it about the vertical
(0 = facing the camera). Everything stored in the annotations is in the camera frame, as in 3DPW:
BodyModel(pose, shape, trans) gives camera-frame vertices, and projecting them with the intrinsics
gives the image.

People are placed so their lowest vertex touches the floor. With probability `overlap` a person is
put in front of or behind someone already placed, laterally offset by a fraction of a body width, so
one hides part of the other; otherwise anywhere in view. Bodies are kept apart on the floor (pelvis
distance > 0.8 x the sum of their footprint radii), so they rarely touch and never stand inside each other.

Two cameras. `sample_camera` (the published-like default): a 3DPW-like focal length, 0.9-2.1 m above the floor,
looking at the middle of a standing person who fills 30-70% of the image height. `frame_camera` (the options of
photographs: truncation, distance, elevation) frames the first person as a photographer would: whole, or cut by the
bottom edge below the head (a close or medium shot), from a distance and an elevation drawn from ranges; the others
are then placed wholly in the frame or, as asked per person, cut by it (`place_people(cut=...)`).
"""
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.spatial.transform import Rotation

from common.body.joint_sets import OPENPOSE18, SMPL30
from common.camera import Camera
from tool.make_data.synthetic.poses import (OTHER_NAMES, POSE_NAMES, SIT_BEND_NAMES, euler_to_axis_angle,
                                            sample_pose_euler)

GENDERS = ('neutral', 'male', 'female')
GENDER_P = (0.4, 0.3, 0.3)
BODY_HEIGHT = 1.7      # metres, for choosing depths (the real heights vary with the shape)
MIN_DEPTH = 2.4        # metres: nobody closer (strong perspective distortion, most of the body out of view)
FOCAL = (0.867, 1.224)  # focal length range x the image's long side: 1.02 x 0.85-1.2 (3DPW: ~1962 px for 1920)
NEAR_M = 0.8           # framed scenes: nobody closer, unless a distance range says otherwise
MIN_CAMERA_HEIGHT = 0.2  # framed scenes: the camera stays above the floor
CUT_MIN = 0.1          # a person is cut by the frame when this fraction of the mesh vertices projects outside it;
MIN_JOINTS_IN_VIEW = 6  # a cut person still shows its head and this many of the detector's 18 joints (a detector
OPENPOSE_IN_SMPL30 = np.array([SMPL30.index(n) for n in OPENPOSE18.joints])   # finds such people in photographs)
HEAD_IN_SMPL30 = np.array([SMPL30.index(n) for n in ('Nose', 'Head_top')])
MIN_CAMERA_DEPTH = 0.3  # framed scenes: no vertex closer to the camera plane (a steep camera near a body has its
                        # feet or head behind it)


class SceneError(Exception):
    """A scene that cannot be used (e.g. a mesh with NaNs, nobody visible): retried with a new seed."""


@dataclass(frozen=True)
class SceneCamera(Camera):
    """The image's camera and where it stands: height above the floor, pitch."""
    height_m: float      # camera height above the floor
    tilt_deg: float      # pitched down by this much
    z_anchor: float = 4.0  # depth of the first person placed (the camera looks at about there)
    elevation_deg: float = 0.0  # the line of sight to the middle of the first person, above the horizontal

    @property
    def R(self):
        """World -> camera rotation: rows are the camera axes in world coordinates."""
        t = math.radians(self.tilt_deg)
        return np.array([[1.0, 0.0, 0.0],
                         [0.0, math.cos(t), -math.sin(t)],
                         [0.0, math.sin(t), math.cos(t)]])


@dataclass
class Person:
    gender: str
    shape: np.ndarray            # [10]
    body_pose: np.ndarray        # [69] axis-angle, joints 1..23
    pose_name: str
    yaw_deg: float
    lean: np.ndarray             # [3] small root lean (axis-angle, body frame)
    pose: Optional[np.ndarray] = None    # [72], root in the camera frame
    trans: Optional[np.ndarray] = None   # [3], camera frame
    verts: Optional[np.ndarray] = None   # [V, 3] camera frame
    joints: Optional[np.ndarray] = None  # [30, 3] camera frame (SMPL-30)
    ground: Optional[np.ndarray] = None  # [3] world point on the floor below the pelvis
    radius: float = 0.3                  # horizontal footprint radius (m)
    materials: Optional[np.ndarray] = None
    colours: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)


@dataclass
class Occluder:
    kind: str               # 'pole', 'box', 'blob', 'rail'
    polygon: np.ndarray     # [K, 2] pixel coordinates
    colour: tuple


def sample_camera(rng, width, height, focal=FOCAL):
    """The published-like camera: looking at the middle of a standing person who fills 30-70% of the image height."""
    f = max(width, height) * rng.uniform(*focal)
    princpt = (width / 2 + rng.normal(0, 0.01 * width), height / 2 + rng.normal(0, 0.01 * height))
    cam_h = rng.uniform(0.9, 2.1)
    frac = rng.uniform(0.3, 0.7)           # the first person's height as a fraction of the image
    z_anchor = BODY_HEIGHT * f / (frac * height)
    # look at the middle of a person standing at the anchor depth, give or take
    elevation = math.degrees(math.atan2(cam_h - 0.9, z_anchor))
    tilt = float(np.clip(elevation + rng.normal(0, 2), -5, 35))
    return SceneCamera(int(width), int(height), (f, f), princpt, height_m=cam_h, tilt_deg=tilt, z_anchor=z_anchor,
                  elevation_deg=elevation)


def log_uniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def frame_camera(rng, width, height, anchor, cut, focal=FOCAL, distance=None, elevation=None, margin=0.03):
    """A camera framing the first person, `anchor` (a Person posed in a levelled frame: y down, no translation),
    whole (cut=False) or cut by the bottom edge with 25-80% of its height in view from the top (a close or medium
    shot), its head at least `margin` x the height below the top edge. focal: range x the image's long side
    (uniform); distance: range of its depth in metres (log-uniform, within what keeps a whole body 10-90% of the
    image height, a cut one's visible part 45-90%), or None: it fills 30-70% (cut: 50-90%), at least NEAR_M away;
    elevation: range of the angle of the line of sight to the middle of its framed part above the horizontal in
    degrees (positive: seen from above; the camera stays MIN_CAMERA_HEIGHT above the floor), or None: the camera
    0.9-2.1 m above the floor."""
    f = max(width, height) * rng.uniform(*focal)
    princpt = (width / 2 + rng.normal(0, 0.01 * width), height / 2 + rng.normal(0, 0.01 * height))
    y = anchor.verts[:, 1]
    top = float(y.max() - y.min())                            # its head's height above the floor it stands on
    span = top * (rng.uniform(0.25, 0.8) if cut else 1.0)     # the framed part, from the top
    if distance is None:
        z = max(span * f / (rng.uniform(*((0.5, 0.9) if cut else (0.3, 0.7))) * height), NEAR_M)
    else:
        fill = (0.45, 0.9) if cut else (0.1, 0.9)
        near, far = span * f / (fill[1] * height), span * f / (fill[0] * height)
        lo, hi = max(near, distance[0]), min(far, distance[1])
        z = log_uniform(rng, lo, hi) if lo <= hi else min(max(near, distance[0]), distance[1])
    aim = top - span / 2
    if elevation is None:
        cam_h = rng.uniform(0.9, 2.1)
    else:
        e = max(rng.uniform(*elevation), math.degrees(math.atan2(MIN_CAMERA_HEIGHT - aim, z)))
        cam_h = aim + z * math.tan(math.radians(e))
    # a point's row depends only on its angle below the horizontal (a tilt turns about the x axis): row =
    # cy + f tan(angle - tilt), exactly, whatever its x; the anchor stands at depth z (its pelvis), on the floor
    pelvis = anchor.joints[0]
    down = np.arctan2(cam_h - (y.max() - y), anchor.verts[:, 2] - pelvis[2] + z)
    tilt_at = lambda angle, row: angle - math.atan((row - princpt[1]) / f)  # noqa: E731  tilt putting angle on row
    head = tilt_at(down.min(), margin * height)               # the tilt that puts the head on the top margin
    if cut:
        tilt = min(tilt_at(math.atan2(cam_h - (top - span), z), height - 1), head)
    else:
        feet = tilt_at(down.max(), (1 - margin) * height)
        tilt = rng.uniform(feet, head) if feet <= head else head
    return SceneCamera(int(width), int(height), (f, f), princpt, height_m=cam_h, tilt_deg=math.degrees(tilt), z_anchor=z,
                  elevation_deg=math.degrees(math.atan2(cam_h - aim, z)))


def sample_person(rng, pose_noise=1.0, sit_bend=None):
    """sit_bend: the probability of a sitting, kneeling, crouching or bending pose (SIT_BEND_NAMES, else one of
    the others); None: any pose of the everyday library (POSE_NAMES)."""
    gender = GENDERS[rng.choice(len(GENDERS), p=GENDER_P)]
    shape = np.clip(rng.standard_normal(10), -2.5, 2.5)
    names = POSE_NAMES if sit_bend is None else SIT_BEND_NAMES if rng.random() < sit_bend else OTHER_NAMES
    name, euler, pitch = sample_pose_euler(rng, noise=pose_noise, names=names)
    lean = np.array([rng.normal(0, 0.04) + math.radians(pitch), 0.0, rng.normal(0, 0.04)])
    return Person(gender, shape, euler_to_axis_angle(euler).reshape(-1), name, float(rng.uniform(0, 360)), lean)


def root_rotation(R, yaw_deg, lean):
    """Camera-frame root rotation (R: world -> camera) of an upright body turned by yaw, leaning (lean[0]: forward)."""
    r_world = Rotation.from_euler('x', 180, degrees=True) * Rotation.from_euler('y', yaw_deg, degrees=True) \
        * Rotation.from_rotvec(lean)
    return Rotation.from_matrix(R) * r_world


def pose_people(people, R, models):
    """Fill pose (camera-frame root; R: world -> camera) and the untranslated camera-frame mesh of every person,
    grouped by gender (one body-model call per gender). Raises SceneError on non-finite vertices."""
    import torch
    for p in people:
        p.pose = np.concatenate([root_rotation(R, p.yaw_deg, p.lean).as_rotvec(), p.body_pose])
    for g in GENDERS:
        idx = [i for i, p in enumerate(people) if p.gender == g]
        if not idx:
            continue
        pose = torch.tensor(np.stack([people[i].pose for i in idx]), dtype=torch.float32)
        shape = torch.tensor(np.stack([people[i].shape for i in idx]), dtype=torch.float32)
        with torch.no_grad():
            v, j = models[g](pose, shape, None)
        for k, i in enumerate(idx):
            people[i].verts, people[i].joints = v[k].double().numpy(), j[k].double().numpy()
    for i, p in enumerate(people):
        if not (np.isfinite(p.verts).all() and np.isfinite(p.joints).all()):
            raise SceneError(f'person {i} ({p.pose_name}): the body model gave a mesh with NaN/inf vertices')


def _visible_x_range(cam, z, margin):
    """World x range whose projection is inside the image at depth ~z (level approximation)."""
    half_l = (cam.princpt[0] - margin) / cam.focal[0] * z
    half_r = (cam.width - cam.princpt[0] - margin) / cam.focal[0] * z
    return -half_l, half_r


def place_people(rng, cam, people, overlap=0.6, max_tries=30, cut=None, depth=(MIN_DEPTH, math.inf)):
    """Choose depths and lateral positions on the floor (people posed by pose_people); set trans and move verts/joints.
    People that cannot be placed without interpenetration are dropped. cut: None (anywhere in view), or whether each
    person is cut by the frame, each one kept only where `frame_status` says so (the first one at the depth the
    camera frames; the others every other try across the left or right edge), else dropped. depth: everyone's depth
    range (m). Returns the placed people."""
    z_anchor = cam.z_anchor
    R = cam.R
    clip = lambda z: min(max(z, depth[0]), depth[1])  # noqa: E731
    placed, spots = [], []
    for k, p in enumerate(people):
        world = p.verts @ R                        # camera -> world (rows): w = R^T c
        pelvis = p.joints[0] @ R
        horiz = world[:, [0, 2]] - pelvis[[0, 2]]
        p.radius = float(max(0.2, np.percentile(np.linalg.norm(horiz, axis=1), 95) * 0.8))
        body_w = 0.45
        ok = False
        for attempt in range(max_tries):
            if k == 0:
                z = z_anchor
                lo, hi = _visible_x_range(cam, z, 0.15 * cam.width)
                x = rng.uniform(lo, hi) * 0.6
            elif placed and rng.random() < overlap:
                j = rng.integers(len(placed))
                zj, xj = spots[j]
                dz = rng.uniform(0.5, 2.2) * (1 if rng.random() < 0.55 else -1)
                z = clip(zj + dz)
                off = rng.uniform(0.1, 0.75) * body_w * (1 if rng.random() < 0.5 else -1)
                x = z * (xj + off) / zj
            else:
                z = clip(z_anchor * (rng.uniform(0.75, 1.6) if cut is None else log_uniform(rng, 0.6, 3.0)))
                lo, hi = _visible_x_range(cam, z, 0.05 * cam.width)
                x = rng.uniform(lo, hi)
            if cut is not None and k > 0 and cut[k] and attempt % 2:
                x = _across_an_edge(rng, cam, z)
            if not all(math.hypot(x - xs, z - zs) > 0.8 * (p.radius + q.radius) for (zs, xs), q in zip(spots, placed)):
                continue
            if cut is not None:
                t = _translation(cam, world, pelvis, x, z)
                if frame_status(cam, p.verts + t, p.joints + t) != ('cut' if cut[k] else 'whole'):
                    continue
            ok = True
            break
        if not ok:
            continue
        p.trans = _translation(cam, world, pelvis, x, z)
        p.verts = p.verts + p.trans
        p.joints = p.joints + p.trans
        p.ground = np.array([x, cam.height_m, z])
        placed.append(p)
        spots.append((z, x))
    return placed


def _translation(cam, world, pelvis, x, z):
    """The camera-frame translation that stands a body (world-frame vertices, pelvis) on the floor, its pelvis above
    the floor point (x, z)."""
    return cam.R @ np.array([x - pelvis[0], cam.height_m - world[:, 1].max(), z - pelvis[2]])


def _across_an_edge(rng, cam, z):
    """A world x at depth z that puts a body's middle within about a body width of the left or right edge."""
    edge = 0.0 if rng.random() < 0.5 else float(cam.width)
    u = edge + rng.uniform(-1.2, 1.2) * 0.25 * cam.focal[0] / z
    return (u - cam.princpt[0]) * z / cam.focal[0]


def frame_status(cam, verts, joints):
    """'whole' (no vertex outside the image), 'cut' (at least CUT_MIN of the vertices outside; the nose, the head top
    and at least MIN_JOINTS_IN_VIEW of the detector's 18 joints inside) or None (in between, or a vertex closer than
    MIN_CAMERA_DEPTH to the camera plane), for camera-frame verts and SMPL-30 joints."""
    if verts[:, 2].min() < MIN_CAMERA_DEPTH:
        return None
    out = cam.outside(verts).mean()
    if out == 0:
        return 'whole'
    shown = len(OPENPOSE_IN_SMPL30) - int(cam.outside(joints[OPENPOSE_IN_SMPL30]).sum())
    head = not cam.outside(joints[HEAD_IN_SMPL30]).any()
    return 'cut' if out >= CUT_MIN and shown >= MIN_JOINTS_IN_VIEW and head else None


def _box(uv, w, h):
    x0, y0 = np.clip(uv.min(0), 0, [w, h])
    x1, y1 = np.clip(uv.max(0), 0, [w, h])
    return x0, y0, x1, y1


def sample_occluders(rng, cam, people, prob=0.4):
    """0-2 objects in front of randomly chosen people (poles, crates/boxes, foliage, railings)."""
    out = []
    if not people or rng.random() >= prob:
        return out
    w, h = cam.width, cam.height
    for _ in range(1 if rng.random() < 0.7 else 2):
        p = people[rng.integers(len(people))]
        x0, y0, x1, y1 = _box(cam.project(p.verts), w, h)
        bw, bh = max(x1 - x0, 4), max(y1 - y0, 4)
        kind = ('pole', 'box', 'blob', 'rail')[rng.choice(4, p=(0.3, 0.3, 0.25, 0.15))]
        if kind == 'pole':
            pw = rng.uniform(0.08, 0.3) * bw
            cx = rng.uniform(x0 + 0.1 * bw, x1 - 0.1 * bw)
            lean = rng.normal(0, 0.03) * h
            top = rng.uniform(-0.1, 0.4) * h if rng.random() < 0.5 else -1
            poly = [(cx - pw / 2 + lean, top), (cx + pw / 2 + lean, top), (cx + pw / 2, h + 1), (cx - pw / 2, h + 1)]
            colour = (np.array([[70, 70, 75], [40, 70, 45], [110, 80, 55], [150, 150, 150]])[rng.integers(4)]
                      * rng.uniform(0.7, 1.2))
        elif kind == 'box':
            ow, oh = rng.uniform(0.5, 1.4) * bw, rng.uniform(0.2, 0.55) * bh
            cx = rng.uniform(x0, x1)
            bottom = min(y1 + rng.uniform(0, 0.15) * bh, h + 1) if rng.random() < 0.7 else h + 1
            poly = [(cx - ow / 2, bottom - oh), (cx + ow / 2, bottom - oh), (cx + ow / 2, bottom), (cx - ow / 2, bottom)]
            colour = (np.array([[140, 100, 60], [170, 150, 110], [90, 90, 100], [160, 40, 40], [40, 60, 140]])
                      [rng.integers(5)] * rng.uniform(0.7, 1.2))
        elif kind == 'blob':
            r = rng.uniform(0.25, 0.5) * bw + 0.08 * bh
            cx, cy = rng.uniform(x0, x1), rng.uniform(y0 + 0.4 * bh, y1)
            ang = np.sort(rng.uniform(0, 2 * np.pi, 14))
            rad = r * rng.uniform(0.6, 1.1, 14)
            poly = np.stack([cx + rad * np.cos(ang), cy + 0.8 * rad * np.sin(ang)], 1)
            colour = np.array([[60, 110, 45], [90, 130, 50], [110, 90, 50]])[rng.integers(3)] * rng.uniform(0.7, 1.1)
        else:
            th = rng.uniform(0.025, 0.05) * bh
            cy = rng.uniform(y0 + 0.45 * bh, y0 + 0.8 * bh)
            poly = [(-1, cy - th / 2), (w + 1, cy - th / 2), (w + 1, cy + th / 2), (-1, cy + th / 2)]
            colour = np.array([150, 150, 155]) * rng.uniform(0.5, 1.2)
        out.append(Occluder(kind, np.asarray(poly, np.float64), tuple(np.clip(colour, 0, 255))))
    return out
