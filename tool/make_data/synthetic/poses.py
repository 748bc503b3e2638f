"""A hand-made library of natural body poses, per-joint limits, and limit-respecting perturbation.

Poses are written per SMPL joint as intrinsic XYZ Euler angles in degrees, in the joint's local SMPL
frame (template axes: x = the body's left, y = up, z = forward; T-pose). R = Rx(x) @ Ry(y) @ Rz(z), so
applied to a bone Rz acts first. What the axes mean, for the joints that matter:
- spine (Torso, Spine, Chest), Neck, Head: x > 0 bends forward, y twists, z bends sideways;
- hips: x < 0 swings the thigh forward (flexion), y turns the leg in/out, z abducts (left: z > 0);
- knees: x > 0 only (the shin folds backwards); ankles: x > 0 points the toes down;
- shoulders (arm along +x for the left, -x for the right): z lowers/raises the arm in the frontal
  plane (left down: z < 0; right down: z > 0), then y swings it forward (left: y < 0), then x swings
  a lowered arm forward (x < 0, both sides) or twists a raised one;
- elbows: y only bends forward (left: y < 0, right: y > 0); x then turns the bent forearm about the
  upper arm's axis (rotation of the humerus, which SMPL fits split between shoulder and elbow).
The right side of a symmetric pose is the mirror of the left: (x, y, z) -> (x, -y, -z).

`JOINT_LIMITS` bounds every angle (no knee or elbow bends the wrong way); `sample_body_pose` picks a
library pose (optionally mirrored), blends a little of another one in, adds noise and clips to the
limits, and returns the 23 body joints as axis-angle (SMPL pose[3:72]).

A bend at the hips pitches the pelvis itself: `ROOT_PITCH` gives those poses a forward pitch of the whole body
(degrees, applied to the root by the scene), and their hips flex by about as much, so the legs stay under the body.
`POSE_NAMES` are the everyday poses drawn by default; `SIT_BEND_NAMES` the sitting, kneeling, crouching and bending
ones (some of them among `POSE_NAMES` too), drawn with the share `--sit-bend` of tool/make_data/make_synthetic.py asks
for.
"""
import numpy as np
from scipy.spatial.transform import Rotation

from common.body.joint_sets import SMPL_24

BODY_JOINTS = SMPL_24[1:]  # the 23 joints after the root, in SMPL order (pose[3:72])
_IDX = {n: i for i, n in enumerate(BODY_JOINTS)}


def mirror_name(name):
    if name.startswith('L_'):
        return 'R_' + name[2:]
    if name.startswith('R_'):
        return 'L_' + name[2:]
    return name


# (x, y, z) ranges in degrees, intrinsic XYZ, per joint; right side mirrored from the left.
_LEFT_AND_CENTRE_LIMITS = {
    'L_Hip': ((-125, 35), (-40, 45), (-15, 60)),
    'Torso': ((-20, 50), (-30, 30), (-25, 25)),
    'L_Knee': ((0, 150), (-10, 10), (-5, 5)),
    'Spine': ((-15, 30), (-25, 25), (-20, 20)),
    'L_Ankle': ((-30, 50), (-20, 25), (-20, 20)),
    'Chest': ((-15, 25), (-20, 20), (-15, 15)),
    'L_Toe': ((-30, 30), (-5, 5), (-5, 5)),
    'Neck': ((-30, 40), (-45, 45), (-25, 25)),
    'L_Thorax': ((-15, 15), (-20, 15), (-10, 30)),
    'Head': ((-30, 35), (-45, 45), (-25, 25)),
    'L_Shoulder': ((-150, 60), (-110, 40), (-90, 90)),
    'L_Elbow': ((-90, 90), (-150, 0), (-10, 10)),
    'L_Wrist': ((-45, 45), (-30, 30), (-60, 60)),
    'L_Hand': ((-10, 10), (-10, 10), (-10, 10)),
}


def _mirror_limits(lim):
    (x0, x1), (y0, y1), (z0, z1) = lim
    return ((x0, x1), (-y1, -y0), (-z1, -z0))


JOINT_LIMITS = {}
for _n in BODY_JOINTS:
    _src = _n if _n in _LEFT_AND_CENTRE_LIMITS else mirror_name(_n)
    _lim = _LEFT_AND_CENTRE_LIMITS[_src]
    JOINT_LIMITS[_n] = _lim if _src == _n else _mirror_limits(_lim)
LIMITS_DEG = np.array([JOINT_LIMITS[n] for n in BODY_JOINTS], dtype=np.float64)  # [23, 3, 2]

# Joints kept at rest (hands: the fits never constrain them) and how much noise each joint gets,
# as a fraction of its range.
_NOISE = {'L_Hand': 0.0, 'R_Hand': 0.0, 'L_Toe': 0.05, 'R_Toe': 0.05, 'L_Knee': 0.06, 'R_Knee': 0.06,
          'L_Elbow': 0.07, 'R_Elbow': 0.07}
NOISE_FRACTION = np.array([_NOISE.get(n, 0.06) for n in BODY_JOINTS])


def _pose(sym=None, **joints):
    """A pose as [23, 3] Euler degrees; `sym` entries are given for the left (or centre) joint and
    mirrored to the right; keyword entries set one joint each."""
    e = np.zeros((len(BODY_JOINTS), 3))
    for name, xyz in (sym or {}).items():
        e[_IDX[name]] = xyz
        if mirror_name(name) != name:
            x, y, z = xyz
            e[_IDX[mirror_name(name)]] = (x, -y, -z)
    for name, xyz in joints.items():
        e[_IDX[name]] = xyz
    return e


_ARMS_DOWN = {'L_Shoulder': (0, 0, -76), 'L_Elbow': (0, -12, 0)}

POSE_LIBRARY = {
    'stand': _pose(_ARMS_DOWN),
    'stand_relaxed': _pose({'L_Shoulder': (-5, 0, -70), 'L_Elbow': (0, -20, 0)},
                           L_Hip=(0, 5, 6), R_Hip=(-8, 0, -2), R_Knee=(12, 0, 0), Spine=(0, 0, -4),
                           Head=(0, 0, 5)),
    'walk': _pose({'L_Elbow': (0, -20, 0), 'L_Ankle': (5, 0, 0)},
                  L_Hip=(-28, 0, 2), L_Knee=(8, 0, 0), R_Hip=(12, 0, -2), R_Knee=(25, 0, 0), R_Ankle=(15, 0, 0),
                  L_Shoulder=(25, 0, -74), R_Shoulder=(-25, 0, 74), R_Elbow=(0, 28, 0), Torso=(4, -5, 0)),
    'run': _pose({'L_Elbow': (0, -95, 0)},
                 L_Hip=(-60, 0, 3), L_Knee=(75, 0, 0), R_Hip=(20, 0, -3), R_Knee=(95, 0, 0), R_Ankle=(30, 0, 0),
                 L_Shoulder=(45, 0, -72), R_Shoulder=(-50, 0, 72), Torso=(12, -8, 0), Spine=(5, 0, 0)),
    'sit': _pose({'L_Hip': (-88, 0, 6), 'L_Knee': (88, 0, 0), 'L_Shoulder': (-30, 0, -68),
                  'L_Elbow': (0, -55, 0)}, Torso=(5, 0, 0)),
    'sit_ground': _pose({'L_Hip': (-85, 0, 12), 'L_Knee': (25, 0, 0), 'L_Shoulder': (40, 0, -62),
                         'L_Elbow': (0, -5, 0), 'L_Ankle': (20, 0, 0)}, Torso=(-10, 0, 0), Neck=(10, 0, 0)),
    'crouch': _pose({'L_Hip': (-105, 0, 14), 'L_Knee': (125, 0, 0), 'L_Ankle': (-25, 0, 0),
                     'L_Shoulder': (-45, 0, -62), 'L_Elbow': (0, -50, 0)},
                    Torso=(25, 0, 0), Spine=(10, 0, 0), Neck=(-15, 0, 0)),
    'squat': _pose({'L_Hip': (-110, -15, 25), 'L_Knee': (130, 0, 0), 'L_Ankle': (-25, 0, 0),
                    'L_Shoulder': (-80, 0, -70), 'L_Elbow': (0, -15, 0)}, Torso=(20, 0, 0), Neck=(-20, 0, 0)),
    'kneel': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -20, 0)},
                   L_Hip=(-90, 0, 5), L_Knee=(90, 0, 0), R_Hip=(0, 0, -3), R_Knee=(90, 0, 0), R_Ankle=(40, 0, 0)),
    'lunge': _pose({'L_Shoulder': (0, 0, -70), 'L_Elbow': (0, -15, 0)},
                   L_Hip=(-75, 0, 5), L_Knee=(80, 0, 0), R_Hip=(25, 0, -4), R_Knee=(25, 0, 0), R_Ankle=(30, 0, 0),
                   Torso=(5, 0, 0)),
    'wave': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -12, 0)},
                  R_Shoulder=(-90, 0, -15), R_Elbow=(0, 100, 0), R_Wrist=(0, 0, 10), Head=(0, -10, 0)),
    'cheer': _pose({'L_Thorax': (0, 0, 20), 'L_Shoulder': (0, -10, 55), 'L_Elbow': (0, -20, 0)},
                   Head=(-15, 0, 0)),
    'reach_up': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -12, 0)},
                      R_Thorax=(0, 0, -20), R_Shoulder=(0, 10, -60), R_Elbow=(0, 10, 0), Head=(-20, 0, 0),
                      Spine=(0, 0, 8)),
    'reach_forward': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -12, 0)},
                           R_Shoulder=(0, 80, 5), R_Elbow=(0, 10, 0), Torso=(15, 10, 0), Spine=(5, 0, 0)),
    'point': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -12, 0)},
                   L_Shoulder=(0, -45, 0), L_Elbow=(0, -5, 0), Head=(0, 20, 0)),
    'arms_crossed': _pose({'L_Shoulder': (-25, 0, -75), 'L_Elbow': (50, -100, 0)}, Head=(5, 0, 0)),
    'hands_on_hips': _pose({'L_Shoulder': (15, 0, -45), 'L_Elbow': (80, -110, 0), 'L_Wrist': (0, 0, -20)}),
    'hands_front': _pose({'L_Shoulder': (-15, 0, -72), 'L_Elbow': (0, -85, 0)}, Neck=(25, 0, 0), Head=(10, 0, 0)),
    'phone': _pose({'L_Shoulder': (0, 0, -72), 'L_Elbow': (0, -12, 0)},
                   R_Shoulder=(-30, 35, 65), R_Elbow=(0, 145, 0), Head=(0, 0, -10)),
    'arms_forward': _pose({'L_Shoulder': (0, -75, -15), 'L_Elbow': (0, -35, 0)}, Torso=(5, 0, 0)),
    'bend_over': _pose({'L_Hip': (-35, 0, 4), 'L_Shoulder': (-60, 0, -72), 'L_Elbow': (0, -10, 0)},
                       Torso=(35, 0, 0), Spine=(25, 0, 0), Chest=(15, 0, 0), Neck=(-20, 0, 0)),
    'dance': _pose(L_Shoulder=(0, -10, 40), L_Elbow=(0, -30, 0), R_Shoulder=(-20, 30, 40), R_Elbow=(0, 90, 0),
                   L_Hip=(-30, 0, 10), L_Knee=(50, 0, 0), R_Hip=(0, 0, -8), R_Knee=(10, 0, 0),
                   Torso=(0, 15, 0), Spine=(0, 0, 10), Head=(0, 0, -10)),
    'dance_low': _pose({'L_Shoulder': (-40, -30, -40), 'L_Elbow': (0, -90, 0), 'L_Hip': (-25, 0, 12),
                        'L_Knee': (35, 0, 0)}, Torso=(10, -15, 0), Spine=(0, 0, -8)),
    'jump': _pose({'L_Hip': (-45, 0, 8), 'L_Knee': (65, 0, 0), 'L_Ankle': (35, 0, 0), 'L_Thorax': (0, 0, 15),
                   'L_Shoulder': (0, 0, 45), 'L_Elbow': (0, -25, 0)}),
}
POSE_NAMES = tuple(POSE_LIBRARY)   # the everyday library, drawn uniformly by default

# sitting (on a chair the scene does not draw, or on the ground), kneeling and bending at the hips
POSE_LIBRARY.update({
    'sit_lean_forward': _pose({'L_Hip': (-105, 0, 8), 'L_Knee': (100, 0, 0), 'L_Shoulder': (-55, 0, -70),
                               'L_Elbow': (0, -75, 0)}, Torso=(15, 0, 0), Spine=(10, 0, 0), Neck=(-20, 0, 0)),
    'sit_back': _pose({'L_Hip': (-75, 0, 6), 'L_Knee': (85, 0, 0), 'L_Shoulder': (-35, 0, -70),
                       'L_Elbow': (0, -60, 0)}, Neck=(15, 0, 0)),
    'sit_table': _pose({'L_Hip': (-90, 0, 6), 'L_Knee': (90, 0, 0), 'L_Shoulder': (0, -70, -20),
                        'L_Elbow': (0, -75, 0)}, Torso=(10, 0, 0), Neck=(10, 0, 0)),
    'sit_legs_crossed': _pose({'L_Shoulder': (-30, 0, -68), 'L_Elbow': (0, -55, 0)},
                              L_Hip=(-105, 5, -12), L_Knee=(70, 0, 0), L_Ankle=(20, 0, 0),
                              R_Hip=(-85, 0, -6), R_Knee=(90, 0, 0)),
    'sit_cross_legged': _pose({'L_Hip': (-85, 40, 50), 'L_Knee': (125, 0, 0), 'L_Ankle': (10, 0, 0),
                               'L_Shoulder': (-30, 0, -62), 'L_Elbow': (0, -40, 0)}, Torso=(10, 0, 0)),
    'sit_hug_knees': _pose({'L_Hip': (-122, 0, 5), 'L_Knee': (145, 0, 0), 'L_Shoulder': (-75, 0, -62),
                            'L_Elbow': (0, -85, 0)}, Torso=(20, 0, 0), Spine=(15, 0, 0), Neck=(-10, 0, 0)),
    'bend_pick_up': _pose({'L_Hip': (-65, 0, 5), 'L_Knee': (15, 0, 0), 'L_Shoulder': (-85, 0, -76),
                           'L_Elbow': (0, -10, 0)}, Spine=(15, 0, 0), Chest=(5, 0, 0), Neck=(-25, 0, 0),
                          Head=(-15, 0, 0)),
    'bend_hands_knees': _pose({'L_Hip': (-55, 0, 6), 'L_Knee': (35, 0, 0), 'L_Shoulder': (-60, 0, -72),
                               'L_Elbow': (0, -10, 0)}, Spine=(15, 0, 0), Neck=(-25, 0, 0), Head=(-10, 0, 0)),
    'bow': _pose({'L_Hip': (-45, 0, 3), 'L_Shoulder': (-10, 0, -78), 'L_Elbow': (0, -5, 0)}, Spine=(5, 0, 0)),
    'lean_forward': _pose({'L_Hip': (-22, 0, 4), 'L_Knee': (5, 0, 0), 'L_Shoulder': (-30, 0, -74),
                           'L_Elbow': (0, -25, 0)}, Spine=(10, 0, 0), Neck=(-10, 0, 0)),
    'kneel_one_knee': _pose({'L_Shoulder': (-70, 0, -70), 'L_Elbow': (0, -30, 0)},
                            L_Hip=(-110, 0, 6), L_Knee=(105, 0, 0), R_Hip=(-5, 0, -4), R_Knee=(95, 0, 0),
                            R_Ankle=(40, 0, 0), Torso=(15, 0, 0)),
})
ROOT_PITCH = {'sit_lean_forward': 15, 'sit_back': -15, 'bend_pick_up': 70, 'bend_hands_knees': 40, 'bow': 45,
              'lean_forward': 22, 'kneel_one_knee': 15}
SIT_BEND_NAMES = ('sit', 'sit_ground', 'crouch', 'squat', 'kneel', 'bend_over') + tuple(
    n for n in POSE_LIBRARY if n not in POSE_NAMES)
OTHER_NAMES = tuple(n for n in POSE_NAMES if n not in SIT_BEND_NAMES)


def euler_to_axis_angle(euler_deg):
    """[..., 3] intrinsic XYZ Euler degrees -> [..., 3] axis-angle (angle in [0, pi])."""
    e = np.asarray(euler_deg, np.float64)
    rv = Rotation.from_euler('XYZ', e.reshape(-1, 3), degrees=True).as_rotvec()
    return rv.reshape(e.shape)


def mirror_pose(euler_deg):
    """Left/right mirror of a [23, 3] Euler pose: swap sides and negate y and z."""
    e = np.asarray(euler_deg)
    out = np.empty_like(e)
    for i, n in enumerate(BODY_JOINTS):
        x, y, z = e[_IDX[mirror_name(n)]]
        out[i] = (x, -y, -z)
    return out


def within_limits(euler_deg, tol=1e-6):
    """[23, 3] Euler degrees -> [23, 3] bool, True where the angle is inside its joint limit."""
    e = np.asarray(euler_deg)
    return (e >= LIMITS_DEG[..., 0] - tol) & (e <= LIMITS_DEG[..., 1] + tol)


def clip_to_limits(euler_deg):
    return np.clip(euler_deg, LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])


def sample_pose_euler(rng, noise=1.0, blend=0.3, names=POSE_NAMES):
    """(name, [23, 3] Euler degrees, root pitch in degrees): a random library pose among `names`, maybe mirrored,
    blended with up to `blend` of another one (its root pitch too), plus Gaussian noise (`noise` x a per-joint
    fraction of the range), clipped to the limits. A convex blend of in-limit poses is in the limits; clipping
    keeps the noise there."""
    name = names[rng.integers(len(names))]
    e = POSE_LIBRARY[name].copy()
    pitch = ROOT_PITCH.get(name, 0.0)
    if rng.random() < 0.5:
        e = mirror_pose(e)
    if blend > 0:
        other_name = names[rng.integers(len(names))]
        other = POSE_LIBRARY[other_name]
        if rng.random() < 0.5:
            other = mirror_pose(other)
        w = rng.uniform(0, blend)
        e = (1 - w) * e + w * other
        pitch = (1 - w) * pitch + w * ROOT_PITCH.get(other_name, 0.0)
    span = LIMITS_DEG[..., 1] - LIMITS_DEG[..., 0]
    e = e + rng.standard_normal(e.shape) * span * NOISE_FRACTION[:, None] * noise
    return name, clip_to_limits(e), pitch


def sample_body_pose_euler(rng, noise=1.0, blend=0.3, names=POSE_NAMES):
    """(name, [23, 3] Euler degrees): `sample_pose_euler` without the root pitch."""
    return sample_pose_euler(rng, noise, blend, names)[:2]


def sample_body_pose(rng, noise=1.0, blend=0.3, names=POSE_NAMES):
    """(name, [69] axis-angle body pose: SMPL pose[3:72]) without the root pitch."""
    name, e = sample_body_pose_euler(rng, noise, blend, names)
    return name, euler_to_axis_angle(e).reshape(-1)
