"""Dataset lookup, the training mixture of 3DCrowdNet (3D sets and 2D sets drawn 50/50), and the common
base of the loaders.

Every loader reduces its format to `Record`s (data/<Name>/<Name>.py) and `BaseDataset.__getitem__` turns a
record into the one sample dict all training sets share (shapes per sample; J = 30 SMPL-30 joints,
S = model.input_size, G = S/4 the heatmap grid):

  inputs   img [3,S,S] RGB in [0,1]; joints [J,2] input 2D pose (grid px; data.input_pose: the test-time
           detector's joints and errors, or 3DCrowdNet's PoseFix + clean GT); joints_mask [J,1] (which input joints
           are given: detected and inside the grid, or the clean GT truncation mask); edge [1,S,S] in [0,1]
  targets  orig_joint_img [J,3] (grid px; z on the grid for 3D sets, 0 for 2D sets); fit_joint_img [J,3];
           orig_joint_cam [J,3] (m, root-relative, rotated with the crop; 0 for 2D sets); fit_joint_cam [J,3];
           pose_param [72] (root rotated with the crop); shape_param [10] (zeroed when any |beta| > 3)
  meta     orig_joint_valid [J,1]; orig_joint_trunc [J,1]; fit_param_valid [72]; fit_joint_trunc [J,1];
           is_valid_fit [1]; is_3D [1]
The test sample of 3DPW is documented in data/PW3D/PW3D.py.
"""
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from common.body.joint_sets import COCO17, SMPL30, JointSet, map_joints, openpose_to_smpl30
from common.body.smpl import body_model
from common.errors import UserError
from common.paths import ROOT
from common.pipeline import preprocessing as pre
from common.pipeline.posefix import (bbox_area_in_crop, detector_joints, overlapping, replace_common_joints,
                                  synthesize_pose, to_coco17)
from data.edge_inputs import EdgeInputs
from data.image_cache import DecodedImages
from data.registry import DATASETS
from data.scenes import Person, Scene

log = logging.getLogger('sefd')
# SMPL-30 joints whose rotations the fits do not constrain (3DCrowdNet's fit_param_valid)
UNFIT_JOINTS = ('L_Ankle', 'R_Ankle', 'L_Toe', 'R_Toe', 'L_Wrist', 'R_Wrist', 'L_Hand', 'R_Hand')


def dataset_root(cfg, name):
    base = Path(cfg.data.root) if cfg.data.root else ROOT / 'data'
    return (base if base.is_absolute() else ROOT / base) / name


def get_dataset_class(name):
    """The loader class of data/<Name>/<Name>.py (imported on first use)."""
    return DATASETS.get(name)


class MultipleDatasets(Dataset):
    """Each member drawn equally often: length = longest member x members; index i reads member
    i // longest. Shorter members wrap around, and the last incomplete pass over one draws at random so
    its first items are not favoured."""

    def __init__(self, datasets):
        self.dbs = [d for d in datasets if len(d) > 0]
        if not self.dbs:
            raise UserError('every training dataset is empty')
        self.max_len = max(len(d) for d in self.dbs)

    def __len__(self):
        return self.max_len * len(self.dbs)

    def __getitem__(self, index):
        db = self.dbs[index // self.max_len]
        j, n = index % self.max_len, len(db)
        if j >= (self.max_len // n) * n:
            j = int(torch.randint(n, (1,)))
        return db[j % n]


def build_train_dataset(cfg):
    groups = []
    for names in (cfg.data.train_sets_3d, cfg.data.train_sets_2d):
        if names:
            dbs = [get_dataset_class(n)(cfg, 'train') for n in names]
            groups.append(dbs[0] if len(dbs) == 1 else ConcatDataset(dbs))
    if not groups:
        raise UserError('no training set: set data.train_sets_3d and/or data.train_sets_2d')
    return groups[0] if len(groups) == 1 else MultipleDatasets(groups)


# ------------------------------------------------------------------------------------------------ records
@dataclass
class Record:
    """One person of one image, in the dataset's own joint set and image pixels."""
    img_path: Path
    img_shape: tuple                     # (h, w)
    bbox: np.ndarray                     # crop box (x,y,w,h), processed
    tight_bbox: np.ndarray               # the person's tight box
    joint_set: JointSet
    joints_2d: np.ndarray                # [J,3] x, y (image px), valid
    joints_3d: Optional[np.ndarray] = None   # [J,3] camera frame, metres (3D sets)
    person: Optional[Person] = None      # SMPL fit (any camera convention of data/scenes.py)
    near_joints: np.ndarray = field(default_factory=lambda: np.zeros((0, 17, 3), np.float32))  # COCO-17, px
    scene: Optional[Scene] = None        # everyone in the image (on-the-fly overlap edges)
    image_rel: str = ''                  # image path under the dataset's image folder (edge files)
    key: str = ''
    ann_id: int = -1                     # annotation id (evaluation results name their samples by it)
    occlusion: float = float('nan')      # fraction of the person other people hide, where recorded (Synthetic)
    detector: Optional[tuple] = None     # (DetectorScene, person index): the test-time detector, replayable (Synthetic)


def add_neighbours(records, thr=0.1):
    """Other people of the same image whose tight boxes overlap (IoU >= thr): their COCO-17 joints with
    their real confidences (unlabelled joints stay 0 and are never swap anchors). None entries (people whose box
    is degenerate) are left out."""
    records = [r for r in records if r is not None]
    if len(records) < 2:
        return
    boxes = np.stack([r.tight_bbox for r in records])
    for i, r in enumerate(records):
        idx = overlapping(r.tight_bbox, boxes, thr, exclude=i)
        if len(idx):
            r.near_joints = np.stack([to_coco17(records[k].joints_2d, records[k].joint_set) for k in idx]).astype(np.float32)


class BaseDataset(Dataset):
    """Turns Records into samples. Subclasses set `name`, `is_3d` and implement `load_records()`."""
    name = ''
    is_3d = False
    # the SMPL fits are the truth (rendered from them): every joint's rotation is a target; fitted datasets leave
    # out the wrists, hands, ankles and toes, which their fits do not constrain (3DCrowdNet's fit_param_valid)
    exact_fits = False
    bad_sample_log_limit = 5   # bad samples named one by one; after that at 10, 100, 1000, ... (a running total)
    # SMPL meshes of a record (its fit, flipped or not; its scene's people) depend on nothing random: each loader
    # worker keeps the last ones (an entry is 50-250 KB: at most ~130 MB), which takes the body model off most
    # samples of a small set; on a large set it only costs that memory
    mesh_cache_size = 512

    def __init__(self, cfg, split='train'):
        self.cfg, self.split, self.train = cfg, split, split == 'train'
        self._bodies = {}   # gender -> this dataset's own body model (load_records needs them)
        self.root = dataset_root(cfg, self.name)
        self.size = cfg.model.input_size
        self.hm = self.size // 4
        self.records = self.load_records()
        self.bad = set()  # indices of records found bad (per worker process)
        self.edges = EdgeInputs(self)
        self._meshes = OrderedDict()
        self._batch_fits = {}
        self.images = DecodedImages(cfg.data.image_cache_mb / max(1, cfg.data.num_workers))
        log.info(f'{self.name} {split}: {len(self.records)} samples')

    def load_records(self):
        raise NotImplementedError

    def tell_bad(self):
        n = len(self.bad)
        return n <= self.bad_sample_log_limit or (n >= 10 and str(n).rstrip('0') == '1')

    def __len__(self):
        return len(self.records)

    def body(self, gender='neutral'):
        """This dataset's own body model (built once: samples ask for it each time)."""
        if gender not in self._bodies:
            self._bodies[gender] = body_model(self.cfg.model, gender)
        return self._bodies[gender]

    @property
    def published_crops(self):
        return self.cfg.data.crop_convention == 'published'

    def load_img(self, rec):
        return self.images.get(('image', rec.img_path), lambda: pre.load_img(rec.img_path))

    def __getitem__(self, index):
        if not self.train:   # evaluation: a bad sample is left out and counted (data/loader.py), never replaced: its
            # BadSample takes its place in the batch
            try:
                return self.get_sample(self.records[index], np.random.default_rng(index))
            except pre.BadSample as e:
                if self.cfg.data.on_bad_sample == 'error':
                    raise UserError(f'{self.name} {self.split}: {e} (set data.on_bad_sample=skip to skip such '
                                    f'samples)') from e
                self.bad.add(index)
                if self.tell_bad():
                    log.warning(f'{self.name} {self.split}: left out a bad sample ({e}); {len(self.bad)} so far')
                return e
        for k in range(len(self.records)):
            i = (index + k) % len(self.records)
            if i in self.bad:
                continue
            try:
                return self.get_sample(self.records[i], np.random.default_rng(int(torch.randint(2 ** 62, (1,)))))
            except pre.BadSample as e:
                if self.cfg.data.on_bad_sample == 'error':
                    raise UserError(f'{self.name}: {e} (set data.on_bad_sample=skip to skip such samples)') from e
                self.bad.add(i)
                if self.tell_bad():
                    log.warning(f'{self.name}: skipped a bad sample ({e}); {len(self.bad)} so far')
        raise UserError(f'{self.name} {self.split}: every sample is bad (missing or corrupt images?)')

    # ------------------------------------------------------------------------------------------ sample
    def get_sample(self, rec, rng):
        S, G, js = self.size, self.hm, rec.joint_set
        img = self.load_img(rec)
        aug = pre.get_aug_config(rng, self.train)
        W = img.shape[1]  # the pixels' width: an annotation's width may be wrong (CrowdPose stores it swapped)
        detected, bbox = None, rec.bbox
        if self.train and rec.detector is not None and self.cfg.data.input_pose == 'detector':
            # the test-time detector replayed (fresh errors each time), and the crop made from its pose, as in testing
            scene, i = rec.detector
            detected = openpose_to_smpl30(scene.detect(rng, i))
            box = pre.pose_box(detected, W, img.shape[0], train=True)
            bbox = box if box is not None else rec.bbox
        patch, img2bb, _ = pre.generate_patch_image(img, bbox, aug.scale, aug.rot, aug.do_flip, (S, S))

        # GT 2D/3D joints of the dataset's own set -> crop -> grid, then SMPL-30 by name
        j2d = pre.joints_to_crop(rec.joints_2d, img2bb, aug.do_flip, W, js.flip_pairs)
        valid = (j2d[:, 2:3] > 0).astype(np.float32)
        grid = np.zeros((len(js), 3), np.float32)
        grid[:, :2] = pre.crop_to_grid(j2d[:, :2], (S, S), (G, G))
        cam = np.zeros((len(js), 3), np.float32)
        gt_rel = None  # flipped, root-relative, not yet rotated: the frame the fit check compares in
        if rec.joints_3d is not None:
            j3d = pre.flip_joints_3d(rec.joints_3d, js.flip_pairs) if aug.do_flip else rec.joints_3d
            gt_rel = j3d - j3d[js.root_idx]
            grid[:, 2] = pre.depth_to_grid(j3d[:, 2], j3d[js.root_idx, 2], self.cfg.model.bbox_3d_size, G)
            cam = pre.rotate_root_relative(gt_rel, aug.rot).astype(np.float32)
        trunc = pre.truncation_mask(grid, valid[:, 0], (G, G), G if rec.joints_3d is not None else None)

        to30 = lambda a: map_joints(np.asarray(a, np.float32), js, SMPL30)  # noqa: E731
        if detected is not None:
            inp, inp_mask = self.detected_input(pre.joints_to_crop(detected, img2bb, aug.do_flip, W, SMPL30.flip_pairs))
        elif self.train:
            inp, inp_mask = self.posefix_input(rec, j2d, valid, img2bb, aug, W, trunc, to30, rng)
        else:
            inp, inp_mask = to30(pre.crop_to_grid(j2d[:, :2], (S, S), (G, G))), to30(trunc)

        fit = self.fit_targets(rec, aug, img2bb, W, gt_rel)
        patch = pre.apply_color_gain(patch, aug.color_gain)
        inputs = {'img': torch.from_numpy(pre.image_to_chw(patch)),
                  'joints': torch.from_numpy(inp), 'joints_mask': torch.from_numpy(inp_mask),
                  **self.edges(rec, patch, img2bb, aug.do_flip, W)}
        targets = {'orig_joint_img': to30(grid), 'fit_joint_img': fit['joint_img'], 'orig_joint_cam': to30(cam),
                   'fit_joint_cam': fit['joint_cam'], 'pose_param': fit['pose'], 'shape_param': fit['shape']}
        meta = {'orig_joint_valid': to30(valid), 'orig_joint_trunc': to30(trunc), 'fit_param_valid': fit['param_valid'],
                'fit_joint_trunc': fit['trunc'], 'is_valid_fit': np.float32([fit['valid']]),
                'is_3D': np.float32([self.is_3d])}
        as_t = lambda d: {k: torch.as_tensor(v) for k, v in d.items()}  # noqa: E731
        return inputs, as_t(targets), as_t(meta)

    def detected_input(self, pose30):
        """(joints [30,2] grid px, mask [30,1]) of a detected pose [30,3] in crop px: the joints above pre.INPUT_CONF_THR
        and inside the grid count, as in testing."""
        S, G = self.size, self.hm
        grid = pre.crop_to_grid(pose30[:, :2], (S, S), (G, G)).astype(np.float32)
        return grid, pre.truncation_mask(grid, pose30[:, 2] > pre.INPUT_CONF_THR, (G, G))

    def posefix_input(self, rec, j2d, valid, img2bb, aug, W, trunc, to30, rng):
        """The training input pose from PoseFix errors on the COCO joints (data.input_pose): detector = only the
        joints a detector gives (COCO-17, neck, pelvis), each counting when synthesised and inside the grid;
        published = 3DCrowdNet's (clean GT on every other joint of the set, the clean GT truncation mask)."""
        S, G, js = self.size, self.hm, rec.joint_set
        near = np.stack([pre.joints_to_crop(n, img2bb, aug.do_flip, W, COCO17.flip_pairs) for n in rec.near_joints]) \
            if len(rec.near_joints) else np.zeros((0, 17, 3), np.float32)
        coco = to_coco17(np.concatenate([j2d[:, :2], valid], 1), js)
        synth = synthesize_pose(coco, near, bbox_area_in_crop(rec.tight_bbox, img2bb), rng)
        if self.cfg.data.input_pose == 'detector':
            return self.detected_input(detector_joints(synth))
        inp = replace_common_joints(j2d[:, :2], js, synth)
        return to30(pre.crop_to_grid(inp, (S, S), (G, G))), to30(trunc)

    def test_inputs(self, rec, pose30, conf_thr):
        """A test sample's inputs and meta: the crop of rec.bbox without augmentation, and the input 2D pose
        pose30 [30,3] (SMPL-30, image px, confidence; joints at or below conf_thr are masked out)."""
        img = self.load_img(rec)
        if tuple(img.shape[:2]) != tuple(rec.img_shape):   # the crop box and the scoring are in the annotation's pixels
            raise pre.BadSample(rec.img_path, f'decodes to {img.shape[1]}x{img.shape[0]} px, its annotation says '
                                              f'{rec.img_shape[1]}x{rec.img_shape[0]}: the image or the annotation is '
                                              f'not the one it belongs to')
        patch, img2bb, bb2img, joints, mask = pre.test_crop(img, rec.bbox, pose30, conf_thr, self.size,
                                                             published=self.published_crops)
        inputs = {'img': torch.from_numpy(pre.image_to_chw(patch.astype(np.float32))),
                  'joints': torch.from_numpy(joints), 'joints_mask': torch.from_numpy(mask),
                  **self.edges(rec, patch, img2bb, False, rec.img_shape[1])}
        meta = {'bb2img_trans': torch.as_tensor(bb2img), 'img2bb_trans': torch.as_tensor(img2bb),
                'bbox': torch.as_tensor(np.float32(rec.bbox)), 'tight_bbox': torch.as_tensor(rec.tight_bbox),
                'ann_id': torch.as_tensor(np.int64(rec.ann_id))}
        return inputs, meta

    def camera_frame_smpl(self, p):
        """(pose, shape, trans) with the mesh in p's camera (world-frame fits carried by cam_R, cam_t)."""
        pose, shape, trans = p.pose.astype(np.float64), p.shape.astype(np.float64), p.trans.astype(np.float64)
        if p.cam_R is None:
            return pose, shape, trans
        # the root rotation turns the body about its root joint J0, not about the origin: R(J0 + t) + t_c
        # = R J0 + (R t + t_c), so the translation gains R J0 - J0
        j0 = self.smpl_joints(np.zeros(72), shape, np.zeros(3), p.gender)[SMPL30.root_idx]
        pose = pose.copy()
        pose[:3] = cv2.Rodrigues(p.cam_R @ cv2.Rodrigues(pose[:3])[0])[0].ravel()
        return pose, shape, p.cam_R @ trans + p.cam_t + p.cam_R @ j0 - j0

    def cached(self, key, make):
        """make() once per key among the last mesh_cache_size keys of this process."""
        if key in self._meshes:
            self._meshes.move_to_end(key)
            return self._meshes[key]
        value = self._meshes[key] = make()
        if len(self._meshes) > self.mesh_cache_size:
            self._meshes.popitem(last=False)
        return value

    def people_joints(self, people):
        """Camera-frame SMPL-30 joints [30,3] of each Person, one body-model call per gender (loading is faster)."""
        params = [self.camera_frame_smpl(p) for p in people]
        out = [None] * len(people)
        for g in {p.gender for p in people}:
            same = [i for i, p in enumerate(people) if p.gender == g]
            for c in range(0, len(same), 512):
                idx = same[c:c + 512]
                t = lambda k: torch.as_tensor(np.stack([params[i][k] for i in idx]), dtype=torch.float32)  # noqa: E731
                with torch.no_grad():
                    _, joints = self.body(g)(t(0), t(1), t(2))
                for n, i in enumerate(idx):
                    out[i] = joints[n].numpy().astype(np.float64)
        return out

    def smpl_joints(self, pose, shape, trans, gender='neutral'):
        return self.smpl_mesh(pose, shape, trans, gender)[1]

    def smpl_mesh(self, pose, shape, trans, gender='neutral'):
        v, j = self.smpl_meshes([(pose, shape, trans)], gender)
        return v[0], j[0]

    def fit_targets(self, rec, aug, img2bb, W, gt_rel):
        S, G = self.size, self.hm
        param_valid = np.ones((24, 3), np.float32)
        if not self.exact_fits:
            param_valid[[SMPL30.index(n) for n in UNFIT_JOINTS]] = 0
        empty = {'joint_img': np.zeros((30, 3), np.float32), 'joint_cam': np.zeros((30, 3), np.float32),
                 'pose': np.zeros(72, np.float32), 'shape': np.zeros(10, np.float32),
                 'trunc': np.zeros((30, 1), np.float32), 'param_valid': param_valid.reshape(72), 'valid': 0.0}
        if rec.person is None:
            return empty
        p, key = rec.person, ('fit', id(rec), aug.do_flip, W)
        fit = self._batch_fits.get(key)
        pose, shape, trans, verts, joints = fit if fit is not None else \
            self.cached(key, lambda: self.fitted_mesh(p, aug.do_flip, W))
        root = joints[SMPL30.root_idx]
        proj = joints[:, :2] / joints[:, 2:] * np.asarray(p.focal) + np.asarray(p.princpt)
        jimg = np.zeros((30, 3), np.float32)
        jimg[:, :2] = pre.crop_to_grid(pre.transform_joints_2d(proj, img2bb), (S, S), (G, G))
        jimg[:, 2] = pre.depth_to_grid(joints[:, 2], root[2], self.cfg.model.bbox_3d_size, G)
        jcam = pre.rotate_root_relative(joints - root, aug.rot).astype(np.float32)
        valid = self.fit_is_valid(rec, verts, gt_rel)
        return {'joint_img': jimg, 'joint_cam': jcam, 'pose': pre.rotate_smpl_root(pose, aug.rot).astype(np.float32),
                'shape': (shape if np.abs(shape).max() <= 3 else np.zeros(10)).astype(np.float32),
                'trunc': pre.truncation_mask(jimg, np.ones(30), (G, G), G), 'param_valid': param_valid.reshape(72),
                'valid': float(valid)}

    @contextlib.contextmanager
    def batch_fits(self, indices):
        """Within it, the fitted meshes (mirrored and not) of records `indices` come from two batched body-model calls
        per gender, not from one or two calls per sample (per call, not per person, is what costs: 16 people in
        one call take the time of 3-4 single calls). A sample's values then depend only on its batch, never on what
        the worker drew before, so a resumed run draws the same samples."""
        recs = [self.records[i] for i in dict.fromkeys(indices) if self.train and 0 <= i < len(self.records)
                and i not in self.bad and self.records[i].person is not None]
        fits = {}
        for g in {r.person.gender for r in recs}:
            group = [r for r in recs if r.person.gender == g]
            params = [self.camera_frame_smpl(r.person) for r in group]
            flipped = []
            for r, prm, vj in zip(group, params, zip(*self.smpl_meshes(params, g))):
                p, W = r.person, r.img_shape[1]
                fits[('fit', id(r), False, W)] = (*prm, *vj)
                root = vj[1][SMPL30.root_idx]
                flipped.append((pre.flip_smpl_pose(prm[0]), prm[1],
                                pre.flip_smpl_translation(prm[2], root, p.focal[0], p.princpt[0], W)))
            for r, prm, vj in zip(group, flipped, zip(*self.smpl_meshes(flipped, g))):
                fits[('fit', id(r), True, r.img_shape[1])] = (*prm, *vj)
        self._batch_fits = fits
        try:
            yield
        finally:
            self._batch_fits = {}

    def smpl_meshes(self, params, gender):
        """(vertices [N,V,3], joints [N,30,3]) float64 of N (pose, shape, trans), in one body-model call."""
        t = lambda k: torch.as_tensor(np.stack([q[k] for q in params]), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            v, j = self.body(gender)(t(0), t(1), t(2))
        return v.numpy().astype(np.float64), j.numpy().astype(np.float64)

    def fitted_mesh(self, p, do_flip, W):
        """(pose, shape, trans, verts, joints) of person p's fit in the camera frame, mirrored when do_flip."""
        pose, shape, trans = self.camera_frame_smpl(p)
        if do_flip:
            root = self.smpl_joints(pose, shape, trans, p.gender)[SMPL30.root_idx]
            pose, trans = pre.flip_smpl_pose(pose), pre.flip_smpl_translation(trans, root, p.focal[0], p.princpt[0], W)
        return (pose, shape, trans, *self.smpl_mesh(pose, shape, trans, p.gender))

    def fit_is_valid(self, rec, verts, gt_rel):
        """Hook for the 3D sets' fit filter. verts: the fitted mesh in the camera frame, flipped with the
        sample; gt_rel: the GT joints of rec.joint_set, root-relative, flipped alike (None for 2D sets);
        neither is rotated by the crop."""
        return True
