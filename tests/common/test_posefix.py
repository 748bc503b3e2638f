"""PoseFix-style input-pose synthesis (common/pipeline/posefix.py): shapes, determinism, PoseFix's
probabilities and radii measured on many draws, and the reference's bug (unlabelled neighbour joints as anchors)."""
import math
import time

import numpy as np
import pytest

from common.body.joint_sets import COCO17, H36M17, MPII16
from common.pipeline import posefix as pf

JIT, MISS, INV, SWAP, GOOD = range(5)
FLIP = COCO17.flip_permutation()


def grid_person(x0=40.0, y0=40.0, step=40.0):
    """17 labelled joints on a 5-column grid, step px apart (so with a small area no sample is ever
    rejected: every other anchor is farther than any radius allows)."""
    i = np.arange(17)
    return np.stack([x0 + step * (i % 5), y0 + step * (i // 5), np.ones(17)], axis=1)


SMALL_AREA = 2000.0  # largest radius: d10 of the hips = 20.5 px < step / 2


def draw(n, gt, near, area, seed=0, num_overlap=None):
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 17, 3), np.float32)
    types = np.zeros((n, 17), np.int64)
    for i in range(n):
        out[i], types[i] = pf.synthesize_pose_types(gt, near, area, rng, num_overlap)
    return out, types


def test_radii_and_probabilities_hand_computed():
    d85, d50, d10 = pf.oks_radii(1000.0)
    s = 0.107  # hips
    np.testing.assert_allclose(d50[11], math.sqrt(-2 * 1000 * (2 * s) ** 2 * math.log(0.5)))
    np.testing.assert_allclose(d85[0], math.sqrt(-2 * 1000 * (2 * 0.026) ** 2 * math.log(0.85)))
    assert (d85 < d50).all() and (d50 < d10).all()
    assert (pf.oks_radii(0.0) == 0).all() and (pf.oks_radii(-5) == 0).all()

    p = pf.error_probabilities(17, 0)
    assert p.shape == (17, 5)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(p[0], [0.10, 0.02, 0.01, 0.01, 0.86])     # nose
    np.testing.assert_allclose(p[5], [0.15, 0.05, 0.03, 0.06, 0.71])     # shoulder
    np.testing.assert_allclose(p[11], [0.20, 0.10, 0.06, 0.03, 0.61])    # hip
    p = pf.error_probabilities(5, 1)   # few joints and a neighbour: crowded swap probabilities
    np.testing.assert_allclose(p[0], [0.15, 0.15, 0.01, 0.02, 0.67])
    np.testing.assert_allclose(p[15], [0.15, 0.20, 0.06, 0.10, 0.49])    # ankle
    np.testing.assert_allclose(p[12], [0.25, 0.25, 0.06, 0.10, 0.34])    # hip
    np.testing.assert_allclose(pf.error_probabilities(9, 0)[7], [0.20, 0.15, 0.03, 0.06, 0.56])  # elbow
    np.testing.assert_allclose(pf.error_probabilities(14, 3)[7, SWAP], 0.15)
    np.testing.assert_allclose(pf.error_probabilities(16, 3)[7, SWAP], 0.06)
    assert (pf.error_probabilities(5, 1) >= 0).all()


def test_shapes_determinism_and_unlabelled_joints():
    gt = grid_person()
    gt[[3, 9], 2] = 0  # unlabelled GT joints
    near = grid_person(x0=55.0)[None]
    a = pf.synthesize_pose(gt, near, 5000.0, np.random.default_rng(3))
    b = pf.synthesize_pose(gt, near, 5000.0, np.random.default_rng(3))
    c = pf.synthesize_pose(gt, near, 5000.0, np.random.default_rng(4))
    assert a.shape == (17, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    out, types = draw(200, gt, near, 5000.0)
    assert (out[:, [3, 9]] == 0).all() and (types[:, [3, 9]] == -1).all()
    labelled = np.delete(np.arange(17), [3, 9])
    assert set(np.unique(out[:, labelled, 2])) <= {0.0, 1.0}
    assert ((out[:, :, 2] == 1) == (types >= 0)).all()
    # no GT at all / no or empty neighbours
    assert (pf.synthesize_pose(np.zeros((17, 3)), None, 5000.0, np.random.default_rng(0)) == 0).all()
    for empty in (None, [], np.zeros((0, 17, 3))):
        assert pf.synthesize_pose(grid_person(), empty, 5000.0, np.random.default_rng(0)).shape == (17, 3)


def test_type_frequencies_and_radii_without_neighbours():
    n = 1500
    gt = grid_person()
    out, types = draw(n, gt, None, SMALL_AREA, seed=1)
    assert (types >= 0).all()       # nothing is ever rejected in this layout
    assert not (types == SWAP).any()  # no neighbour, no swap
    p = pf.error_probabilities(17, 0)
    p[:, SWAP] = 0
    p /= p.sum(1, keepdims=True)    # the swap share is renormalised away
    p[0, INV] = 0                   # the nose has no symmetric joint
    p[0] /= p[0].sum()
    for t in (JIT, MISS, INV, GOOD):
        count = (types == t).sum()
        expect = n * p[:, t].sum()
        assert abs(count - expect) < 5 * math.sqrt(expect) + 5, (pf.ERROR_TYPES[t], count, expect)
    good = (types == GOOD).mean(0)
    assert (np.abs(good - p[:, GOOD]) < 5 * np.sqrt(p[:, GOOD] * (1 - p[:, GOOD]) / n)).all()

    d85, d50, d10 = pf.oks_radii(SMALL_AREA)
    dist_gt = np.linalg.norm(out[:, :, :2] - gt[None, :, :2], axis=-1)
    dist_sym = np.linalg.norm(out[:, :, :2] - gt[None, FLIP, :2], axis=-1)
    tol = 1e-3
    for j in range(17):
        t = types[:, j]
        assert (dist_gt[t == GOOD, j] <= d85[j] + tol).all()
        assert ((dist_gt[t == JIT, j] >= d85[j] - tol) & (dist_gt[t == JIT, j] <= d50[j] + tol)).all()
        assert (dist_sym[t == INV, j] <= d50[j] + tol).all()
        m_gt = (dist_gt[t == MISS, j] >= d50[j] - tol) & (dist_gt[t == MISS, j] <= d10[j] + tol)
        m_sym = (dist_sym[t == MISS, j] >= d50[j] - tol) & (dist_sym[t == MISS, j] <= d10[j] + tol)
        assert (m_gt | m_sym).all()
    # miss around the own symmetric joint: its survivors count 1/4 -> 500 / (2000 + 500) = 20 % of misses
    miss = types[:, 1:] == MISS
    near_sym = (dist_sym[:, 1:] <= d10[None, 1:] + tol) & miss
    frac = near_sym.sum() / miss.sum()
    assert abs(frac - 0.2) < 5 * math.sqrt(0.16 / miss.sum()) + 0.01, frac


def test_swap_lands_on_neighbours():
    gt = grid_person()
    gt[10:, 2] = 0                               # 10 labelled joints: crowded
    nb = grid_person(x0=40.0 + 20.0)             # a neighbour 20 px to the right, all labelled
    out, types = draw(800, gt, nb[None], SMALL_AREA, seed=2)
    d85, d50, d10 = pf.oks_radii(SMALL_AREA)
    assert (types == SWAP).sum() > 30
    for j in range(10):
        sel = types[:, j] == SWAP
        anchors = np.stack([nb[j, :2], nb[FLIP[j], :2]])
        d = np.linalg.norm(out[sel, j, None, :2] - anchors[None], axis=-1).min(1)
        assert (d <= d50[j] + 1e-3).all()
    # with the same person but no neighbour, swap never happens
    _, types = draw(400, gt, None, SMALL_AREA, seed=2)
    assert not (types == SWAP).any()


def test_unlabelled_neighbour_joints_are_never_anchors():
    """A neighbour's unlabelled joints (conf 0, stored at (0,0)) must not attract swaps
    (nor block samples); here no output may land near the image origin."""
    gt = grid_person(x0=120.0, y0=120.0, step=25.0)
    gt[9:, 2] = 0                           # 8 labelled joints -> crowded swap probabilities
    nb = grid_person(x0=130.0, y0=120.0, step=25.0)
    nb[::2] = 0                             # every other joint unlabelled, at (0,0)
    area = 4000.0
    d10 = pf.oks_radii(area)[2].max()
    out, types = draw(600, gt, nb[None], area, seed=5)
    labelled = out[:, :, 2] > 0
    assert (types == SWAP).sum() > 20       # swaps do happen, onto the labelled neighbour joints
    assert (np.linalg.norm(out[:, :, :2], axis=-1)[labelled] > 2 * d10).all()
    # the reference's bug (neighbour confidences forced to 1) would put outputs there: the check bites
    nb_bug = nb.copy()
    nb_bug[:, 2] = 1
    out, _ = draw(600, gt, nb_bug[None], area, seed=5)
    assert (np.linalg.norm(out[:, :, :2], axis=-1)[out[:, :, 2] > 0] < 2 * d10).any()


def test_renormalisation_and_nothing_survives(monkeypatch):
    gt = grid_person()
    # no 'good' nor 'jitter' samples: those types are empty, the rest is renormalised
    monkeypatch.setitem(pf.NUM_SAMPLES, 'good', 0)
    monkeypatch.setitem(pf.NUM_SAMPLES, 'jitter', 0)
    n = 600
    _, types = draw(n, gt, None, SMALL_AREA, seed=6)
    assert set(np.unique(types)) <= {MISS, INV}
    p = pf.error_probabilities(17, 0)
    expect = p[1:, MISS] / (p[1:, MISS] + p[1:, INV])
    freq = (types[:, 1:] == MISS).mean(0)
    assert (np.abs(freq - expect) < 5 * np.sqrt(expect * (1 - expect) / n) + 0.01).all()
    assert (types[:, 0] == MISS).all()  # the nose has no inversion
    # nothing at all survives: every joint becomes (0,0,0)
    for k in pf.NUM_SAMPLES:
        monkeypatch.setitem(pf.NUM_SAMPLES, k, 0)
    out, types = pf.synthesize_pose_types(gt, grid_person(x0=60)[None], SMALL_AREA, np.random.default_rng(0))
    assert (out == 0).all() and (types == -1).all()


def test_speed_per_person():
    rng = np.random.default_rng(0)
    gt = grid_person(x0=60, y0=30, step=35)
    near = np.stack([grid_person(x0=80, y0=40, step=35), grid_person(x0=30, y0=50, step=35)])
    near[0, ::3, 2] = 0
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        pf.synthesize_pose(gt, near, 150.0 * 200.0, rng)
    print(f'\nposefix: {(time.perf_counter() - t) / n * 1e3:.2f} ms per person (2 neighbours)')


def test_common_joints_and_helpers():
    rng = np.random.default_rng(0)
    h36m = np.concatenate([rng.uniform(0, 256, (17, 2)), np.ones((17, 1))], 1)
    coco = pf.to_coco17(h36m, H36M17)
    assert coco.shape == (17, 3)
    assert (coco[COCO17.index('L_Eye')] == 0).all()   # not in H36M: unlabelled
    synth = coco.copy()
    synth[:, :2] += 100
    synth[COCO17.index('L_Knee')] = 0
    out = pf.replace_common_joints(h36m, H36M17, synth)
    replaced = [H36M17.index(n) for n in H36M17.joints if n in COCO17.joints]
    assert sorted(replaced) == [1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]  # 3DCrowdNet's H36M list
    kept = [i for i in range(17) if i not in replaced]
    np.testing.assert_array_equal(out[kept], h36m[kept])
    np.testing.assert_allclose(out[H36M17.index('R_Wrist'), :2], h36m[H36M17.index('R_Wrist'), :2] + 100)
    np.testing.assert_array_equal(out[H36M17.index('L_Knee'), :2], [0, 0])
    assert out[H36M17.index('L_Knee'), 2] == 1  # column 2 untouched unless asked
    assert pf.replace_common_joints(h36m, H36M17, synth, conf_col=2)[H36M17.index('L_Knee'), 2] == 0
    mpii_replaced = [MPII16.index(n) for n in MPII16.joints if n in COCO17.joints]
    assert sorted(mpii_replaced) == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]  # 3DCrowdNet's list minus Pelvis

    # box area in the crop: a 100x50 box scaled x2 and rotated stays 200x100
    c, s = math.cos(0.3), math.sin(0.3)
    trans = np.array([[2 * c, -2 * s, 7], [2 * s, 2 * c, -3]])
    assert pf.bbox_area_in_crop([10, 20, 100, 50], trans) == pytest.approx(20000.0)
    # IoU: two 10x10 boxes overlapping by 5x10 -> 50 / 150
    np.testing.assert_allclose(pf.bbox_iou([0, 0, 10, 10], [[5, 0, 10, 10], [20, 20, 5, 5]]), [1 / 3, 0])
    np.testing.assert_array_equal(pf.overlapping([0, 0, 10, 10], [[0, 0, 10, 10], [5, 0, 10, 10], [9.5, 0, 10, 10],
                                                                 [20, 20, 5, 5]], exclude=0), [1])
