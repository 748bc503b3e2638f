"""Joint sets of the datasets and models, with flip pairs, skeletons and name-based mapping.

Every dataset speaks its own joint order; everything is converted by *name* (the 3DCrowdNet rule):
a destination joint takes the source joint of the same name, unmatched joints are zero (and so are
their validity masks).
"""
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class JointSet:
    name: str
    joints: tuple
    flip_pairs: tuple = ()
    skeleton: tuple = ()
    root: str = 'Pelvis'
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, '_index', {n: i for i, n in enumerate(self.joints)})
        if len(self._index) != len(self.joints):
            raise ValueError(f'joint set {self.name} has duplicate joint names')

    def __len__(self):
        return len(self.joints)

    def index(self, name):
        return self._index[name]

    @property
    def root_idx(self):
        return self._index[self.root]

    def flip_permutation(self):
        """Index array p such that joints[p] is the left/right-mirrored order."""
        perm = np.arange(len(self.joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


def _pairs_by_name(joints):
    """Flip pairs derived from L_/R_ prefixes, so they cannot be mistyped (a reference bug)."""
    idx = {n: i for i, n in enumerate(joints)}
    return tuple((i, idx['R_' + n[2:]]) for i, n in enumerate(joints)
                 if n.startswith('L_') and 'R_' + n[2:] in idx)


def _make(name, joints, skeleton_names=(), root='Pelvis'):
    joints = tuple(joints)
    idx = {n: i for i, n in enumerate(joints)}
    skeleton = tuple((idx[a], idx[b]) for a, b in skeleton_names)
    return JointSet(name, joints, _pairs_by_name(joints), skeleton, root)


SMPL_24 = ('Pelvis', 'L_Hip', 'R_Hip', 'Torso', 'L_Knee', 'R_Knee', 'Spine', 'L_Ankle', 'R_Ankle', 'Chest',
           'L_Toe', 'R_Toe', 'Neck', 'L_Thorax', 'R_Thorax', 'Head', 'L_Shoulder', 'R_Shoulder', 'L_Elbow',
           'R_Elbow', 'L_Wrist', 'R_Wrist', 'L_Hand', 'R_Hand')
# Parent of each SMPL kinematic joint (the official kintree).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SMPL_EXTRA = ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear', 'Head_top')  # regressed from single vertices

SMPL30 = _make('SMPL30', SMPL_24 + SMPL_EXTRA,
               [(SMPL_24[i], SMPL_24[p]) for i, p in enumerate(SMPL_PARENTS) if p >= 0]
               + [('Head', 'Nose'), ('Nose', 'L_Eye'), ('Nose', 'R_Eye'), ('L_Eye', 'L_Ear'),
                  ('R_Eye', 'R_Ear'), ('Head', 'Head_top')])

GRAPH15 = _make('Graph15', ('Pelvis', 'L_Hip', 'R_Hip', 'L_Knee', 'R_Knee', 'L_Ankle', 'R_Ankle', 'Neck',
                            'Head_top', 'L_Shoulder', 'R_Shoulder', 'L_Elbow', 'R_Elbow', 'L_Wrist', 'R_Wrist'),
                [('Pelvis', 'L_Hip'), ('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'), ('Pelvis', 'R_Hip'),
                 ('R_Hip', 'R_Knee'), ('R_Knee', 'R_Ankle'), ('Pelvis', 'Neck'), ('Neck', 'Head_top'),
                 ('Neck', 'L_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'),
                 ('Neck', 'R_Shoulder'), ('R_Shoulder', 'R_Elbow'), ('R_Elbow', 'R_Wrist')])

_COCO = ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear', 'L_Shoulder', 'R_Shoulder', 'L_Elbow', 'R_Elbow',
         'L_Wrist', 'R_Wrist', 'L_Hip', 'R_Hip', 'L_Knee', 'R_Knee', 'L_Ankle', 'R_Ankle')
_COCO_SKELETON = [('L_Ankle', 'L_Knee'), ('L_Knee', 'L_Hip'), ('R_Ankle', 'R_Knee'), ('R_Knee', 'R_Hip'),
                  ('L_Hip', 'R_Hip'), ('L_Shoulder', 'L_Hip'), ('R_Shoulder', 'R_Hip'),
                  ('L_Shoulder', 'R_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('R_Shoulder', 'R_Elbow'),
                  ('L_Elbow', 'L_Wrist'), ('R_Elbow', 'R_Wrist'), ('L_Eye', 'R_Eye'), ('Nose', 'L_Eye'),
                  ('Nose', 'R_Eye'), ('L_Eye', 'L_Ear'), ('R_Eye', 'R_Ear')]
COCO17 = _make('COCO17', _COCO, _COCO_SKELETON, root='L_Hip')
COCO19 = _make('COCO19', _COCO + ('Pelvis', 'Neck'),
               _COCO_SKELETON + [('Pelvis', 'Neck'), ('Neck', 'Nose')])  # + add_midpoints(.., COCO17, ('Pelvis', 'Neck'))

OPENPOSE18 = _make('OpenPose18', ('Nose', 'Neck', 'R_Shoulder', 'R_Elbow', 'R_Wrist', 'L_Shoulder', 'L_Elbow',
                                  'L_Wrist', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'R_Eye',
                                  'L_Eye', 'R_Ear', 'L_Ear'),
                   [('Neck', 'Nose'), ('Neck', 'R_Shoulder'), ('R_Shoulder', 'R_Elbow'), ('R_Elbow', 'R_Wrist'),
                    ('Neck', 'L_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'), ('Neck', 'R_Hip'),
                    ('R_Hip', 'R_Knee'), ('R_Knee', 'R_Ankle'), ('Neck', 'L_Hip'), ('L_Hip', 'L_Knee'),
                    ('L_Knee', 'L_Ankle'), ('Nose', 'R_Eye'), ('R_Eye', 'R_Ear'), ('Nose', 'L_Eye'),
                    ('L_Eye', 'L_Ear')], root='Neck')

H36M17 = _make('H36M17', ('Pelvis', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Torso', 'Neck',
                          'Nose', 'Head_top', 'L_Shoulder', 'L_Elbow', 'L_Wrist', 'R_Shoulder', 'R_Elbow',
                          'R_Wrist'),
               [('Pelvis', 'Torso'), ('Torso', 'Neck'), ('Neck', 'Nose'), ('Nose', 'Head_top'),
                ('Neck', 'L_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'),
                ('Neck', 'R_Shoulder'), ('R_Shoulder', 'R_Elbow'), ('R_Elbow', 'R_Wrist'), ('Pelvis', 'R_Hip'),
                ('R_Hip', 'R_Knee'), ('R_Knee', 'R_Ankle'), ('Pelvis', 'L_Hip'), ('L_Hip', 'L_Knee'),
                ('L_Knee', 'L_Ankle')])
# The 14 joints of the 3DPW / H36M protocol: all but Pelvis, Torso and Nose.
H36M_EVAL14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

MUCO21 = _make('MuCo21', ('Head_top', 'Thorax', 'R_Shoulder', 'R_Elbow', 'R_Wrist', 'L_Shoulder', 'L_Elbow',
                          'L_Wrist', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Pelvis', 'Spine',
                          'Head', 'R_Hand', 'L_Hand', 'R_Toe', 'L_Toe'),
               [('Head_top', 'Head'), ('Head', 'Thorax'), ('Thorax', 'Spine'), ('Spine', 'Pelvis'),
                ('Thorax', 'R_Shoulder'), ('R_Shoulder', 'R_Elbow'), ('R_Elbow', 'R_Wrist'), ('R_Wrist', 'R_Hand'),
                ('Thorax', 'L_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'), ('L_Wrist', 'L_Hand'),
                ('Pelvis', 'R_Hip'), ('R_Hip', 'R_Knee'), ('R_Knee', 'R_Ankle'), ('R_Ankle', 'R_Toe'),
                ('Pelvis', 'L_Hip'), ('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'), ('L_Ankle', 'L_Toe')])

MPII16 = _make('MPII16', ('R_Ankle', 'R_Knee', 'R_Hip', 'L_Hip', 'L_Knee', 'L_Ankle', 'Pelvis', 'Thorax', 'Neck',
                          'Head_top', 'R_Wrist', 'R_Elbow', 'R_Shoulder', 'L_Shoulder', 'L_Elbow', 'L_Wrist'),
               [('R_Ankle', 'R_Knee'), ('R_Knee', 'R_Hip'), ('R_Hip', 'Pelvis'), ('Pelvis', 'L_Hip'),
                ('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'), ('Pelvis', 'Thorax'), ('Thorax', 'Neck'),
                ('Neck', 'Head_top'), ('R_Wrist', 'R_Elbow'), ('R_Elbow', 'R_Shoulder'), ('R_Shoulder', 'Thorax'),
                ('Thorax', 'L_Shoulder'), ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist')])

CROWDPOSE14 = _make('CrowdPose14', ('L_Shoulder', 'R_Shoulder', 'L_Elbow', 'R_Elbow', 'L_Wrist', 'R_Wrist',
                                    'L_Hip', 'R_Hip', 'L_Knee', 'R_Knee', 'L_Ankle', 'R_Ankle', 'Head_top', 'Neck'),
                    [('Head_top', 'Neck'), ('Neck', 'L_Shoulder'), ('Neck', 'R_Shoulder'),
                     ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'), ('R_Shoulder', 'R_Elbow'),
                     ('R_Elbow', 'R_Wrist'), ('L_Shoulder', 'L_Hip'), ('R_Shoulder', 'R_Hip'), ('L_Hip', 'R_Hip'),
                     ('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'), ('R_Hip', 'R_Knee'), ('R_Knee', 'R_Ankle')],
                    root='Neck')

# LSP and LSPET (joints.mat), in their order
LSP14 = _make('LSP14', ('R_Ankle', 'R_Knee', 'R_Hip', 'L_Hip', 'L_Knee', 'L_Ankle', 'R_Wrist', 'R_Elbow', 'R_Shoulder',
                        'L_Shoulder', 'L_Elbow', 'L_Wrist', 'Neck', 'Head_top'),
              [('R_Ankle', 'R_Knee'), ('R_Knee', 'R_Hip'), ('R_Hip', 'L_Hip'), ('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'),
               ('R_Wrist', 'R_Elbow'), ('R_Elbow', 'R_Shoulder'), ('R_Shoulder', 'Neck'), ('Neck', 'L_Shoulder'),
               ('L_Shoulder', 'L_Elbow'), ('L_Elbow', 'L_Wrist'), ('Neck', 'Head_top')], root='Neck')

JOINT_SETS = {s.name: s for s in (SMPL30, GRAPH15, COCO17, COCO19, OPENPOSE18, H36M17, MUCO21, MPII16,
                                  CROWDPOSE14, LSP14)}


@lru_cache(maxsize=None)
def mapping_indices(src: JointSet, dst: JointSet):
    """(src_idx, dst_idx) arrays of the joints whose names exist in both sets."""
    pairs = [(i, dst.index(n)) for i, n in enumerate(src.joints) if n in dst._index]
    src_idx = np.array([p[0] for p in pairs], dtype=np.int64)
    dst_idx = np.array([p[1] for p in pairs], dtype=np.int64)
    return src_idx, dst_idx


def map_joints(values, src: JointSet, dst: JointSet, axis=-2):
    """Reorder the joint axis of `values` (numpy or torch; [...,J,D] by default, axis=-1 for [...,J])
    from src to dst order. Joints missing in src are zero in the output."""
    src_idx, dst_idx = mapping_indices(src, dst)
    axis = axis % values.ndim
    if values.shape[axis] != len(src):
        raise ValueError(f'{src.name} has {len(src)} joints but axis {axis} of the input has {values.shape[axis]}')
    shape = list(values.shape)
    shape[axis] = len(dst)
    if isinstance(values, np.ndarray):
        out = np.zeros(shape, dtype=values.dtype)
    else:
        import torch
        out = values.new_zeros(shape)
        src_idx, dst_idx = torch.as_tensor(src_idx, device=values.device), torch.as_tensor(dst_idx, device=values.device)
    lead = (slice(None),) * axis
    out[lead + (dst_idx,)] = values[lead + (src_idx,)]
    return out


MIDPOINTS = {'Pelvis': ('L_Hip', 'R_Hip'), 'Neck': ('L_Shoulder', 'R_Shoulder')}


def add_midpoints(joints, joint_set, names=('Pelvis',)):
    """Joints [...,J,D] of joint_set -> [...,J+k,D] with the k joints `names` appended, each the midpoint
    of its parents (MIDPOINTS). With D == 3 the last column is a confidence or validity: the parents'
    product (a midpoint is only as sure as both its parents)."""
    joints = np.asarray(joints)
    new = []
    for n in names:
        a, b = (joint_set.index(p) for p in MIDPOINTS[n])
        m = (joints[..., a, :] + joints[..., b, :]) / 2
        if joints.shape[-1] == 3:
            m[..., 2] = joints[..., a, 2] * joints[..., b, 2]
        new.append(m[..., None, :])
    return np.concatenate([joints, *new], axis=-2)


@lru_cache(maxsize=None)
def with_midpoints(joint_set, names=('Pelvis',), name=None):
    """joint_set extended by add_midpoints' joints (same flip pairs; skeleton edges to the parents)."""
    joints = joint_set.joints + tuple(names)
    edges = [(joint_set.joints[a], joint_set.joints[b]) for a, b in joint_set.skeleton]
    edges += [(p, n) for n in names for p in MIDPOINTS[n]]
    root = 'Pelvis' if 'Pelvis' in joints else joint_set.root
    return _make(name or f'{joint_set.name}+{"+".join(names)}', joints, edges, root)


def openpose_to_smpl30(op):
    """OpenPose-18 [18,3] (x, y, conf), nested or flat -> SMPL-30 [30,3]; the pelvis is the mid-hip point."""
    op = add_midpoints(np.asarray(op, np.float32).reshape(18, 3), OPENPOSE18, ('Pelvis',))
    return map_joints(op, with_midpoints(OPENPOSE18, ('Pelvis',), 'OpenPose19'), SMPL30)
