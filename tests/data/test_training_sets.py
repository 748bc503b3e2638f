"""The training-set loaders (Human36M, MuCo, MSCOCO, MPII, CrowdPose) on fixtures written in the published
formats (tests/fixtures.py): sample shapes, targets against the fixtures' known SMPL parameters, the
per-dataset rules (frame subsampling, closest person, filters, fit-error thresholds), flips and rotations,
and errors on missing or broken files."""
import json
import logging

import cv2
import numpy as np
import pytest
import torch

from common.body.joint_sets import COCO17, CROWDPOSE14, H36M17, MUCO21, SMPL30
from common.errors import UserError
from common.pipeline import preprocessing as pre
from data.Human36M import Human36M as h36m_module
from data.dataset import UNFIT_JOINTS, get_dataset_class
from main.config import load_config
from tests import fixtures

S = 64           # model.input_size
G = S // 4       # heatmap grid
NAMES = ('Human36M', 'MuCo', 'MSCOCO', 'MPII', 'CrowdPose')
WRITERS = {
    'Human36M': lambda r, **k: fixtures.write_h36m(r, **k),
    'MuCo': lambda r, **k: fixtures.write_muco(r, **k),
    'MSCOCO': lambda r, **k: fixtures.write_mscoco(r, **k),
    'MPII': lambda r, **k: fixtures.write_mpii(r, **k),
    'CrowdPose': lambda r, **k: fixtures.write_crowdpose(r, **k),
}
# SMPL-30 joints whose target is an added midpoint (not a joint of the fixture's body by that name)
MIDPOINTS = {'MSCOCO': ('Pelvis', 'Neck'), 'CrowdPose': ('Pelvis',)}
SHAPES = {
    'img': (3, S, S), 'joints': (30, 2), 'joints_mask': (30, 1),
    'orig_joint_img': (30, 3), 'fit_joint_img': (30, 3), 'orig_joint_cam': (30, 3), 'fit_joint_cam': (30, 3),
    'pose_param': (72,), 'shape_param': (10,),
    'orig_joint_valid': (30, 1), 'orig_joint_trunc': (30, 1), 'fit_param_valid': (72,), 'fit_joint_trunc': (30, 1),
    'is_valid_fit': (1,), 'is_3D': (1,),
}
IDX = SMPL30.index


def make(name, root, *overrides, split='train'):
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}', f'model.input_size={S}',
                                                   f'model.procedural_vertices={fixtures.VERTICES}', *overrides])
    return get_dataset_class(name)(cfg, split)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """data.root with all five datasets (rendered images)."""
    r = tmp_path_factory.mktemp('data')
    for name, write in WRITERS.items():
        write(r / name)
    return r


@pytest.fixture(scope='module')
def datasets(root):
    return {name: make(name, root) for name in NAMES}


def sample(ds, i, aug=None):
    """Sample of record i under a fixed augmentation (the identity by default)."""
    aug = aug or pre.AugConfig()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pre, 'get_aug_config', lambda rng, train=True: aug)
        inputs, targets, meta = ds.get_sample(ds.records[i], np.random.default_rng(i))
    return {k: v.numpy() for d in (inputs, targets, meta) for k, v in d.items()}


def fixture_fit(ds, rec):
    """The fixture's SMPL parameters (pose, shape) of a record, read back from the dataset's fit file."""
    name = ds.name
    if name == 'Human36M':
        f = json.loads(next((ds.root / 'annotations').glob('*_smpl_param.json')).read_text())
        frame = int(rec.image_rel.split('_')[-1].split('.')[0]) - 1
        p = f['2']['1'][str(frame)]
    else:
        aid = rec.key.rsplit(' ', 1)[1]
        path = {'MuCo': 'data/smpl_param.json', 'MSCOCO': 'annotations/MSCOCO_train_SMPL_NeuralAnnot.json',
                'MPII': 'data/annotations/MPII_train_SMPL_NeuralAnnot.json',
                'CrowdPose': 'annotations/CrowdPose_train_SMPL_NeuralAnnot.json'}[name]
        p = json.loads((ds.root / path).read_text())[aid]
        p = p.get('smpl_param', p)
    return np.asarray(p['pose']), np.asarray(p['shape'])


def bad_count(ds):
    """Samples found bad so far (BaseDataset keeps the set of bad record indices)."""
    return len(ds.bad) if hasattr(ds, 'bad') else ds.bad_samples


def native_joints(name, rec):
    """SMPL-30 indices that have a GT joint of the same name in the dataset (no added midpoints)."""
    keep = [n for n in rec.joint_set.joints if n in SMPL30.joints and n not in MIDPOINTS.get(name, ())]
    return np.array([IDX(n) for n in keep])


# -------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize('name', NAMES)
def test_samples_have_the_documented_shapes(name, datasets):
    ds = datasets[name]
    assert len(ds) > 0
    torch.manual_seed(0)
    unfit = [IDX(n) for n in UNFIT_JOINTS]
    for i in range(len(ds)):
        inputs, targets, meta = ds[i]
        out = {**inputs, **targets, **meta}
        assert set(out) == set(SHAPES), name
        for k, v in out.items():
            assert tuple(v.shape) == SHAPES[k], (name, k, tuple(v.shape))
            assert v.dtype == torch.float32 and torch.isfinite(v).all(), (name, k)
        assert 0 <= out['img'].min() and out['img'].max() <= 1
        assert float(out['is_3D']) == float(ds.is_3d)
        for k in ('joints_mask', 'orig_joint_valid', 'orig_joint_trunc', 'fit_joint_trunc'):
            assert set(out[k].unique().tolist()) <= {0.0, 1.0}, k
        assert (out['orig_joint_trunc'] <= out['orig_joint_valid']).all()
        assert (out['fit_param_valid'].reshape(24, 3)[unfit] == 0).all()
        assert out['fit_param_valid'].sum() == 3 * (24 - len(unfit))
        if not ds.is_3d:
            assert (out['orig_joint_cam'] == 0).all() and (out['orig_joint_img'][:, 2] == 0).all()
    assert bad_count(ds) == 0


# ------------------------------------------------------------------------------ targets vs. fixtures
@pytest.mark.parametrize('name', NAMES)
def test_unaugmented_targets_agree_with_the_fixture(name, datasets):
    """No augmentation: the SMPL parameters are the fixture's (the root turned into the camera for the
    world-frame H36M fits), the fitted joints project onto the GT 2D joints, and for the 3D sets the
    fitted root-relative joints are the GT ones (the fixtures' GT joints come from the same bodies)."""
    ds = datasets[name]
    checked = 0
    for i, rec in enumerate(ds.records):
        if rec.person is None:
            continue
        s = sample(ds, i)
        assert s['is_valid_fit'][0] == 1
        pose, shape = fixture_fit(ds, rec)
        np.testing.assert_allclose(s['shape_param'], shape, atol=1e-6)
        np.testing.assert_allclose(s['pose_param'][3:], pose[3:], atol=1e-6)
        root = cv2.Rodrigues(pose[:3])[0]
        if name == 'Human36M':
            root = rec.person.cam_R @ root
        np.testing.assert_allclose(cv2.Rodrigues(s['pose_param'][:3].astype(np.float64))[0], root, atol=1e-5)

        j = native_joints(name, rec)
        valid = s['orig_joint_valid'][j, 0] > 0
        assert valid.sum() >= 10
        np.testing.assert_allclose(s['fit_joint_img'][j][valid, :2], s['orig_joint_img'][j][valid, :2], atol=1e-2)
        assert (s['fit_joint_cam'][SMPL30.root_idx] == 0).all()
        if ds.is_3d:
            np.testing.assert_allclose(s['fit_joint_cam'][j][valid], s['orig_joint_cam'][j][valid], atol=2e-3)
            np.testing.assert_allclose(s['fit_joint_img'][j][valid, 2], s['orig_joint_img'][j][valid, 2], atol=0.05)
            assert (s['orig_joint_cam'][SMPL30.root_idx] == 0).all()
        checked += 1
    assert checked >= 2


def test_added_midpoints_are_the_mean_of_their_parents(datasets):
    for name, joints in MIDPOINTS.items():
        ds = datasets[name]
        s = sample(ds, 0)
        parents = {'Pelvis': ('L_Hip', 'R_Hip'), 'Neck': ('L_Shoulder', 'R_Shoulder')}
        for n in joints:
            a, b = (IDX(p) for p in parents[n])
            assert s['orig_joint_valid'][IDX(n), 0] == 1
            np.testing.assert_allclose(s['orig_joint_img'][IDX(n), :2],
                                       (s['orig_joint_img'][a, :2] + s['orig_joint_img'][b, :2]) / 2, atol=1e-4)


# --------------------------------------------------------------------------------------------- H36M
def _frame_cam(rec):
    stem = rec.image_rel.rsplit('/', 1)[1][:-4]              # s_01_act_02_subact_01_ca_04_000006
    parts = stem.split('_')
    return int(parts[1]), int(parts[-1]) - 1, int(parts[-2])  # subject, frame_idx, cam_idx


def test_h36m_frame_subsampling(tmp_path, caplog):
    r = tmp_path / 'Human36M'
    fixtures.write_h36m(r, subject=1, frames=(0, 1, 5, 10, 64, 65), cams=(1, 4), images=False)
    fixtures.write_h36m(r, subject=9, frames=(0, 5, 64, 128), cams=(1, 4), images=False)
    fixtures.write_h36m(r, subject=11, frames=(3, 64), cams=(2, 4), images=False)
    with caplog.at_level(logging.WARNING, logger='sefd'):
        train = make('Human36M', tmp_path)
    assert 'subject(s) [5, 6, 7, 8]' in caplog.text  # missing subjects are named, the present one is used
    assert sorted(_frame_cam(rec) for rec in train.records) == \
        sorted((1, f, c) for f in (0, 5, 10, 65) for c in (1, 4))
    test = make('Human36M', tmp_path, split='test')
    assert sorted(_frame_cam(rec) for rec in test.records) == [(9, 0, 4), (9, 64, 4), (9, 128, 4), (11, 64, 4)]
    assert all(len(rec.near_joints) == 0 for rec in train.records)  # one person per image: no neighbours
    with pytest.raises(UserError, match='no split'):
        make('Human36M', tmp_path, split='validation')


def test_h36m_bad_frames_skipped_and_counted_alike_by_the_tools_and_training(tmp_path, caplog):
    """One parse (Human36M.read_annotations) feeds both paths: a malformed fit is skipped and named by both; a
    frame without a fit trains (its joints supervise) but has no scene to render."""
    r = tmp_path / 'Human36M'
    fixtures.write_h36m(r, frames=(0, 5, 10), images=False)
    path = r / 'annotations' / 'Human36M_subject1_smpl_param.json'
    fits = json.loads(path.read_text())
    del fits['2']['1']['5']                       # frame 5: no fit
    fits['2']['1']['10']['pose'][4] = float('nan')  # frame 10: a malformed fit
    path.write_text(json.dumps(fits))
    scenes, problems = h36m_module.read_scenes(r, 'train')
    assert [s.image.split('_')[-1] for s in scenes] == ['000001.jpg'] and len(problems) == 1
    with caplog.at_level(logging.WARNING, logger='sefd'):
        ds = make('Human36M', tmp_path)
    assert sorted(_frame_cam(rec)[1] for rec in ds.records) == [0, 5]
    assert 'skipped 1 bad annotation(s)' in caplog.text


def test_h36m_missing_fit_and_fit_error_filter(tmp_path, monkeypatch):
    r = tmp_path / 'Human36M'
    fixtures.write_h36m(r, frames=(0, 5, 10))
    ann = r / 'annotations'
    fits = json.loads((ann / 'Human36M_subject1_smpl_param.json').read_text())
    del fits['2']['1']['5']
    (ann / 'Human36M_subject1_smpl_param.json').write_text(json.dumps(fits))
    j3d = json.loads((ann / 'Human36M_subject1_joint_3d.json').read_text())
    gt = np.asarray(j3d['2']['1']['10'])
    gt[H36M17.index('L_Wrist')] += [200.0, 0, 0]   # a 20 cm annotation error on one wrist: > 25 mm on average
    j3d['2']['1']['10'] = gt.tolist()
    (ann / 'Human36M_subject1_joint_3d.json').write_text(json.dumps(j3d))

    errors = []
    fit_error = h36m_module.fit_error
    monkeypatch.setattr(h36m_module, 'fit_error', lambda *a, **k: errors.append(fit_error(*a, **k)) or errors[-1])
    ds = make('Human36M', tmp_path)
    by_frame = {_frame_cam(rec)[1]: i for i, rec in enumerate(ds.records)}
    assert sorted(by_frame) == [0, 5, 10]
    assert ds.records[by_frame[5]].person is None
    valid = {f: sample(ds, i)['is_valid_fit'][0] for f, i in by_frame.items()}
    assert valid == {0: 1.0, 5: 0.0, 10: 0.0}

    # the kept fit's error, computed here in the world frame: H36M-regressed joints of the fitted mesh vs
    # the GT, means aligned; the loader measures it in each sample's frame (camera, flipped)
    body = fixtures.body()
    p = ds.records[by_frame[0]].person
    with torch.no_grad():
        v, _ = body(*(torch.tensor(a, dtype=torch.float32)[None] for a in (p.pose, p.shape, p.trans)))
        reg = body.regress_h36m(v)[0].numpy().astype(np.float64)
    world = np.asarray(j3d['2']['1']['0']) / 1000
    expected = np.linalg.norm((reg - reg.mean(0)) - (world - world.mean(0)), axis=1).mean()
    assert 0.005 < expected < 0.025
    for aug in (pre.AugConfig(), pre.AugConfig(rot=25.0), pre.AugConfig(scale=1.2, rot=-40.0, do_flip=True)):
        errors.clear()
        assert sample(ds, by_frame[0], aug)['is_valid_fit'][0] == 1
        assert errors == [pytest.approx(expected, abs=2e-4)], aug
        errors.clear()
        s = sample(ds, by_frame[10], aug)
        assert s['is_valid_fit'][0] == 0 and errors[0] > 0.025 and s['orig_joint_valid'].sum() > 0


# --------------------------------------------------------------------------------------------- MuCo
def both_paths(module, name, data_root, caplog):
    """(image ids of the tools' scenes, their problem count, image ids of the training records, whether training
    warned of as many skipped annotations) of dataset `name` under data_root."""
    scenes, problems = module.read_scenes(data_root / name)
    with caplog.at_level(logging.WARNING, logger='sefd'):
        ds = make(name, data_root)
    return (sorted(s.key.split()[1] for s in scenes), len(problems), sorted({r.key.split()[1] for r in ds.records}),
            f'skipped {len(problems)} bad annotation(s)' in caplog.text)


def test_muco_bad_entries_skipped_and_counted_alike_by_the_tools_and_training(tmp_path, caplog):
    """One parse (MuCo.read_annotations) feeds both paths: an image with a malformed fit or camera is skipped and
    named by both."""
    from data.MuCo import MuCo as muco_module
    r = tmp_path / 'MuCo'
    db, fits = fixtures.write_muco(r, num_images=4, images=False)
    fits[str(db['annotations'][0]['id'])]['shape'] = 'ten numbers'         # image 0: a malformed fit
    del db['images'][1]['f']                                               # image 1: no camera
    (r / 'data' / 'smpl_param.json').write_text(json.dumps(fits))
    (r / 'data' / 'MuCo-3DHP.json').write_text(json.dumps(db))
    assert both_paths(muco_module, 'MuCo', tmp_path, caplog) == (['2', '3'], 2, ['2', '3'], True)


def test_muco_takes_the_closest_person_of_each_image_once(tmp_path):
    r = tmp_path / 'MuCo'
    fixtures.write_muco(r, num_images=3, images=False)
    path = r / 'data' / 'MuCo-3DHP.json'
    db = json.loads(path.read_text())
    db['annotations'] = db['annotations'][::-1]          # the closest person is no longer listed first
    path.write_text(json.dumps(db))
    ds = make('MuCo', tmp_path)
    assert len(ds) == len(db['images']) == 3            # one sample per image, each added once
    pelvis = MUCO21.index('Pelvis')
    for rec in ds.records:
        img_id = int(rec.key.split()[1])
        anns = [a for a in db['annotations'] if a['image_id'] == img_id]
        best = min(anns, key=lambda a: a['keypoints_cam'][pelvis][2])
        assert rec.key.endswith(f'annotation {best["id"]}')
        np.testing.assert_allclose(rec.joints_3d, np.asarray(best['keypoints_cam']) / 1000, atol=1e-6)
        # neighbours: the other persons whose boxes overlap (IoU >= 0.1), computed here by hand
        def iou(a, b):
            ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
            iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
            return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)
        near = [a for a in anns if a is not best and iou(best['bbox'], a['bbox']) >= 0.1]
        assert len(near) > 0 and len(rec.near_joints) == len(near)
        face = [COCO17.index(n) for n in ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear')]
        assert (rec.near_joints[:, face, 2] == 0).all()      # MuCo has no face joints: never swap anchors
        assert (rec.near_joints[:, [COCO17.index('L_Wrist')], 2] == 1).all()
        assert len(rec.scene.people) == len(anns)            # everyone with a fit, for the overlap edges


def test_muco_fit_error_filter(tmp_path):
    r = tmp_path / 'MuCo'
    fixtures.write_muco(r, num_images=2)
    path = r / 'data' / 'MuCo-3DHP.json'
    db = json.loads(path.read_text())
    pelvis = MUCO21.index('Pelvis')
    closest = min((a for a in db['annotations'] if a['image_id'] == 1), key=lambda a: a['keypoints_cam'][pelvis][2])
    kp = np.asarray(closest['keypoints_cam'])
    kp[MUCO21.index('R_Knee')] += [0, 0, 400.0]          # 40 cm off on one knee
    closest['keypoints_cam'] = kp.tolist()
    path.write_text(json.dumps(db))
    ds = make('MuCo', tmp_path)
    for aug in (pre.AugConfig(), pre.AugConfig(rot=20.0, do_flip=True)):
        flags = {int(rec.key.split()[1]): sample(ds, i, aug)['is_valid_fit'][0] for i, rec in enumerate(ds.records)}
        assert flags == {0: 1.0, 1: 0.0}


# ------------------------------------------------------------------------------------------- MSCOCO
def test_coco_neuralannot_bad_entries_skipped_and_counted_alike_by_the_tools_and_training(tmp_path, caplog):
    """One parse (data/formats/coco_neuralannot.py) feeds both paths of MSCOCO, MPII and CrowdPose: an image with a
    malformed fit is skipped whole and named by both; one whose image id is unknown too."""
    from data.MSCOCO import MSCOCO as coco_module
    r = tmp_path / 'MSCOCO'
    db, fits = fixtures.write_mscoco(r, num_images=3, people=2, images=False)
    fits[str(db['annotations'][0]['id'])]['smpl_param']['pose'] = [0.0] * 5      # image 0: a malformed fit
    db['annotations'].append({**db['annotations'][-1], 'id': 99, 'image_id': 42})  # an image id not listed
    (r / 'annotations' / 'MSCOCO_train_SMPL_NeuralAnnot.json').write_text(json.dumps(fits))
    (r / 'annotations' / 'person_keypoints_train2017.json').write_text(json.dumps(db))
    assert both_paths(coco_module, 'MSCOCO', tmp_path, caplog) == (['1', '2'], 2, ['1', '2'], True)


def test_mscoco_skips_crowds_and_empty_persons_and_keeps_unlabelled_joints_invalid(tmp_path):
    r = tmp_path / 'MSCOCO'
    fixtures.write_mscoco(r, num_images=2, people=3)
    path = r / 'annotations' / 'person_keypoints_train2017.json'
    db = json.loads(path.read_text())
    a0, a1, a3, a4 = (db['annotations'][i] for i in (0, 1, 3, 4))
    a0['iscrowd'] = 1
    a3['num_keypoints'] = 0
    a3['keypoints'] = [0] * 51
    kp = np.asarray(a1['keypoints'], np.float64).reshape(17, 3)
    kp[[COCO17.index('L_Wrist'), COCO17.index('L_Hip')], 2] = 0  # unlabelled joints (with leftover x, y)
    a1['keypoints'] = kp.reshape(-1).tolist()
    a1['num_keypoints'] = 15
    path.write_text(json.dumps(db))
    ds = make('MSCOCO', tmp_path)
    keys = [rec.key.rsplit(' ', 1)[1] for rec in ds.records]
    assert sorted(keys) == ['1', '2', '4', '5']
    rec_i = keys.index('1')
    s = sample(ds, rec_i)
    v = s['orig_joint_valid'][:, 0]
    assert v[IDX('L_Wrist')] == 0 and v[IDX('L_Hip')] == 0 and v[IDX('R_Hip')] == 1
    assert v[IDX('Pelvis')] == 0                     # mid-hips: valid only when both hips are
    assert v[IDX('Neck')] == 1 and s['orig_joint_trunc'][IDX('L_Wrist'), 0] == 0
    # as a neighbour, person 1's unlabelled joints have confidence 0 (never swap anchors)
    rec2 = ds.records[keys.index('2')]
    assert len(rec2.near_joints) == 1
    assert rec2.near_joints[0, COCO17.index('L_Wrist'), 2] == 0 and rec2.near_joints[0, COCO17.index('R_Wrist'), 2] == 1
    # the crowd annotation (iscrowd) is not a sample but its body is still in the scene for overlap edges
    assert len(ds.records[rec_i].scene.people) == 3


# --------------------------------------------------------------------------------------------- MPII
def _rot2(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def test_mpii_fit_targets_are_root_relative_and_rotate_with_the_crop(datasets):
    """MPII's fit_joint_cam is root-relative and turns with the crop, the SMPL root pose too (the reference's did
    neither)."""
    ds = datasets['MPII']
    rot = 30.0
    for i in range(2):
        a, b = sample(ds, i), sample(ds, i, pre.AugConfig(rot=rot))
        root = SMPL30.root_idx
        assert np.abs(a['fit_joint_cam'][root]).max() == 0 and np.abs(b['fit_joint_cam'][root]).max() == 0
        assert np.abs(a['fit_joint_cam']).max() > 0.3          # a real body, not zeros
        # the crop turns image content by R(-rot) about the crop centre (y down)...
        R2 = _rot2(-rot)
        for k in ('orig_joint_img', 'fit_joint_img'):
            valid = a['orig_joint_valid'][:, 0] > 0 if k == 'orig_joint_img' else np.ones(30, bool)
            np.testing.assert_allclose(b[k][valid, :2] - G / 2, (a[k][valid, :2] - G / 2) @ R2.T, atol=1e-3)
        # ... and the 3D targets turn by the same matrix in the camera's x, y (x right, y down), depth kept
        np.testing.assert_allclose(b['fit_joint_cam'][:, :2], a['fit_joint_cam'][:, :2] @ R2.T, atol=1e-5)
        np.testing.assert_allclose(b['fit_joint_cam'][:, 2], a['fit_joint_cam'][:, 2], atol=1e-5)
        Rz = np.eye(3)
        Rz[:2, :2] = R2
        ra, rb = (cv2.Rodrigues(x['pose_param'][:3].astype(np.float64))[0] for x in (a, b))
        np.testing.assert_allclose(rb, Rz @ ra, atol=1e-5)
        np.testing.assert_allclose(b['pose_param'][3:], a['pose_param'][3:])
        assert a['orig_joint_valid'][IDX('Pelvis'), 0] == 1  # MPII has its own pelvis


# ---------------------------------------------------------------------------------------- CrowdPose
def test_crowdpose_keeps_only_good_fits_and_reads_swapped_sizes(datasets):
    ds = datasets['CrowdPose']
    fits = json.loads((ds.root / 'annotations' / 'CrowdPose_train_SMPL_NeuralAnnot.json').read_text())
    assert len(ds) == 6
    for i, rec in enumerate(ds.records):
        good = fits[rec.key.rsplit(' ', 1)[1]]['fit_err'] < 5
        assert (rec.person is not None) == good
        assert sample(ds, i)['is_valid_fit'][0] == float(good)
        assert rec.img_shape == (fixtures.H, fixtures.W)     # the file says width=240, height=320
        assert len(rec.scene.people) == 2                     # bad fits are not rendered either
        assert rec.joint_set.joints[-1] == 'Pelvis'


def _assert_mirrored(a, b, keys, tol):
    """b is a's flip: every left joint of b is a's right joint mirrored about the crop centre. The crop is
    recentred on the mirrored box centre, so x -> S - x in crop px, i.e. G - x on the grid."""
    perm = SMPL30.flip_permutation()
    assert (perm != np.arange(30)).sum() == 22
    np.testing.assert_array_equal(b['orig_joint_valid'], a['orig_joint_valid'][perm])
    for k in keys:
        valid = (a['orig_joint_valid'][perm, 0] > 0) if k.startswith('orig') else np.ones(30, bool)
        np.testing.assert_allclose(b[k][valid, 0], G - a[k][perm][valid, 0], atol=tol, err_msg=k)
        np.testing.assert_allclose(b[k][valid, 1:], a[k][perm][valid, 1:], atol=tol, err_msg=k)


def test_crowdpose_flip_swaps_the_right_joints(datasets):
    ds = datasets['CrowdPose']
    a, b = sample(ds, 0), sample(ds, 0, pre.AugConfig(do_flip=True))
    _assert_mirrored(a, b, ('orig_joint_img',), 1e-4)
    # every CrowdPose left/right pair lands on its mirror partner (the reference scrambled elbows/wrists/hips)
    for n in CROWDPOSE14.joints:
        if n.startswith('L_'):
            lf, ru = IDX(n), IDX('R_' + n[2:])
            assert abs(b['orig_joint_img'][lf, 0] - (G - a['orig_joint_img'][ru, 0])) < 1e-4, n
    # the fitted body is mirrored too (exact at the root; per-person cameras leave sub-pixel offsets elsewhere)
    _assert_mirrored(a, b, ('fit_joint_img',), 0.05)


# ------------------------------------------------------------------------------------- flips, 3D set
def test_flipped_3d_sample_is_the_mirror_of_the_unflipped_one(datasets):
    ds = datasets['MuCo']
    perm = SMPL30.flip_permutation()
    for i in range(len(ds)):
        a, b = sample(ds, i), sample(ds, i, pre.AugConfig(do_flip=True))
        _assert_mirrored(a, b, ('orig_joint_img', 'fit_joint_img'), 0.05)
        lw, rw = IDX('L_Wrist'), IDX('R_Wrist')
        assert abs(b['orig_joint_img'][lw, 0] - (G - a['orig_joint_img'][rw, 0])) < 1e-4
        # 3D: mirrored about the root's vertical plane (x -> -x) with left/right swapped
        for k in ('orig_joint_cam', 'fit_joint_cam'):
            np.testing.assert_allclose(b[k], a[k][perm] * [-1, 1, 1], atol=1e-4, err_msg=k)
        np.testing.assert_allclose(b['orig_joint_img'][:, 2], a['orig_joint_img'][perm, 2], atol=1e-4)
        assert b['is_valid_fit'][0] == a['is_valid_fit'][0] == 1
        # flipping the flipped pose gives the original pose back
        np.testing.assert_allclose(pre.flip_smpl_pose(b['pose_param'].astype(np.float64)), a['pose_param'], atol=1e-5)



# ------------------------------------------------------------------------------------ batched fits
@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('do_flip', [False, True])
def test_batched_fits_give_the_per_sample_targets(name, do_flip, datasets, monkeypatch):
    """A loader batch's fitted meshes come from one body-model call per gender and mirror (BaseDataset.batch_fits):
    the samples are those of the per-sample path (to float32 rounding), and no sample calls the body model alone."""
    ds = datasets[name]
    aug = pre.AugConfig(rot=20.0, do_flip=do_flip)
    idx = range(len(ds))
    single = [sample(ds, i, aug) for i in idx]
    monkeypatch.setattr(ds, 'fitted_mesh', lambda *a: pytest.fail('a sample of the batch called the body model'))
    monkeypatch.setattr(ds, 'cached', lambda key, make: make())  # nothing from an earlier sample
    with ds.batch_fits(list(idx)):
        batched = [sample(ds, i, aug) for i in idx]
    assert any(b['is_valid_fit'][0] for b in batched)
    for a, b in zip(single, batched):
        assert a.keys() == b.keys()
        for k in a:   # grid px and metres; float32 rounding of a batched matrix product is ~1e-6 of the values
            np.testing.assert_allclose(b[k], a[k], atol=1e-3 if k.endswith('_img') else 1e-5, err_msg=k)


def test_decoded_images_are_kept_least_recently_used_and_read_only():
    from data.image_cache import DecodedImages
    cache, loads = DecodedImages(max_mb=3 / 2 ** 20 * 2 ** 10), []   # room for 3 KiB
    load = lambda key: lambda: loads.append(key) or np.zeros(1024, np.uint8)  # noqa: E731
    for key in ['a', 'b', 'a', 'c', 'd', 'a', 'b']:   # 1 KiB each: 'b' is the oldest when 'd' comes
        img = cache.get(key, load(key))
    assert loads == ['a', 'b', 'c', 'd', 'b']
    assert cache.bytes == 3 * 1024 and list(cache.items) == ['d', 'a', 'b']
    with pytest.raises(ValueError):
        img[0] = 1
    big = cache.get('big', lambda: np.zeros(4096, np.uint8))   # larger than the cache: returned, not kept
    assert 'big' not in cache.items and not big.flags.writeable


# ------------------------------------------------------------------------------------ broken inputs
@pytest.mark.parametrize('name,expected', [
    ('Human36M', 'Human36M_subject1_data.json'),
    ('MuCo', 'MuCo-3DHP.json'),
    ('MSCOCO', 'person_keypoints_train2017.json'),
    ('MPII', 'train.json'),
    ('CrowdPose', 'crowdpose_train.json'),
])
def test_missing_annotation_file_names_the_path_and_layout(name, expected, tmp_path):
    with pytest.raises(UserError) as e:
        make(name, tmp_path)
    msg = str(e.value)
    assert str(tmp_path / name) in msg and expected in msg and 'expected layout' in msg


@pytest.mark.parametrize('name,fits', [('MuCo', 'data/smpl_param.json'),
                                       ('MSCOCO', 'annotations/MSCOCO_train_SMPL_NeuralAnnot.json'),
                                       ('CrowdPose', 'annotations/CrowdPose_train_SMPL_NeuralAnnot.json')])
def test_missing_or_corrupt_fit_file(name, fits, tmp_path):
    WRITERS[name](tmp_path / name, images=False)
    (tmp_path / name / fits).unlink()
    with pytest.raises(UserError, match='missing annotation file.*expected layout'):
        make(name, tmp_path)
    (tmp_path / name / fits).write_text('{"1": ')
    with pytest.raises(UserError, match='not valid JSON'):
        make(name, tmp_path)


def test_missing_or_corrupt_images_are_skipped_and_counted_or_fatal(tmp_path):
    r = tmp_path / 'MSCOCO'
    fixtures.write_mscoco(r, num_images=3, people=3)
    images = sorted((r / 'images' / 'train2017').glob('*.jpg'))
    images[0].write_bytes(b'\xff\xd8 not a jpeg')
    images[1].unlink()
    ds = make('MSCOCO', tmp_path)
    assert len(ds) == 9
    inputs, targets, meta = ds[0]                  # records 0-5 are the two bad images: the next good one
    assert bad_count(ds) == 6 and inputs['img'].shape == (3, S, S)
    assert torch.isfinite(targets['fit_joint_cam']).all()
    strict = make('MSCOCO', tmp_path, 'data.on_bad_sample=error')
    with pytest.raises(UserError, match='000000000000.jpg.*not a decodable image'):
        strict[0]
    with pytest.raises(UserError, match='000000000001.jpg.*no such file'):
        strict[3]


def test_h36m_protocol2_evaluation(tmp_path):
    """Test split: subjects 9 and 11, every 64th frame, camera 4; the GT 2D pose as input; MPJPE and PA-MPJPE of the
    H36M-regressed mesh joints against the GT joints, root-relative, Eval-14 (recomputed here in numpy)."""
    from common.body.joint_sets import H36M_EVAL14
    fixtures.write_h36m(tmp_path / 'Human36M', subject=9, frames=(0, 32, 64), cams=(1, 4))
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={tmp_path}', 'data.test_set=Human36M'])
    ds = get_dataset_class('Human36M')(cfg, 'test')
    assert len(ds) == 2  # frames 0 and 64 of camera 4
    inputs, targets, meta = ds[1]
    rec = ds.records[1]
    assert targets['joints_h36m'].shape == (17, 3) and int(meta['ann_id']) == rec.ann_id
    # the input pose is the GT 2D pose (in the crop's grid)
    G = cfg.model.input_size // 4
    hip = pre.crop_to_grid(pre.transform_joints_2d(rec.joints_2d[H36M17.index('L_Hip'), None, :2],
                                                   meta['img2bb_trans'].numpy()), (4 * G, 4 * G), (G, G))
    np.testing.assert_allclose(inputs['joints'][SMPL30.index('L_Hip'), :2].numpy(), hip[0], atol=1e-4)
    verts = ds.smpl_mesh(*ds.camera_frame_smpl(rec.person), 'neutral')[0]
    shifted = torch.tensor(verts + [0.3, -0.2, 1.0], dtype=torch.float32)[None]   # translation does not matter
    got = ds.evaluate({'mesh_cam': shifted}, {'joints_h36m': targets['joints_h36m'][None]})
    pred = ds.body().h36m_regressor.numpy().astype(np.float64) @ verts
    gt = targets['joints_h36m'].numpy().astype(np.float64)
    pred, gt = (pred - pred[H36M17.root_idx])[list(H36M_EVAL14)], (gt - gt[H36M17.root_idx])[list(H36M_EVAL14)]
    expected = np.linalg.norm(pred - gt, axis=1).mean() * 1000
    assert got['mpjpe'][0] == pytest.approx(expected, rel=1e-4)
    assert 0 <= got['pa_mpjpe'][0] <= got['mpjpe'][0]


# ------------------------------------------------------------------- targets agree under augmentation
@pytest.fixture(scope='module')
def synthetic_photos(renderer, tmp_path_factory):
    """A synthetic training set with the quickstart's photograph options: people cut by the frame, close-ups."""
    from tool.make_data import make_synthetic
    root = tmp_path_factory.mktemp('synthetic_photos')
    assert make_synthetic.main(['--out', str(root / 'Synthetic'), '--seed', '3', '--num-images', '8', '--width', '128',
                                '--height', '160', '--split', 'train', '--workers', '0', '--contact-count', '0',
                                '--no-progress', *fixtures.photo_options()[1]]) == 0
    return make('Synthetic', root)


def weak_perspective_residual(xy, uv):
    """The largest distance of the 2D points uv [J,2] from the best scaled, shifted xy [J,2], over uv's extent."""
    n = len(xy)
    a = np.zeros((2 * n, 3))
    a[:n, 0], a[n:, 0], a[:n, 1], a[n:, 2] = xy[:, 0], xy[:, 1], 1, 1
    coef = np.linalg.lstsq(a, uv.T.reshape(-1), rcond=None)[0]
    assert coef[0] > 0
    return np.linalg.norm((a @ coef).reshape(2, n).T - uv, axis=1).max() / np.linalg.norm(uv.max(0) - uv.min(0))


@pytest.mark.parametrize('name', NAMES + ('PW3D', 'Synthetic'))
@pytest.mark.parametrize('do_flip', [False, True])
def test_augmented_targets_describe_one_body(name, do_flip, datasets, tmp_path_factory, request):
    """Rotated, scaled (and flipped) crops: the SMPL parameters, the root-relative 3D joints, the grid depth and the 2D
    grid joints all describe the same body. 3D: SMPL(pose_param, shape_param) joints = fit_joint_cam within 1 mm; grid z
    = the depth map of fit_joint_cam's z; 2D: fit_joint_img's x, y = a scaled, shifted fit_joint_cam x, y (weak
    perspective; the residual is the perspective of the fixtures' cameras, measured < 4% of the body's extent, held
    < 6%; on the synthetic photograph set, with people 0.6-10 m from the camera and cut by the frame, the residual of
    the same fit to the record's own projection, measured within x0.88-1.14 of it, held within x1.25 + 1%); the
    dataset's own joints agree with the fitted ones (2D for every set, 3D for the 3D sets)."""
    if name == 'PW3D':
        root = tmp_path_factory.mktemp('pw3d_train')
        fixtures.write_pw3d(root / 'PW3D', split='train')
        ds = make('PW3D', root)
    elif name == 'Synthetic':
        ds = request.getfixturevalue('synthetic_photos')
    else:
        ds = datasets[name]
    aug = pre.AugConfig(scale=1.1, rot=25.0, do_flip=do_flip)
    checked = 0
    for i, rec in enumerate(ds.records):
        if rec.person is None:
            continue
        s = sample(ds, i, aug)
        assert s['is_valid_fit'][0] == 1
        body = ds.body(rec.person.gender)
        with torch.no_grad():
            _, j = body(torch.as_tensor(s['pose_param'])[None], torch.as_tensor(s['shape_param'])[None])
        j = (j - j[:, SMPL30.root_idx:SMPL30.root_idx + 1])[0].numpy()
        np.testing.assert_allclose(j, s['fit_joint_cam'], atol=1e-3)
        cfg = ds.cfg.model
        z = pre.depth_to_grid(s['fit_joint_cam'][:, 2], 0.0, cfg.bbox_3d_size, G)
        np.testing.assert_allclose(s['fit_joint_img'][:, 2], z, atol=1e-3)
        residual = weak_perspective_residual(s['fit_joint_cam'][:, :2].astype(np.float64),
                                             s['fit_joint_img'][:, :2].astype(np.float64))
        if name == 'Synthetic':   # its camera's own perspective: the record's projection against its 3D joints
            j = rec.joints_3d.astype(np.float64)
            allowed = 1.25 * weak_perspective_residual(j - j[SMPL30.root_idx], rec.joints_2d[:, :2]) + 0.01
        else:
            allowed = 0.06
        assert residual < allowed, (name, residual, allowed)
        jn = native_joints(name, rec)
        valid = s['orig_joint_valid'][jn, 0] > 0
        # a flip mirrors the image about (W-1)/2 and the mesh about the principal point, then shifts the mesh so its
        # root lands right: the other joints stay within ~0.05 grid px (0.3% of the crop; the reference's rule), within
        # |W-1-2cx| |dz| / z image px in general (preprocessing.flip_translation_shift), which the synthetic close-ups
        # (dz / z up to ~0.5) reach
        atol = 0.08 if do_flip else 2e-2
        if name == 'Synthetic' and do_flip:
            j, (_, w), cx = rec.joints_3d, rec.img_shape, rec.person.princpt[0]
            px = abs(w - 1 - 2 * cx) * np.abs(j[:, 2] - j[SMPL30.root_idx, 2]).max() / j[:, 2].min()
            atol += px * np.linalg.norm(np.ptp(s['fit_joint_img'][:, :2], 0)) / np.linalg.norm(np.ptp(
                rec.joints_2d[:, :2], 0))
        np.testing.assert_allclose(s['orig_joint_img'][jn][valid, :2], s['fit_joint_img'][jn][valid, :2], atol=atol)
        if ds.is_3d:
            np.testing.assert_allclose(s['orig_joint_cam'][jn][valid], s['fit_joint_cam'][jn][valid], atol=2e-3)
        checked += 1
    assert checked >= 2
