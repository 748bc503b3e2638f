"""2D keypoint metrics of SEFD's other benchmarks (common/metrics.py): COCO keypoint AP with pycocotools as the
engine, checked against cases whose OKS is known by construction; PCKh with each head-size convention, by hand."""
import math

import numpy as np
import pytest

from common.metrics import COCO17_SIGMAS, head_size_from_box, head_size_from_joints, keypoint_ap, pckh


def coco_gt(people):
    """people: [(image_id, keypoints [17,3], area)] -> a COCO-style ground-truth dict."""
    images = sorted({p[0] for p in people})
    anns = [{'id': i + 1, 'image_id': img, 'category_id': 1, 'iscrowd': 0, 'area': float(area),
             'bbox': [float(k[:, 0].min()), float(k[:, 1].min()), float(np.ptp(k[:, 0])), float(np.ptp(k[:, 1]))],
             'keypoints': k.reshape(-1).tolist(), 'num_keypoints': int((k[:, 2] > 0).sum())}
            for i, (img, k, area) in enumerate(people)]
    return {'images': [{'id': i, 'width': 640, 'height': 480} for i in images], 'annotations': anns,
            'categories': [{'id': 1, 'name': 'person'}]}


def person(rng, x0, y0):
    k = np.zeros((17, 3))
    k[:, 0] = x0 + rng.uniform(0, 60, 17)
    k[:, 1] = y0 + rng.uniform(0, 150, 17)
    k[:, 2] = 2
    return k


def detection(img, k, score=0.9):
    return {'image_id': img, 'category_id': 1, 'keypoints': k.reshape(-1).tolist(), 'score': score}


def test_perfect_predictions_give_ap_one():
    rng = np.random.default_rng(0)
    people = [(1, person(rng, 50, 40), 9000.0), (1, person(rng, 300, 60), 8000.0), (2, person(rng, 100, 100), 7000.0)]
    res = keypoint_ap(coco_gt(people), [detection(img, k) for img, k, _ in people])
    assert res == pytest.approx({'ap': 1.0, 'ap50': 1.0, 'ap75': 1.0})


def test_a_known_oks_gives_the_ap_computed_by_hand():
    """Every keypoint moved so that its OKS term is exp(-d^2 / (2 area (2 sigma)^2)) = 0.72: the one detection
    matches at the thresholds 0.50 ... 0.70 and not at 0.75 ... 0.95, so AP = 5/10, AP50 = 1, AP75 = 0."""
    rng = np.random.default_rng(1)
    gt_k, area = person(rng, 80, 50), 6000.0
    d = np.sqrt(-2 * area * (2 * COCO17_SIGMAS) ** 2 * math.log(0.72))
    pred = gt_k.copy()
    pred[:, 0] += d
    res = keypoint_ap(coco_gt([(1, gt_k, area)]), [detection(1, pred)])
    assert res == pytest.approx({'ap': 0.5, 'ap50': 1.0, 'ap75': 0.0})


def test_a_false_positive_scored_above_the_true_detection_halves_the_ap():
    """Two detections of one person: the right one scored higher gives AP 1; scored lower, precision at full recall
    is 1/2 at every threshold (COCO's interpolated precision), so AP = 0.5."""
    rng = np.random.default_rng(2)
    gt_k = person(rng, 80, 50)
    wrong = person(rng, 400, 200)
    gt = coco_gt([(1, gt_k, 6000.0)])
    assert keypoint_ap(gt, [detection(1, gt_k, 0.9), detection(1, wrong, 0.5)])['ap'] == pytest.approx(1.0)
    assert keypoint_ap(gt, [detection(1, gt_k, 0.5), detection(1, wrong, 0.9)])['ap'] == pytest.approx(0.5)
    assert keypoint_ap(gt, []) == {'ap': 0.0, 'ap50': 0.0, 'ap75': 0.0}


def test_pckh_by_hand_with_each_head_size_convention():
    gt = np.zeros((2, 4, 2))
    pred = gt.copy()
    pred[0, :, 0] = [5.0, 6.5, 0.0, 99.0]     # person 0, head size 10: radius 6
    pred[1, :, 0] = [11.0, 13.0, 100.0, 0.0]  # person 1, head size 20: radius 12
    visible = np.array([[True, True, True, False], [True, True, True, False]])
    overall, per_joint = pckh(pred, gt, visible, np.array([10.0, 20.0]), thr=0.6)
    assert overall == pytest.approx(3 / 6)
    np.testing.assert_allclose(per_joint, [1.0, 0.0, 0.5, 0.0])
    # MPII: 0.6 x the head box diagonal; LSP: the head-top-to-neck segment
    np.testing.assert_allclose(head_size_from_box([[10, 20, 40, 60]]), [0.6 * 50.0])
    joints = np.array([[[0.0, 0.0], [3.0, 4.0]]])
    np.testing.assert_allclose(head_size_from_joints(joints, top=0, neck=1), [5.0])
