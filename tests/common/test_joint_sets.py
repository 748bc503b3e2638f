import numpy as np
import torch

from common.body.joint_sets import (COCO17, COCO19, CROWDPOSE14, GRAPH15, H36M17, JOINT_SETS, MUCO21, SMPL30,
                                     add_midpoints, map_joints, with_midpoints)


def test_sizes():
    assert {n: len(s) for n, s in JOINT_SETS.items()} == {
        'SMPL30': 30, 'Graph15': 15, 'COCO17': 17, 'COCO19': 19, 'OpenPose18': 18, 'H36M17': 17,
        'MuCo21': 21, 'MPII16': 16, 'CrowdPose14': 14, 'LSP14': 14}


def test_flip_pairs_swap_left_right_names():
    for s in JOINT_SETS.values():
        for a, b in s.flip_pairs:
            assert s.joints[a][2:] == s.joints[b][2:] and {s.joints[a][:2], s.joints[b][:2]} == {'L_', 'R_'}
        perm = s.flip_permutation()
        assert sorted(perm) == list(range(len(s))) and (perm[perm] == np.arange(len(s))).all()
    # CrowdPose alternates L,R (the reference paired (1,2),(3,4)... and scrambled elbows and hips)
    assert CROWDPOSE14.flip_pairs[:3] == ((0, 1), (2, 3), (4, 5))
    assert GRAPH15.flip_pairs == ((1, 2), (3, 4), (5, 6), (9, 10), (11, 12), (13, 14))


def test_map_by_name_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(2, 17, 3))
    y = map_joints(x, H36M17, SMPL30)
    assert y.shape == (2, 30, 3)
    for i, n in enumerate(SMPL30.joints):
        expect = x[:, H36M17.index(n)] if n in H36M17.joints else 0
        np.testing.assert_array_equal(y[:, i], expect)
    t = map_joints(torch.ones(4, 21), MUCO21, SMPL30, axis=-1)
    assert t.shape == (4, 30) and t.sum(1).tolist() == [sum(n in MUCO21.joints for n in SMPL30.joints)] * 4


def test_midpoints_have_product_confidence():
    k = np.zeros((17, 3))
    k[COCO17.index('L_Hip')] = [0, 0, 0.5]
    k[COCO17.index('R_Hip')] = [2, 4, 0.4]
    out = add_midpoints(k, COCO17, ('Pelvis', 'Neck'))
    np.testing.assert_allclose(out[17], [1, 2, 0.2])
    assert out.shape == (19, 3) and out[18, 2] == 0  # shoulders unlabelled: the neck is too
    ext = with_midpoints(COCO17, ('Pelvis', 'Neck'))
    assert ext.joints == COCO19.joints and ext.flip_pairs == COCO19.flip_pairs and ext.root == 'Pelvis'
