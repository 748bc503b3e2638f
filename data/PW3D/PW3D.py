"""3DPW in the 3DCrowdNet format (COCO-style `3DPW_latest_<split>.json`, images under imageFiles/<sequence>/)."""
import logging
from pathlib import Path

import numpy as np
import torch

from common.body.joint_sets import COCO17, COCO19, SMPL30, add_midpoints, map_joints, openpose_to_smpl30
from common.errors import UserError
from common.metrics import evaluate_3dpw
from common.pipeline import preprocessing as pre
from common.registry import closest
from data.dataset import BaseDataset, Record, add_neighbours
from data.registry import DATASETS
from data.scenes import (Person, Scene, box_of, camera_of, coco_images, load_json, problem, report_problems,
                         smpl_of)

LAYOUT = ('data/PW3D/data/3DPW_latest_{train,validation,test}.json and data/PW3D/data/imageFiles/<sequence>/'
          '*.jpg (3DCrowdNet release); without the real 3DPW, make the synthetic set: '
          'python tool/make_data/make_synthetic.py')
SPLITS = ('train', 'validation', 'test')


def annotation_file(root, split):
    root = Path(root)
    for cand in (root / 'data' / f'3DPW_latest_{split}.json', root / f'3DPW_latest_{split}.json'):
        if cand.is_file():
            return cand
    return root / 'data' / f'3DPW_latest_{split}.json'


def image_dir(root):
    """imageFiles/ inside data/ (3DCrowdNet) or beside it (the synthetic set)."""
    root = Path(root)
    inner = root / 'data' / 'imageFiles'
    return inner if inner.is_dir() else root / 'imageFiles'


def read_annotations(root, split, layout=LAYOUT, keep=None):
    """[(image entry, [(annotation, Person)], Scene)] of one split, and the problems: the one parse of the file, from
    which both the tools' scenes and the training/test records are made. An image with a malformed camera or
    annotation is skipped whole (a scene missing a person would render wrong overlap edges) and named in
    problems. keep(sequence, frame index) selects images (named subsets)."""
    path = annotation_file(root, split)
    entries, problems = [], []
    for img, anns in coco_images(load_json(path, layout), path, layout, problems):
        key = f'{split} image {img["id"]} ({img.get("sequence")}/{img.get("file_name")})'
        try:
            if keep is not None and not keep(img['sequence'], frame_index(img['file_name'])):
                continue
            focal, princpt = camera_of(img.get('cam_param', {}), key)
            pairs = []
            for ann in anns:
                sp = ann['smpl_param']
                pose, shape, trans = smpl_of(sp, f'{key} annotation {ann["id"]}')
                bbox = box_of(ann['bbox'], f'{key} annotation {ann["id"]}')
                pairs.append((ann, Person(pose, shape, trans, focal, princpt, bbox,
                                          gender=sp.get('gender', 'neutral'))))
            scene = scene_of(img, [p for _, p in pairs], key)   # a bad size or name fails here, not in training
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            problems.append(problem(key, e))
            continue
        entries.append((img, pairs, scene))
    return entries, problems


def scene_of(img, people, key):
    return Scene(f'{img["sequence"]}/{img["file_name"]}', int(img['width']), int(img['height']), people, key)


def read_scenes(root, split, layout=LAYOUT):
    entries, problems = read_annotations(root, split, layout)
    return [scene for _, _, scene in entries], problems


# ------------------------------------------------------------------------------------------------ loader
log = logging.getLogger('sefd')

# Named evaluation subsets: (splits read, filter on (sequence, frame index))
CROWD_SEQUENCES = ('courtyard_hug_00', 'courtyard_dancing_00')            # 3DPW-Crowd (3DCrowdNet)
OC_PREFIXES = ('courtyard_backpack', 'courtyard_basketball', 'courtyard_bodyScannerMotions', 'courtyard_box',
               'courtyard_golf', 'courtyard_jacket', 'courtyard_laceShoe', 'downtown_stairs', 'flat_guitar',
               'flat_packBags', 'outdoors_climbing', 'outdoors_crosscountry', 'outdoors_fencing',
               'outdoors_freestyle', 'outdoors_golf', 'outdoors_parcours', 'outdoors_slalom')  # 3DPW-OC (PARE, ROMP)
PC_RANGES = {'courtyard_basketball_00': (200, 280), 'courtyard_captureSelfies_00': (500, 600),
             'courtyard_dancing_00': (60, 370), 'courtyard_dancing_01': (60, 270),
             'courtyard_hug_00': (100, 500), 'downtown_bus_00': (1620, 1900)}       # 3DPW-PC (ROMP), frames [a, b)
# (both lists as ROMP's romp/lib/dataset/pw3d.py has them: PW3D_OCsubset by sequence prefix, PW3D_PCsubset by frame;
# VisDB's 3DPW-OCC, data/PW3D/PW3D.py with cfg.pw3d_occ, keeps the same prefixes within the test split)
SUBSETS = {
    '': (('test',), lambda seq, frame: True),
    'crowd': (('validation',), lambda seq, frame: seq in CROWD_SEQUENCES),
    'oc': (SPLITS, lambda seq, frame: seq.rsplit('_', 1)[0] in OC_PREFIXES),
    'occ': (('test',), lambda seq, frame: seq.rsplit('_', 1)[0] in OC_PREFIXES),   # 3DPW-OCC (VisDB): the test split's
    'pc': (SPLITS, lambda seq, frame: seq in PC_RANGES and PC_RANGES[seq][0] <= frame < PC_RANGES[seq][1]),
}


OCCLUSION_LEVELS = ('0-33%', '33-67%', '67-100%')


def occlusion_level(fraction):
    """The third of [0, 1] a hidden fraction falls in ('' when unknown)."""
    if not np.isfinite(fraction):
        return ''
    return OCCLUSION_LEVELS[min(int(fraction * 3), 2)]


def frame_index(file_name):
    digits = ''.join(c for c in Path(file_name).stem if c.isdigit())
    return int(digits) if digits else -1


def subset_filter(subset):
    if subset not in SUBSETS:
        raise UserError(f'test.subset {subset!r} is not one of {sorted(SUBSETS)}{closest(subset, SUBSETS)}')
    return SUBSETS[subset]


@DATASETS.register()
class PW3D(BaseDataset):
    """3DPW. split 'train' (a 3D training set from the GT SMPL, if wanted) or the evaluation splits
    ('test', 'validation'; cfg.test.subset '' | crowd | oc | pc picks a named subset).

    Test sample: inputs img [3,S,S], joints [30,3] (grid px + detector confidence), joints_mask [30,1];
    targets mesh_cam [V,3] (GT gendered mesh, camera frame, m); meta bb2img_trans, img2bb_trans [2,3],
    bbox [4], tight_bbox [4], ann_id. The crop box comes from the detected 2D pose (3DCrowdNet protocol),
    never from the GT box, unless the pose has no valid joint.
    """
    name = 'PW3D'
    is_3d = True
    layout = LAYOUT

    def annotation_splits(self):
        if self.split == 'train':
            return ('train',), lambda seq, frame: True
        return subset_filter(self.cfg.test.subset) if self.split == 'test' else ((self.split,), lambda s, f: True)

    def load_records(self):
        splits, keep = self.annotation_splits()
        self.hhrnet = {}
        if self.split != 'train' and self.cfg.test.subset == 'crowd':
            path = self.root / 'data' / '3DPW_validation_crowd_hhrnet_result.json'
            if path.is_file():
                self.hhrnet = load_json(path, self.layout)
            else:
                log.warning(f'{path} not found: 3DPW-Crowd falls back to the OpenPose inputs')
        records, images = [], image_dir(self.root)
        for split in splits:
            entries, problems = read_annotations(self.root, split, self.layout, keep)
            report_problems(f'{self.name} {split}', problems)
            scenes = [(img, [a for a, _ in pairs], scene.people, scene) for img, pairs, scene in entries]
            # every training person's joints in a few body-model calls (per call, not per person, is what costs)
            joints_all = iter(self.people_joints([p for _, _, people, _ in scenes for p in people]) if self.train
                              else ())
            for img, anns, people, scene in scenes:
                rel = scene.image
                if self.train:
                    joints = [next(joints_all) for _ in people]
                    recs = [self.make_train_record(a, p, j, img, scene, images / rel)
                            for a, p, j in zip(anns, people, joints)]
                    self.attach_detector(recs, anns, people, joints, img)
                    add_neighbours(recs)
                else:
                    recs = [self.make_test_record(a, p, img, scene, images / rel) for a, p in zip(anns, people)]
                records += [r for r in recs if r is not None]
        return records

    def make_train_record(self, ann, person, joints, img, scene, path):
        """A training record (None when its box is degenerate); joints: the person's SMPL-30 joints, camera frame."""
        W, H = img['width'], img['height']
        tight = np.asarray(ann['bbox'], np.float32)
        bbox = pre.process_bbox(tight, W, H, train=True)
        if bbox is None:
            return None
        proj = self.project(joints, person)
        inside = (proj[:, 0] >= 0) & (proj[:, 0] < W) & (proj[:, 1] >= 0) & (proj[:, 1] < H)
        return Record(path, (H, W), bbox, tight, SMPL30, np.concatenate([proj, inside[:, None]], 1).astype(np.float32),
                      joints.astype(np.float32), person, scene=scene, image_rel=scene.image, key=f'ann {ann["id"]}')

    @staticmethod
    def project(joints, person):
        return joints[:, :2] / joints[:, 2:] * np.asarray(person.focal) + np.asarray(person.princpt)

    def attach_detector(self, records, anns, people, joints, img):
        """Hook: give the training records of one image (None where skipped) the detector to replay, where the
        annotations record what it was given (the synthetic set). joints: each person's SMPL-30 camera joints."""

    def make_test_record(self, ann, person, img, scene, path):
        W, H = img['width'], img['height']
        tight = np.asarray(ann['bbox'], np.float32)
        pose = self.input_pose(ann)
        bbox = pre.pose_box(pose, W, H, train=False, published=self.published_crops)
        if bbox is None:
            bbox = pre.process_bbox(tight, W, H, train=False, published=self.published_crops)
        return Record(path, (H, W), bbox, tight, SMPL30, pose, None, person, scene=scene, image_rel=scene.image,
                      key=f'ann {ann["id"]}', ann_id=ann['id'], occlusion=float(ann.get('occlusion', np.nan)))

    def input_pose(self, ann):
        """Detected 2D pose in SMPL-30 (x, y, conf): HigherHRNet for 3DPW-Crowd when available, else OpenPose."""
        hh = self.hhrnet.get(str(ann['id']))
        if hh is not None:
            coco19 = add_midpoints(np.asarray(hh['coco_joints'], np.float32).reshape(17, 3), COCO17, ('Pelvis', 'Neck'))
            return map_joints(coco19, COCO19, SMPL30)
        return openpose_to_smpl30(ann['openpose_result'])

    def get_sample(self, rec, rng):
        if self.train:
            return super().get_sample(rec, rng)
        inputs, meta = self.test_inputs(rec, rec.joints_2d, pre.INPUT_CONF_THR)
        p = rec.person
        mesh, _ = self.smpl_mesh(p.pose, p.shape, p.trans, p.gender)
        meta['num_people'] = torch.as_tensor(np.int64(len(rec.scene.people) if rec.scene else 1))
        meta['occlusion'] = torch.as_tensor(np.float32(rec.occlusion))
        return inputs, {'mesh_cam': torch.from_numpy(mesh.astype(np.float32))}, meta

    def evaluate(self, out, targets):
        """Per-sample MPJPE, PA-MPJPE (H36M regressor, Eval-14, root = H36M pelvis) and MPVPE (root = SMPL
        pelvis), in mm."""
        body = self.body()
        return evaluate_3dpw(out['mesh_cam'], targets['mesh_cam'], body.h36m_regressor,
                             body.joint_regressor[SMPL30.root_idx])

    def groups(self, meta):
        """Per-sample labels: people in the image, and (when recorded) the occlusion level, by thirds of the
        fraction of the person that other people hide."""
        out = {'people': [str(int(n)) for n in meta['num_people']]}
        occ = meta['occlusion'].numpy()
        if np.isfinite(occ).any():
            out['occlusion'] = [occlusion_level(o) for o in occ]
        return out
