"""OCHuman (Zhang et al., CVPR 2019): heavily occluded people, COCO keypoint AP of the projected mesh joints (SEFD
Table 5: AP/AP50/AP75 44.1/71.7/47.2 for SEFD, 39.7/68.8/41.0 for 3DCrowdNet).

Files (as OCHumanApi distributes them, in mmpose's layout): data/OCHuman/annotations/
ochuman_coco_format_{val,test}_range_0.00_1.00.json (COCO keypoint format, the 17 COCO keypoints) and
data/OCHuman/images/*.jpg. Test-only; the protocol (inputs, scores) is data/formats/keypoint_benchmark.py's.
"""
from pathlib import Path

from common.body.joint_sets import COCO17
from common.metrics import COCO17_SIGMAS
from data.dataset import BaseDataset
from data.formats.keypoint_benchmark import KeypointBenchmark, coco_keypoint_people
from data.registry import DATASETS
from data.scenes import check_split

SPLITS = ('val', 'test')
LAYOUT = ('data/OCHuman/annotations/ochuman_coco_format_{val,test}_range_0.00_1.00.json and '
          'data/OCHuman/images/*.jpg')


def annotation_file(root, split):
    return Path(root) / 'annotations' / f'ochuman_coco_format_{split}_range_0.00_1.00.json'


@DATASETS.register()
class OCHuman(KeypointBenchmark, BaseDataset):
    name = 'OCHuman'
    is_3d = False
    keypoint_set = COCO17
    metric = 'ap'
    oks_sigmas = COCO17_SIGMAS

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        people, gt = coco_keypoint_people(annotation_file(self.root, self.split), self.root / 'images',
                                          COCO17, LAYOUT, self.name)
        return self.benchmark_records(people, gt, self.root / 'data' / f'{self.split}_keypoint_detections.json')
