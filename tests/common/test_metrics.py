import math

import numpy as np
import pytest
import torch
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

from common.body.joint_sets import H36M17
from common.geometry.transforms import procrustes_align_np
from common.metrics import MetricAccumulator, evaluate_3dpw, mpjpe, mpvpe, pa_mpjpe


def test_mpjpe_mpvpe_hand_computed():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, 0] = [3.0, 4.0, 0.0]   # 5
    pred[0, 1] = [0.0, 0.0, 1.0]   # 1      -> sample 0: (5 + 1 + 0) / 3 = 2
    pred[1] += [1.0, 2.0, 2.0]     # 3 each -> sample 1: 3
    np.testing.assert_allclose(mpjpe(pred, gt), [2.0, 3.0])
    np.testing.assert_allclose(mpjpe(pred, gt, scale=1000), [2000.0, 3000.0])
    np.testing.assert_allclose(mpvpe(pred, gt), [2.0, 3.0])
    out = mpjpe(torch.tensor(pred), torch.tensor(gt))
    assert isinstance(out, torch.Tensor) and out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([2.0, 3.0], dtype=torch.float64))


def test_pa_mpjpe_zero_for_similar_copy():
    gen = np.random.default_rng(0)
    for batch in (1, 2, 5):
        gt = gen.normal(size=(batch, 14, 3))
        R = Rotation.random(batch, random_state=1).as_matrix()
        s = gen.uniform(0.3, 3.0, size=batch)
        t = gen.normal(size=(batch, 3))
        pred = s[:, None, None] * np.einsum('bij,bnj->bni', R, gt) + t[:, None]
        err = pa_mpjpe(pred, gt)
        assert err.shape == (batch,)
        np.testing.assert_allclose(err, 0, atol=1e-5)
        err_t = pa_mpjpe(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32))
        assert err_t.shape == (batch,)
        assert err_t.abs().max() < 1e-5
        assert mpjpe(pred, gt).min() > 0.1  # the unaligned error is not zero


@pytest.mark.parametrize('delta', [0.3, 1.0, 2.5])
def test_pa_mpjpe_square_closed_form(delta):
    # GT: a unit square in z = 0; pred: the same square with corners alternately lifted by +-delta.
    # By symmetry the optimal rotation is the identity and t = 0; scale c = 2 / (2 + delta^2), and every
    # corner's residual is (c-1, c-1, c*delta) up to signs: |r| = delta * sqrt(2 / (2 + delta^2)).
    gt = np.array([[1.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [1.0, -1.0, 0.0]])
    pred = gt + np.array([[0, 0, delta], [0, 0, -delta], [0, 0, delta], [0, 0, -delta]])
    expected = delta * math.sqrt(2 / (2 + delta ** 2))
    np.testing.assert_allclose(pa_mpjpe(pred[None], gt[None]), [expected], rtol=1e-10)
    # Still a corner of the same value after an arbitrary similarity of the prediction.
    R = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    np.testing.assert_allclose(pa_mpjpe((3.0 * pred @ R.T + 5.0)[None], gt[None]), [expected], rtol=1e-9)


def test_pa_mpjpe_sum_of_squares_matches_scipy():
    # scipy's disparity is the residual sum of squares with both sets centred and scaled to unit norm;
    # with pred aligned onto unscaled gt that is disparity * |gt - mean|^2.
    gen = np.random.default_rng(3)
    gt = gen.normal(size=(17, 3))
    R = Rotation.random(random_state=4).as_matrix()
    pred = 1.7 * gt @ R.T + 0.4 + gen.normal(scale=0.2, size=gt.shape)
    _, _, disparity = scipy_procrustes(gt, pred)
    expected_sse = disparity * ((gt - gt.mean(0)) ** 2).sum()
    aligned = procrustes_align_np(pred[None], gt[None])[0]
    assert ((aligned - gt) ** 2).sum() == pytest.approx(expected_sse, rel=1e-9)


def _selection_regressor(n_vertices, rows):
    J = np.zeros((len(rows), n_vertices))
    J[np.arange(len(rows)), rows] = 1.0
    return J


def _fixture(seed=0, n_vertices=40):
    gen = np.random.default_rng(seed)
    gt = gen.normal(size=(3, n_vertices, 3)) * 0.3 + np.array([0.2, -0.1, 4.0])
    h36m = gen.uniform(size=(17, n_vertices))
    h36m /= h36m.sum(1, keepdims=True)  # real regressors are convex combinations of vertices
    pelvis = gen.uniform(size=n_vertices)
    pelvis /= pelvis.sum()
    return gt, h36m, pelvis


def test_3dpw_translation_invariant():
    gt, h36m, pelvis = _fixture()
    pred = gt - np.array([0.5, -2.0, 4.0])  # e.g. a root-relative prediction of the camera-frame GT
    out = evaluate_3dpw(pred, gt, h36m, pelvis)
    assert set(out) == {'mpjpe', 'pa_mpjpe', 'mpvpe'}
    for k, v in out.items():
        assert isinstance(v, np.ndarray) and v.shape == (3,)
        np.testing.assert_allclose(v, 0, atol=1e-9, err_msg=k)
    # torch inputs, pelvis row given as [1,V]
    out = evaluate_3dpw(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32),
                        torch.tensor(h36m, dtype=torch.float32), torch.tensor(pelvis[None], dtype=torch.float32))
    for v in out.values():
        np.testing.assert_allclose(v, 0, atol=1e-3)


def test_3dpw_eval14_and_roots():
    # Each H36M joint is one vertex (joint j = vertex j), so single joints can be moved.
    n_vertices = 30
    gen = np.random.default_rng(1)
    gt = gen.normal(size=(1, n_vertices, 3))
    h36m = _selection_regressor(n_vertices, np.arange(17))
    pelvis_row = np.zeros(n_vertices)
    pelvis_row[[20, 21]] = 0.5  # the SMPL pelvis sits on vertices no H36M joint uses

    def run(pred):
        return evaluate_3dpw(pred, gt, h36m, pelvis_row)

    offset = np.array([0.03, -0.04, 0.0])  # 50 mm
    for name in ('Nose', 'Torso'):
        pred = gt.copy()
        pred[0, H36M17.index(name)] += offset
        out = run(pred)
        assert out['mpjpe'][0] == pytest.approx(0, abs=1e-9), name
        assert out['pa_mpjpe'][0] == pytest.approx(0, abs=1e-9), name
        assert out['mpvpe'][0] == pytest.approx(50 / n_vertices), name  # one vertex of 30 moved by 50 mm

    # A kept joint moves: 1 of 14 joints off by 50 mm.
    pred = gt.copy()
    pred[0, H36M17.index('L_Wrist')] += offset
    assert run(pred)['mpjpe'][0] == pytest.approx(50 / 14)

    # Moving the H36M pelvis shifts every root-relative joint by -offset: MPJPE 50, PA-MPJPE 0.
    pred = gt.copy()
    pred[0, H36M17.index('Pelvis')] += offset
    out = run(pred)
    assert out['mpjpe'][0] == pytest.approx(50)
    assert out['pa_mpjpe'][0] == pytest.approx(0, abs=1e-9)

    # Moving a vertex of weight 1/2 in the SMPL pelvis: that vertex is off by offset/2 and all the
    # others by offset/2 in the opposite direction -> MPVPE = 25 mm; the joints are untouched.
    pred = gt.copy()
    pred[0, 20] += offset
    out = run(pred)
    assert out['mpvpe'][0] == pytest.approx(25)
    assert out['mpjpe'][0] == pytest.approx(0, abs=1e-9)


def test_3dpw_mpvpe_not_h36m_rooted():
    gt, h36m, pelvis = _fixture(seed=2)
    pred = gt.copy()
    k = int(np.argmin(pelvis))
    w = pelvis[k]
    off = np.array([0.0, 0.0, 0.1])
    pred[:, k] += off
    # Vertex k is off by (1-w)*off, every other by w*off.
    V = gt.shape[1]
    expected = ((1 - w) + (V - 1) * w) * 0.1 / V * 1000
    np.testing.assert_allclose(evaluate_3dpw(pred, gt, h36m, pelvis)['mpvpe'], expected, rtol=1e-9)


def test_3dpw_rejects_wrong_pelvis_regressor():
    gt, h36m, _ = _fixture()
    with pytest.raises(ValueError, match='smpl_pelvis_regressor'):
        evaluate_3dpw(gt, gt, h36m, np.ones((24, gt.shape[1])))


def test_accumulator_plain_mean_over_samples():
    acc = MetricAccumulator()
    assert acc.summary() == {} and acc.count == 0
    acc.add({'mpjpe': np.array([1.0, 2.0, 3.0]), 'pa_mpjpe': torch.tensor([0.0, 0.0, 3.0])})
    acc.add({'mpjpe': np.array([10.0]), 'pa_mpjpe': torch.tensor([1.0])})
    # Mean over 4 samples, not the mean of batch means ((2 + 10) / 2 = 6).
    assert acc.summary() == {'mpjpe': pytest.approx(4.0), 'pa_mpjpe': pytest.approx(1.0)}
    assert acc.count == 4 and len(acc) == 4
    np.testing.assert_allclose(acc.per_sample()['mpjpe'], [1, 2, 3, 10])
    acc.reset()
    assert acc.count == 0
