"""CrowdPose + NeuralAnnot SMPL fits (per-person virtual cameras, with a fitting error `fit_err`); its val and test
splits are also a keypoint benchmark (SEFD Table 5: AP/AP50/AP75 29.0/48.8/30.0 for SEFD, 25.2/44.9/24.9 for
3DCrowdNet): COCO keypoint AP of the projected mesh joints with CrowdPose's 14 OKS sigmas, computed by pycocotools
(CrowdPose's own crowdposetools adds the easy/medium/hard split by crowd index, not done here); protocol in
data/formats/keypoint_benchmark.py.

Loader (`CrowdPose`, 2D training set): annotations/crowdpose_<split>.json (14 joints, valid = v > 0) plus
a Pelvis at the mid-hips (valid when both hips are) -> joint set CROWDPOSE15; persons without any labelled
joint are skipped. Width and height are read swapped in the non-val files (the rule of `read_scenes`).
Fits (CrowdPose_<split>_SMPL_NeuralAnnot.json) are used only when fit_err < 5 (the reference inverted the
test); flip pairs come from the joint names (the reference's CrowdPose pairs were wrong).
"""
from pathlib import Path

import numpy as np

from common.body.joint_sets import CROWDPOSE14, add_midpoints, with_midpoints
from common.metrics import CROWDPOSE14_SIGMAS
from data.dataset import BaseDataset
from data.formats import coco_neuralannot
from data.formats.coco_neuralannot import keypoints
from data.formats.keypoint_benchmark import KeypointBenchmark, coco_keypoint_people
from data.registry import DATASETS
from data.scenes import check_split

LAYOUT = ('data/CrowdPose/annotations/crowdpose_{train,val,test}.json, '
          'data/CrowdPose/annotations/CrowdPose_{split}_SMPL_NeuralAnnot.json and data/CrowdPose/images/*.jpg')
SPLITS = ('train', 'val', 'test')
FIT_ERR_MAX = 5.0  # keep fits whose error is BELOW this (the reference kept the bad ones)


def image_dir(root):
    return Path(root) / 'images'


def fit_ok(fit):
    return fit.get('fit_err', 0.0) < FIT_ERR_MAX


def swap_wh(split):
    """The train/test annotation files store width and height swapped (a known quirk of the release)."""
    return split != 'val'


def read_scenes(root, split='train'):
    ann = Path(root) / 'annotations'
    return coco_neuralannot.read_scenes(ann / f'crowdpose_{split}.json', ann / f'CrowdPose_{split}_SMPL_NeuralAnnot.json',
                                        LAYOUT, swap_wh=swap_wh(split), keep_fit=fit_ok)


# ------------------------------------------------------------------------------------------------ loader
CROWDPOSE15 = with_midpoints(CROWDPOSE14, ('Pelvis',), 'CrowdPose15')


def add_pelvis(joints14):
    """[14,3] (x, y, valid) -> [15,3]: the Pelvis is the mid-hip point, valid when both hips are."""
    return add_midpoints(joints14, CROWDPOSE14, ('Pelvis',))


@DATASETS.register()
class CrowdPose(KeypointBenchmark, BaseDataset):
    name = 'CrowdPose'
    is_3d = False
    joint_set = CROWDPOSE15
    keypoint_set = CROWDPOSE14
    metric = 'ap'
    oks_sigmas = CROWDPOSE14_SIGMAS

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        ann = self.root / 'annotations'
        if not self.train:
            people, gt = coco_keypoint_people(ann / f'crowdpose_{self.split}.json', image_dir(self.root), CROWDPOSE14,
                                              LAYOUT, self.name, swap_wh=swap_wh(self.split))
            return self.benchmark_records(people, gt, self.root / 'data' / f'{self.split}_keypoint_detections.json')
        return coco_neuralannot.records(
            self, ann / f'crowdpose_{self.split}.json', ann / f'CrowdPose_{self.split}_SMPL_NeuralAnnot.json', LAYOUT,
            image_dir(self.root), lambda a, where: add_pelvis(keypoints(a, len(CROWDPOSE14), where)),
            keep_ann=lambda a, joints: bool(np.any(joints[:14, 2] > 0)), keep_fit=fit_ok, swap_wh=swap_wh(self.split))
