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
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from common.body.joint_sets import H36M17, SMPL30, map_joints, mapping_indices
from common.errors import UserError
from common.metrics import evaluate_h36m
from common.pipeline import preprocessing as pre
from data.dataset import BaseDataset, Record
from data.registry import DATASETS
from data.scenes import (Person, Scene, box_of, camera_of, check_split, load_json, problem, report_problems,
                         smpl_of)

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


@dataclass
class Frame:
    """One kept frame of one subject: its image entry, camera (focal, princpt, R, t in m), tight box, the SMPL fit
    (world frame; None where the frame has none) and, when asked for, the GT joints (world frame, mm)."""
    img: dict
    key: str
    focal: np.ndarray
    princpt: np.ndarray
    R: np.ndarray
    t: np.ndarray
    bbox: np.ndarray
    ann_id: int
    fit: Optional[tuple]
    joints: Optional[np.ndarray] = None

    def person(self):
        return None if self.fit is None else Person(*self.fit, self.focal, self.princpt, self.bbox.astype(np.float64),
                                                    cam_R=self.R, cam_t=self.t)

    def scene(self):
        person = self.person()
        return Scene(self.img['file_name'], int(self.img['width']), int(self.img['height']),
                     [person] if person is not None else [], self.key)


def read_annotations(root, split, with_joints=False):
    """[Frame] of the split's subjects and the problems: the one parse of the annotation files, from which both the
    tools' scenes and the training/test records are made. A frame with a malformed camera, box, fit or joints is
    skipped and named in problems; a frame without a fit is kept (its joints still supervise)."""
    frames, problems = [], []
    for s in available_subjects(root, split):
        db, cams, fits = (load_json(annotation_file(root, s, k), LAYOUT) for k in ('data', 'camera', 'smpl_param'))
        joints = load_json(annotation_file(root, s, 'joint_3d'), LAYOUT) if with_joints else None
        anns = {a['image_id']: a for a in db.get('annotations', []) if isinstance(a, dict) and 'image_id' in a}
        seen = set()   # each frame (one person) once
        for img in db.get('images', []):
            try:
                if not keep_frame(img, split):
                    continue
                key = f'subject {s} image {img["id"]} ({img["file_name"]})'
                if img['id'] in seen:
                    raise ValueError(f'{key}: listed again: counted once')
                seen.add(img['id'])
                act, sub, fr = str(img['action_idx']), str(img['subaction_idx']), str(img['frame_idx'])
                cam = cams[str(img['cam_idx'])]
                focal, princpt = camera_of(cam, key)
                R = np.asarray(cam['R'], np.float64).reshape(3, 3)
                t = np.asarray(cam['t'], np.float64).reshape(3) / 1000  # mm -> m
                ann = anns[img['id']]
                bbox = box_of(ann['bbox'], key).astype(np.float32)
                fit = fits.get(act, {}).get(sub, {}).get(fr)
                world = None
                if with_joints:
                    world = np.asarray(joints[act][sub][fr], np.float64).reshape(len(H36M17), 3)
                    if not np.isfinite(world).all():
                        raise ValueError(f'{key}: GT joints contain NaN/inf')
                frame = Frame(img, key, focal, princpt, R, t, bbox, int(ann.get('id', img['id'])),
                              smpl_of(fit, key) if fit is not None else None, world)
                frame.scene()   # a bad image size fails here, where it is named, not in training
                frames.append(frame)
            except (KeyError, ValueError, TypeError, AttributeError) as e:
                problems.append(problem(f'subject {s} image {img.get("id") if isinstance(img, dict) else img}', e))
    return frames, problems


def read_scenes(root, split='train'):
    """One person per frame with a fit (frames without one have no mesh to render); SMPL fits are in the world
    frame, carried to the camera by (R, t)."""
    frames, problems = read_annotations(root, split)
    return [f.scene() for f in frames if f.fit is not None], problems


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


@DATASETS.register()
class Human36M(BaseDataset):
    """Human3.6M with SMPLify-X fits (3D training set; see the module doc for the protocol)."""
    name = 'Human36M'
    is_3d = True

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        frames, problems = read_annotations(self.root, self.split, with_joints=True)
        report_problems(self.name, problems)
        return [r for r in map(self.make_record, frames) if r is not None]

    def make_record(self, frame):
        """Record, or None when the box is degenerate."""
        img = frame.img
        j3d = frame.joints @ frame.R.T / 1000 + frame.t  # camera frame, m
        proj = j3d[:, :2] / j3d[:, 2:] * np.asarray(frame.focal) + np.asarray(frame.princpt)
        W, H = int(img['width']), int(img['height'])
        bbox = pre.process_bbox(frame.bbox, W, H, train=True)
        if bbox is None:
            return None
        scene = frame.scene()
        joints_2d = np.concatenate([proj, (j3d[:, 2:] > 0)], 1).astype(np.float32)
        return Record(image_dir(self.root) / img['file_name'], (H, W), bbox, frame.bbox, H36M17, joints_2d,
                      j3d.astype(np.float32), scene.people[0] if scene.people else None, scene=scene,
                      image_rel=img['file_name'], key=frame.key, ann_id=frame.ann_id)

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
