"""MPII human pose (COCO-format conversion) + NeuralAnnot SMPL fits (per-person virtual cameras).

Loader (`MPII`, 2D training set): data/annotations/train.json (16 joints, MPII16, valid = v > 0; persons
without any labelled joint are skipped: they give neither a target nor an input pose) and
MPII_train_SMPL_NeuralAnnot.json (same format as MSCOCO's). The reference's MPII fit targets were
neither root-relative nor rotated with the crop; that cannot happen here: BaseDataset.fit_targets
builds the fit targets of every dataset the same way (root-relative, Rz(-rot), root pose rotated).
"""
from pathlib import Path

import numpy as np

from common.body.joint_sets import MPII16
from data.dataset import BaseDataset
from data.formats import coco_neuralannot
from data.formats.coco_neuralannot import keypoints
from data.registry import DATASETS
from data.scenes import check_split

LAYOUT = ('data/MPII/data/annotations/train.json, data/MPII/data/annotations/MPII_train_SMPL_NeuralAnnot.json '
          'and data/MPII/data/<file_name> (3DCrowdNet release)')
SPLITS = ('train',)


def image_dir(root):
    return Path(root) / 'data'


def read_scenes(root, split='train'):
    ann = Path(root) / 'data' / 'annotations'
    return coco_neuralannot.read_scenes(ann / f'{split}.json', ann / f'MPII_{split}_SMPL_NeuralAnnot.json', LAYOUT)


# ------------------------------------------------------------------------------------------------ loader
@DATASETS.register()
class MPII(BaseDataset):
    name = 'MPII'
    is_3d = False
    joint_set = MPII16

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        ann = self.root / 'data' / 'annotations'
        return coco_neuralannot.records(
            self, ann / f'{self.split}.json', ann / f'MPII_{self.split}_SMPL_NeuralAnnot.json', LAYOUT,
            image_dir(self.root), lambda a, where: keypoints(a, len(MPII16), where),
            keep_ann=lambda a, joints: bool(np.any(joints[:, 2] > 0)))
