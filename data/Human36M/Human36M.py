"""Human3.6M (3DCrowdNet format): annotations/Human36M_subject<S>_{data,camera,joint_3d,smpl_param}.json.

Loader (`Human36M`): train = subjects 1, 5, 6, 7, 8, every 5th frame (frame_idx % 5 == 0), all cameras;
test = subjects 9, 11, every 64th frame, camera 4 only. GT joints: `_joint_3d.json` (world, mm) -> camera
(R X + t) -> metres, projected with the camera's f, c (joint set H36M17). SMPL fits (`_smpl_param.json`,
world frame, m) are carried to the camera by `Person.cam_R/cam_t`; frames without a fit get no person
(is_valid_fit 0). No neighbours (one person per image).

Fit filter (3DCrowdNet / I2L-MeshNet): a fit is rejected (is_valid_fit 0) when the mean distance between
the GT H36M joints and the H36M-regressed joints of the fitted mesh, after aligning their means, exceeds
25 mm. It is computed per sample (`fit_error`): the mesh of the (flipped) fit against the GT flipped
alike; it costs one small regression, nothing at load time. MuCo uses the same check on the joints it
shares with H36M17.
"""
import functools
import logging
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.registry import DATASETS, closest
from common.utils import preprocessing as pre
from common.utils.joint_sets import H36M17, SMPL30, map_joints, mapping_indices
from common.utils.metrics import evaluate_h36m
from data.dataset import BaseDataset, Record
from data.scenes import Person, Scene, camera_of, load_json, problem, smpl_of

LAYOUT = ('data/Human36M/annotations/Human36M_subject<S>_{data,camera,joint_3d,smpl_param}.json and '
          'data/Human36M/images/<file_name> (3DCrowdNet / I2L-MeshNet release)')
SPLITS = ('train', 'test')
SUBJECTS = {'train': (1, 5, 6, 7, 8), 'test': (9, 11)}
FRAME_STEP = {'train': 5, 'test': 64}
TEST_CAMERA = 4
FIT_ERR_MAX = 0.025  # m

log = logging.getLogger('sefd')


def image_dir(root):
    return Path(root) / 'images'


def annotation_file(root, subject, kind):
    return Path(root) / 'annotations' / f'Human36M_subject{subject}_{kind}.json'


def available_subjects(root, split):
    """The split's subjects whose annotation files are there; a warning names the missing ones, a
    UserError is raised when none is there."""
    subjects = SUBJECTS[split]
    present = [s for s in subjects if annotation_file(root, s, 'data').is_file()]
    if not present:
        raise UserError(f'missing annotation file {annotation_file(root, subjects[0], "data")} (no Human3.6M '
                        f'{split} subject {list(subjects)} found); expected layout: {LAYOUT}')
    missing = [s for s in subjects if s not in present]
    if missing:
        log.warning(f'Human36M {split}: no annotations for subject(s) {missing} '
                    f'({annotation_file(root, missing[0], "data")} missing); using subjects {present}')
    return present


def keep_frame(img, split):
    return img['frame_idx'] % FRAME_STEP[split] == 0 and (split != 'test' or img['cam_idx'] == TEST_CAMERA)


def read_scenes(root, split='train'):
    """One person per frame; SMPL fits are in the world frame, carried to the camera by (R, t)."""
    scenes, problems = [], []
    for s in available_subjects(root, split):
        db = load_json(annotation_file(root, s, 'data'), LAYOUT)
        cams = load_json(annotation_file(root, s, 'camera'), LAYOUT)
        fits = load_json(annotation_file(root, s, 'smpl_param'), LAYOUT)
        anns = {a['image_id']: a for a in db.get('annotations', [])}
        for img in db.get('images', []):
            if not keep_frame(img, split):
                continue
            key = f'subject {s} image {img["id"]} ({img["file_name"]})'
            try:
                fit = fits[str(img['action_idx'])][str(img['subaction_idx'])][str(img['frame_idx'])]
            except KeyError:
                continue  # frames without a fit have no mesh to render
            try:
                cam = cams[str(img['cam_idx'])]
                focal, princpt = camera_of(cam, key)
                R = np.asarray(cam['R'], np.float64).reshape(3, 3)
                t = np.asarray(cam['t'], np.float64).reshape(3) / 1000  # mm -> m
                pose, shape, trans = smpl_of(fit, key)
                bbox = np.asarray(anns[img['id']]['bbox'], np.float64)
            except (KeyError, ValueError) as e:
                problems.append(problem(key, e))
                continue
            person = Person(pose, shape, trans, focal, princpt, bbox, cam_R=R, cam_t=t)
            scenes.append(Scene(img['file_name'], int(img['width']), int(img['height']), [person], key))
    return scenes, problems


# ------------------------------------------------------------------------------------------------ loader
@functools.lru_cache(maxsize=8)
def _h36m_regressor(body):
    return body.h36m_regressor.numpy().astype(np.float64)


def fit_error(body, verts, gt_rel, gt_idx, h36m_idx, valid=None):
    """The fit filter's error (m) of one sample (3DCrowdNet / I2L-MeshNet): mean distance between the GT
    joints and the H36M-regressed joints of the fitted mesh after aligning the means of both sets.

    verts [V,3]: the fitted mesh (camera frame); gt_rel [K,3]: the GT joints in the same frame (any
    translation: the means are aligned). gt_idx / h36m_idx: compared joints (GT index <-> H36M17 index);
    valid [K] bool: GT joints to use."""
    reg = _h36m_regressor(body) @ np.asarray(verts, np.float64)
    gt_idx, h36m_idx = np.asarray(gt_idx), np.asarray(h36m_idx)
    if valid is not None:
        keep = np.asarray(valid, bool)[gt_idx]
        gt_idx, h36m_idx = gt_idx[keep], h36m_idx[keep]
    if len(gt_idx) == 0:
        return float('inf')
    g, h = np.asarray(gt_rel, np.float64)[gt_idx], reg[h36m_idx]
    return float(np.linalg.norm((h - h.mean(0)) - (g - g.mean(0)), axis=1).mean())


def h36m_fit_is_valid(ds, rec, verts, gt_rel):
    """BaseDataset.fit_is_valid for the 3D sets: error <= 25 mm on the GT joints the dataset shares with
    H36M17 by name. Only joints valid together with their mirror partner are compared, so the set does
    not depend on the flip."""
    if gt_rel is None:
        return True
    js = rec.joint_set
    valid = rec.joints_2d[:, 2] > 0
    valid &= valid[js.flip_permutation()]
    gt_idx, h36m_idx = mapping_indices(js, H36M17)
    return fit_error(ds.body(), verts, gt_rel, gt_idx, h36m_idx, valid) <= FIT_ERR_MAX


def report_problems(name, problems, limit=5):
    if problems:
        log.warning(f'{name}: skipped {len(problems)} bad annotation(s), e.g. ' + '; '.join(problems[:limit]))


def check_split(name, split, splits):
    if split not in splits:
        raise UserError(f'{name} has no split {split!r}{closest(split, splits)}; splits: {", ".join(splits)}')


@DATASETS.register()
class Human36M(BaseDataset):
    """Human3.6M with SMPLify-X fits (3D training set; see the module doc for the protocol)."""
    name = 'Human36M'
    is_3d = True

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        records, problems = [], []
        for s in available_subjects(self.root, self.split):
            db, cams, joints, fits = (load_json(annotation_file(self.root, s, k), LAYOUT)
                                      for k in ('data', 'camera', 'joint_3d', 'smpl_param'))
            anns = {a['image_id']: a for a in db.get('annotations', [])}
            for img in db.get('images', []):
                if not keep_frame(img, self.split):
                    continue
                key = f'subject {s} image {img["id"]} ({img["file_name"]})'
                frame = (str(img['action_idx']), str(img['subaction_idx']), str(img['frame_idx']))
                try:
                    rec = self.make_record(img, anns, cams, joints, fits, frame, key)
                except (KeyError, ValueError, TypeError) as e:
                    problems.append(problem(key, e))
                    continue
                if rec is not None:
                    records.append(rec)
        report_problems(self.name, problems)
        return records

    def make_record(self, img, anns, cams, joints, fits, frame, key):
        """Record, or None when the box is degenerate."""
        act, sub, fr = frame
        cam = cams[str(img['cam_idx'])]
        focal, princpt = camera_of(cam, key)
        R = np.asarray(cam['R'], np.float64).reshape(3, 3)
        t = np.asarray(cam['t'], np.float64).reshape(3)  # mm
        world = np.asarray(joints[act][sub][fr], np.float64).reshape(len(H36M17), 3)
        j3d = (world @ R.T + t) / 1000  # camera frame, m
        if not np.isfinite(j3d).all():
            raise ValueError(f'{key}: GT joints contain NaN/inf')
        proj = j3d[:, :2] / j3d[:, 2:] * np.asarray(focal) + np.asarray(princpt)
        W, H = int(img['width']), int(img['height'])
        tight = np.asarray(anns[img['id']]['bbox'], np.float32).reshape(4)
        bbox = pre.process_bbox(tight, W, H, train=True)
        if bbox is None:
            return None
        fit = fits.get(act, {}).get(sub, {}).get(fr)
        person = None
        if fit is not None:
            person = Person(*smpl_of(fit, key), focal, princpt, tight.astype(np.float64), cam_R=R, cam_t=t / 1000)
        scene = Scene(img['file_name'], W, H, [person] if person is not None else [], key)
        joints_2d = np.concatenate([proj, (j3d[:, 2:] > 0)], 1).astype(np.float32)
        rec = Record(image_dir(self.root) / img['file_name'], (H, W), bbox, tight, H36M17, joints_2d,
                     j3d.astype(np.float32), person, scene=scene, image_rel=img['file_name'], key=key,
                     ann_id=int(anns[img['id']].get('id', img['id'])))
        return rec

    def fit_is_valid(self, rec, verts, gt_rel):
        return h36m_fit_is_valid(self, rec, verts, gt_rel)

    def get_sample(self, rec, rng):
        """Training samples as every 3D set; test samples: the crop with the GT 2D pose as input (the released
        protocol has no detections for H36M) and the GT joints as target."""
        if self.train:
            return super().get_sample(rec, rng)
        inputs, meta = self.test_inputs(rec, map_joints(rec.joints_2d, H36M17, SMPL30), 0.0)
        return inputs, {'joints_h36m': torch.from_numpy(rec.joints_3d.astype(np.float32))}, meta

    def evaluate(self, out, targets):
        """Protocol 2: MPJPE and PA-MPJPE (mm) of the H36M-regressed predicted joints, Eval-14, root-relative."""
        return evaluate_h36m(out['mesh_cam'], targets['joints_h36m'], self.body().h36m_regressor)
