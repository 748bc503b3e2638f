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

`neuralannot_records` is shared with the MPII and CrowdPose loaders (same COCO-style + NeuralAnnot format).
"""
import logging
from pathlib import Path

import numpy as np

from common.registry import DATASETS
from common.utils import preprocessing as pre
from common.utils.joint_sets import COCO17, COCO19, add_midpoints
from data.dataset import BaseDataset, Record, add_neighbours
from data.Human36M.Human36M import check_split, report_problems
from data.scenes import Person, Scene, camera_of, group_by_image, load_json, problem, read_neuralannot_scenes, smpl_of

LAYOUT = ('data/MSCOCO/annotations/person_keypoints_{train,val}2017.json, '
          'data/MSCOCO/annotations/MSCOCO_train_SMPL_NeuralAnnot.json and data/MSCOCO/images/{train,val}2017/*.jpg')
SPLITS = ('train',)

log = logging.getLogger('sefd')


def image_dir(root):
    return Path(root) / 'images'


def read_scenes(root, split='train'):
    ann = Path(root) / 'annotations'
    return read_neuralannot_scenes(ann / f'person_keypoints_{split}2017.json',
                                   ann / f'MSCOCO_{split}_SMPL_NeuralAnnot.json', LAYOUT, f'{split}2017/')


# ------------------------------------------------------------------------------------------------ loader
def keypoints(ann, num_joints, where):
    """COCO `keypoints` (x, y, v flattened) -> [J,3] float64 (x, y, valid = v > 0)."""
    k = np.asarray(ann['keypoints'], np.float64).reshape(num_joints, 3).copy()
    if not np.isfinite(k).all():
        raise ValueError(f'{where}: keypoints contain NaN/inf')
    k[:, 2] = k[:, 2] > 0
    return k


def neuralannot_records(ds, ann_file, fits_file, layout, img_dir, joints_of, image_prefix='', keep_ann=None,
                        keep_fit=None, swap_wh=False):
    """Records of a COCO-format keypoint file with NeuralAnnot fits (MSCOCO, MPII, CrowdPose).

    img_dir: the image folder (image path = img_dir / image_prefix + file_name);
    joints_of(ann, where) -> [J,3] (x, y, valid) in ds.joint_set; keep_ann(ann, joints) -> bool (persons
    that become samples); keep_fit(fit) -> bool (fits that are used); swap_wh: the file stores width and
    height swapped. Every kept person of an image can be a PoseFix neighbour of the others (IoU >= 0.1),
    including those whose box is too degenerate to be a sample; the image's scene (on-the-fly overlap
    edges) holds every annotated person with a usable fit, as `read_neuralannot_scenes` does for the files.
    """
    db = load_json(ann_file, layout)
    fits = load_json(fits_file, layout)
    images = {img['id']: img for img in db.get('images', [])}
    by_image = group_by_image(db.get('annotations', []))
    records, problems = [], []
    for iid, anns in by_image.items():
        img = images.get(iid)
        if img is None:
            problems.append(f'annotation(s) {[a["id"] for a in anns][:3]}: image id {iid} not in the images list')
            continue
        key = f'image {iid} ({img["file_name"]})'
        W, H = (int(img['height']), int(img['width'])) if swap_wh else (int(img['width']), int(img['height']))
        rel = f'{image_prefix}{img["file_name"]}'
        people = {}
        for a in anns:
            fit, where = fits.get(str(a['id'])), f'{key} annotation {a["id"]}'
            if fit is None or (keep_fit is not None and not keep_fit(fit)):
                continue
            try:
                focal, princpt = camera_of(fit.get('cam_param', {}), where)
                people[a['id']] = Person(*smpl_of(fit['smpl_param'], where), focal, princpt,
                                         np.asarray(a['bbox'], np.float64).reshape(4))
            except (KeyError, ValueError, TypeError) as e:
                problems.append(problem(where, e))
        scene = Scene(rel, W, H, list(people.values()), key)
        recs = []
        for a in anns:
            where = f'{key} annotation {a["id"]}'
            try:
                joints = joints_of(a, where)
                tight = np.asarray(a['bbox'], np.float32).reshape(4)
            except (KeyError, ValueError, TypeError) as e:
                problems.append(problem(where, e))
                continue
            if keep_ann is not None and not keep_ann(a, joints):
                continue
            recs.append(Record(Path(img_dir) / rel, (H, W), pre.process_bbox(tight, W, H, train=True), tight,
                               ds.joint_set, joints.astype(np.float32), None, people.get(a['id']), scene=scene,
                               image_rel=rel, key=where))
        add_neighbours(recs)
        records += [r for r in recs if r.bbox is not None]
    report_problems(ds.name, problems)
    return records


@DATASETS.register()
class MSCOCO(BaseDataset):
    """MSCOCO 2017 train (2D training set with NeuralAnnot fits; see the module doc)."""
    name = 'MSCOCO'
    is_3d = False
    joint_set = COCO19

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        ann = self.root / 'annotations'
        return neuralannot_records(
            self, ann / f'person_keypoints_{self.split}2017.json', ann / f'MSCOCO_{self.split}_SMPL_NeuralAnnot.json',
            LAYOUT, image_dir(self.root), lambda a, where: add_midpoints(keypoints(a, len(COCO17), where), COCO17, ('Pelvis', 'Neck')),
            image_prefix=f'{self.split}2017/',
            keep_ann=keep_coco_person)


def keep_coco_person(ann, joints):
    """Not a crowd region, and at least one labelled keypoint."""
    return not ann.get('iscrowd', 0) and ann.get('num_keypoints', int(joints[:17, 2].sum())) > 0
