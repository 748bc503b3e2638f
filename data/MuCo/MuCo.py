"""MuCo-3DHP (3DCrowdNet format): data/MuCo/data/MuCo-3DHP.json + smpl_param.json (camera frame, metres)."""
from pathlib import Path

import numpy as np

from common.body.joint_sets import MUCO21
from common.pipeline import preprocessing as pre
from data.Human36M.Human36M import h36m_fit_is_valid
from data.dataset import BaseDataset, Record, add_neighbours
from data.registry import DATASETS
from data.scenes import (Person, Scene, camera_of, check_split, group_by_image, load_json, problem, report_problems,
                         smpl_of)

LAYOUT = ('data/MuCo/data/MuCo-3DHP.json, data/MuCo/data/smpl_param.json and data/MuCo/data/<file_name> '
          '(3DCrowdNet release)')
SPLITS = ('train',)


def image_dir(root):
    return Path(root) / 'data'


BAD_ENTRY = (KeyError, ValueError, TypeError, IndexError, AttributeError)


def read_annotations(root):
    """[(image entry, its annotations, {annotation id: Person with a fit}, Scene)] and the problems: the one parse
    of the files, from which both the tools' scenes and the training records are made. An image with a malformed
    camera, size or fit is skipped and named in problems."""
    db = load_json(Path(root) / 'data' / 'MuCo-3DHP.json', LAYOUT)
    fits = load_json(Path(root) / 'data' / 'smpl_param.json', LAYOUT)
    by_image = group_by_image([a for a in db.get('annotations', []) if isinstance(a, dict) and 'image_id' in a])
    entries, problems = [], []
    for img in db.get('images', []):
        anns = by_image.get(img.get('id') if isinstance(img, dict) else None)
        if not anns:
            continue
        key = f'image {img["id"]} ({img.get("file_name")})'
        try:
            focal, princpt = camera_of(img, key)
            # every person with a fit: overlap needs all of them, not only the sample's (closest) person
            people = {a['id']: Person(*smpl_of(fits[str(a['id'])], f'{key} annotation {a["id"]}'), focal, princpt,
                                      np.asarray(a['bbox'], np.float64).reshape(4))
                      for a in anns if str(a['id']) in fits}
            scene = Scene(img['file_name'], int(img['width']), int(img['height']), list(people.values()), key)
        except BAD_ENTRY as e:
            problems.append(problem(key, e))
            continue
        entries.append((img, anns, people, scene))
    return entries, problems


def read_scenes(root, split='train'):
    entries, problems = read_annotations(root)
    return [scene for _, _, _, scene in entries if scene.people], problems


# ------------------------------------------------------------------------------------------------ loader
@DATASETS.register()
class MuCo(BaseDataset):
    """MuCo-3DHP (3D training set). One sample per image: the person with the smallest root (pelvis)
    depth, added once. GT: `keypoints_cam` (camera frame, mm -> m) and `keypoints_img` (px), joint set
    MUCO21; a joint is valid when its depth is positive (a joint at the camera centre is a hole in the
    annotation). Neighbours (PoseFix swaps): the image's other persons whose tight boxes overlap (IoU >= 0.1).
    SMPL fits from smpl_param.json by str(annotation id), camera frame; rejected (is_valid_fit 0) when the
    mean distance between the GT joints MuCo shares with H36M17 (by name) and the H36M-regressed joints of
    the fitted mesh, after aligning their means, exceeds 25 mm (per sample, flipped with the sample:
    data/Human36M/Human36M.py `fit_error`).
    On-the-fly overlap edges see every person of the image with a fit."""
    name = 'MuCo'
    is_3d = True

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        entries, problems = read_annotations(self.root)
        records = []
        for img, anns, people, scene in entries:
            try:
                rec = self.image_record(img, anns, people, scene)
            except BAD_ENTRY as e:
                problems.append(problem(scene.key, e))
                continue
            if rec is not None:
                records.append(rec)
        report_problems(self.name, problems)
        return records

    def image_record(self, img, anns, people, scene):
        key, W, H, recs = scene.key, scene.width, scene.height, []
        for a in anns:
            j3d = np.asarray(a['keypoints_cam'], np.float64).reshape(len(MUCO21), 3) / 1000
            j2d = np.asarray(a['keypoints_img'], np.float64).reshape(len(MUCO21), -1)[:, :2]
            if not (np.isfinite(j3d).all() and np.isfinite(j2d).all()):
                raise ValueError(f'{key} annotation {a["id"]}: GT joints contain NaN/inf')
            valid = (j3d[:, 2:] > 0).astype(np.float64)
            tight = np.asarray(a['bbox'], np.float32).reshape(4)
            recs.append(Record(image_dir(self.root) / img['file_name'], (H, W), None, tight, MUCO21,
                               np.concatenate([j2d, valid], 1).astype(np.float32), j3d.astype(np.float32),
                               people.get(a['id']), scene=scene, image_rel=img['file_name'],
                               key=f'{key} annotation {a["id"]}'))
        add_neighbours(recs)  # every other person of the image can be a swap anchor
        root = MUCO21.root_idx
        closest = min(range(len(anns)), key=lambda i: anns[i]['keypoints_cam'][root][2])
        rec = recs[closest]
        rec.bbox = pre.process_bbox(rec.tight_bbox, W, H, train=True)
        return rec if rec.bbox is not None else None

    def fit_is_valid(self, rec, verts, gt_rel):
        return h36m_fit_is_valid(self, rec, verts, gt_rel)
