"""MSCOCO 2017 keypoints + NeuralAnnot SMPL fits (per-person virtual cameras).

Loader (`MSCOCO`, 2D training set): annotations/person_keypoints_<split>2017.json (COCO-17 keypoints,
valid = v > 0), skipping `iscrowd` persons and those with num_keypoints == 0. The joint set is COCO19:
COCO-17 plus Pelvis (mid-hips) and Neck (mid-shoulders), each valid when both parents are (the product of
their validities): COCO has no pelvis, and without one the SMPL-30 root and neck get no 2D target and no
input joint, while the 3DPW test inputs (OpenPose / HigherHRNet + pelvis + neck) have both. PoseFix
perturbs the 17 COCO joints; the two midpoints stay clean GT (as the reference's added pelvis).
SMPL fits: annotations/MSCOCO_<split>_SMPL_NeuralAnnot.json = {str(ann id): {smpl_param: {pose, shape,
trans}, cam_param: {focal, princpt}}}, each person in its own virtual camera (Person.focal / princpt);
no fit filter (the reference's is disabled). A person without a fit has is_valid_fit 0.

The COCO-style + NeuralAnnot reader, shared with MPII and CrowdPose: data/formats/coco_neuralannot.py.
"""
from pathlib import Path

from common.body.joint_sets import COCO17, COCO19, add_midpoints
from data.dataset import BaseDataset
from data.formats import coco_neuralannot
from data.formats.coco_neuralannot import keypoints
from data.registry import DATASETS
from data.scenes import check_split

LAYOUT = ('data/MSCOCO/annotations/person_keypoints_{train,val}2017.json, '
          'data/MSCOCO/annotations/MSCOCO_train_SMPL_NeuralAnnot.json and data/MSCOCO/images/{train,val}2017/*.jpg')
SPLITS = ('train',)


def image_dir(root):
    return Path(root) / 'images'


def read_scenes(root, split='train'):
    ann = Path(root) / 'annotations'
    return coco_neuralannot.read_scenes(ann / f'person_keypoints_{split}2017.json',
                                        ann / f'MSCOCO_{split}_SMPL_NeuralAnnot.json', LAYOUT, f'{split}2017/')


# ------------------------------------------------------------------------------------------------ loader
@DATASETS.register()
class MSCOCO(BaseDataset):
    """MSCOCO 2017 train (2D training set with NeuralAnnot fits; see the module doc)."""
    name = 'MSCOCO'
    is_3d = False
    joint_set = COCO19

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        ann = self.root / 'annotations'
        return coco_neuralannot.records(
            self, ann / f'person_keypoints_{self.split}2017.json', ann / f'MSCOCO_{self.split}_SMPL_NeuralAnnot.json',
            LAYOUT, image_dir(self.root), coco19_joints, image_prefix=f'{self.split}2017/', keep_ann=keep_coco_person)


def coco19_joints(ann, where):
    return add_midpoints(keypoints(ann, len(COCO17), where), COCO17, ('Pelvis', 'Neck'))


def keep_coco_person(ann, joints):
    """Not a crowd region, and at least one labelled keypoint."""
    return not ann.get('iscrowd', 0) and ann.get('num_keypoints', int(joints[:17, 2].sum())) > 0
