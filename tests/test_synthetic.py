"""tool/make_synthetic.py and tool/synthetic/: the generated files, checked independently of the generator
(pycocotools, the body model + pinhole projection, joint-limit geometry), determinism, bad input."""
import json
import math
import shutil

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from common.errors import UserError

W, H = 192, 256
ARGS = ['--num-images', '6', '--width', str(W), '--height', str(H), '--seq-len', '2', '--workers', '0',
        '--contact-count', '2', '--no-progress']


@pytest.fixture(scope='module')
def egl(renderer):
    """Skips where there is no EGL context (the generator renders)."""


def _generate(out, seed, *extra):
    from tool import make_synthetic
    assert make_synthetic.main(['--out', str(out), '--seed', str(seed)] + ARGS + list(extra)) == 0
    return out


@pytest.fixture(scope='module')
def dataset(egl, tmp_path_factory):
    return _generate(tmp_path_factory.mktemp('synth') / 'a', 3)


def _load(root, split):
    return json.loads((root / 'data' / f'3DPW_latest_{split}.json').read_text())


# --------------------------------------------------------------------------------------------------
# poses

def test_pose_library_and_samples_respect_joint_limits():
    from tool.synthetic import poses as P
    rng = np.random.default_rng(0)
    for name, e in P.POSE_LIBRARY.items():
        assert P.within_limits(e).all(), name
        assert P.within_limits(P.mirror_pose(e)).all(), name
    samples = [P.sample_body_pose_euler(rng, noise=2.0)[1] for _ in range(300)]
    assert all(P.within_limits(e).all() for e in samples)

    # geometry, from the axis-angle output: knees never bend forward, elbows never backward
    idx = {n: i for i, n in enumerate(P.BODY_JOINTS)}
    for e in samples + list(P.POSE_LIBRARY.values()):
        aa = P.euler_to_axis_angle(e)
        for knee in ('L_Knee', 'R_Knee'):
            shin = Rotation.from_rotvec(aa[idx[knee]]).apply([0, -1, 0])   # rest shin points down (y up)
            assert shin[2] < 0.1, (knee, shin)                              # z forward: at most ~6 deg
        for elbow, rest in (('L_Elbow', [1, 0, 0]), ('R_Elbow', [-1, 0, 0])):
            fore = Rotation.from_rotvec(aa[idx[elbow]]).apply(rest)         # rest forearm along the arm
            assert fore[2] > -0.2, (elbow, fore)
            assert np.degrees(np.arccos(np.clip(np.dot(fore, rest), -1, 1))) <= 151


def test_limits_are_mirror_symmetric():
    from tool.synthetic import poses as P
    for n, ((x0, x1), (y0, y1), (z0, z1)) in P.JOINT_LIMITS.items():
        (a0, a1), (b0, b1), (c0, c1) = P.JOINT_LIMITS[P.mirror_name(n)]
        assert (a0, a1) == (x0, x1) and (b0, b1) == (-y1, -y0) and (c0, c1) == (-z1, -z0)
    assert P.JOINT_LIMITS['L_Knee'][0][0] == 0 and P.JOINT_LIMITS['L_Elbow'][1][1] == 0


# --------------------------------------------------------------------------------------------------
# the dataset files

def test_files_load_with_pycocotools_and_have_the_3dpw_fields(dataset):
    from pycocotools.coco import COCO
    total = 0
    for split, n in (('train', 4), ('validation', 1), ('test', 1)):
        coco = COCO(str(dataset / 'data' / f'3DPW_latest_{split}.json'))
        assert len(coco.getImgIds()) == n
        assert coco.loadCats(coco.getCatIds()) == [{'id': 1, 'name': 'person'}]
        for img in coco.loadImgs(coco.getImgIds()):
            assert img['sequence'].startswith(f'synth_{split}_') and img['file_name'].endswith('.jpg')
            assert (img['width'], img['height']) == (W, H)
            assert len(img['cam_param']['focal']) == 2 and len(img['cam_param']['princpt']) == 2
            assert (dataset / 'imageFiles' / img['sequence'] / img['file_name']).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img['id']]))
            assert 1 <= len(anns) == img['num_people'] <= 5
            for a in anns:
                total += 1
                sp = a['smpl_param']
                assert len(sp['pose']) == 72 and len(sp['shape']) == 10 and len(sp['trans']) == 3
                assert sp['gender'] in ('neutral', 'male', 'female')
                assert np.abs(sp['shape']).max() <= 2.5
                op = np.asarray(a['openpose_result'])
                assert op.shape == (18, 3) and ((op[:, 2] >= 0) & (op[:, 2] <= 1)).all()
                missed = op[:, 2] == 0
                assert (op[missed] == 0).all()
                assert ((op[~missed, 0] >= 0) & (op[~missed, 0] < W) & (op[~missed, 1] >= 0)
                        & (op[~missed, 1] < H)).all()
                assert np.asarray(a['joint_img']).shape == (24, 2)
                assert 0 <= a['occlusion'] <= 1 and 0 <= a['object_occlusion'] <= 1 and 0 <= a['truncation'] <= 1
                x, y, w, h = a['bbox']
                assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= W + 1e-6 and y + h <= H + 1e-6
    assert total >= 6
    assert (dataset / 'contact_sheet.jpg').is_file()


def test_smpl_params_reproduce_the_image_geometry(dataset):
    """pose/shape/trans -> body model -> pinhole with cam_param lands on bbox and joint_img; people are
    upright (head above feet in the image) and stand on one floor plane (from camera height/tilt)."""
    import torch
    from common.body.smpl import get_body_model
    for split in ('train', 'validation', 'test'):
        db = _load(dataset, split)
        images = {i['id']: i for i in db['images']}
        for a in db['annotations']:
            img = images[a['image_id']]
            f = np.asarray(img['cam_param']['focal'])
            c = np.asarray(img['cam_param']['princpt'])
            sp = a['smpl_param']
            v, j = get_body_model(sp['gender'])(torch.tensor([sp['pose']]), torch.tensor([sp['shape']]),
                                                torch.tensor([sp['trans']]))
            v, j = v[0].double().numpy(), j[0].double().numpy()
            assert (v[:, 2] > 1.0).all()
            uv = v[:, :2] / v[:, 2:] * f + c
            x, y, w, h = a['bbox']
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
            assert inside.mean() == pytest.approx(1 - a['truncation'], abs=1e-3)
            u_in = uv[inside]
            assert (u_in[:, 0] >= x - 1).all() and (u_in[:, 0] <= x + w + 1).all()
            assert (u_in[:, 1] >= y - 1).all() and (u_in[:, 1] <= y + h + 1).all()
            box = np.clip([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()], 0, [W, H, W, H])
            assert np.allclose(box, [x, y, x + w, y + h], atol=1.0)
            juv = j[:24, :2] / j[:24, 2:] * f + c
            assert np.abs(juv - np.asarray(a['joint_img'])).max() < 0.5
            # upright in the image: head top above both ankles (OpenCV y down)
            assert juv[7, 1] > j[29, 1] / j[29, 2] * f[1] + c[1] and juv[8, 1] > j[29, 1] / j[29, 2] * f[1] + c[1]
            # feet on the floor: the lowest point is at camera_height below the camera, in the levelled frame
            t = math.radians(img['camera_tilt'])
            Rwc = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
            world = v @ Rwc   # camera -> levelled world (y down)
            assert world[:, 1].max() == pytest.approx(img['camera_height'], abs=2e-3)


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    again = _generate(tmp_path / 'b', 3)
    other = _generate(tmp_path / 'c', 4)
    for split in ('train', 'validation', 'test'):
        name = f'data/3DPW_latest_{split}.json'
        assert (again / name).read_bytes() == (dataset / name).read_bytes()
        assert (other / name).read_bytes() != (dataset / name).read_bytes()
    img = sorted((dataset / 'imageFiles').rglob('*.jpg'))[0]
    assert (again / img.relative_to(dataset)).read_bytes() == img.read_bytes()


def test_check_mode_reports_bad_records_and_goes_on(dataset, tmp_path):
    from tool.synthetic.check import check_dataset
    root = tmp_path / 'bad'
    shutil.copytree(dataset, root)
    n, problems = check_dataset(root, print_fn=lambda s: None)
    assert n >= 6 and problems == []
    path = root / 'data' / '3DPW_latest_train.json'
    db = json.loads(path.read_text())
    del db['images'][0]['cam_param']['focal']
    victim = next(a for a in db['annotations'] if a['image_id'] != db['images'][0]['id'])
    victim['smpl_param']['pose'][5] = float('nan')
    path.write_text(json.dumps(db))
    lines = []
    n2, problems = check_dataset(root, print_fn=lines.append)
    assert n2 == n
    assert any("missing field 'focal'" in p for p in problems)
    assert any(f'annotation {victim["id"]} ' in p and 'finite' in p for p in problems)
    assert lines == problems and all('\n' not in p for p in problems)


# --------------------------------------------------------------------------------------------------
# scenes, failures, the detector, the command line

def test_person_behind_another_is_occluded(egl, tmp_path):
    from tool.synthetic.generate import Job, Options, make_image
    for seed in range(2):
        r = make_image(Job(0, 'train', 's', 'a.jpg', str(tmp_path / f'{seed}.jpg'), seed, Options(width=W, height=H),
                           force_overlap=True))
        assert r.error is None and len(r.annotations) == 2
        near, far = sorted(r.annotations, key=lambda a: a['smpl_param']['trans'][2])
        assert near['occlusion'] == 0.0
        assert 0.05 < far['occlusion'] < 1.0
        # joints hidden by the front person are marked occluded (1), not visible (2)
        assert 1 in far['joint_visibility']


def test_failed_scene_is_retried_then_skipped_and_counted(egl, tmp_path):
    from tool import make_synthetic as M
    from tool.synthetic.generate import Job, Options, make_image
    o = Options(width=W, height=H, max_people=2)
    ok = make_image(Job(0, 'train', 's', 'a.jpg', str(tmp_path / 'a.jpg'), 1, o, fail_attempts=1))
    assert ok.error is None and ok.attempts == 2 and (tmp_path / 'a.jpg').is_file()
    bad_job = Job(1, 'train', 's', 'b.jpg', str(tmp_path / 'b.jpg'), 1, o, fail_attempts=99)
    bad = make_image(bad_job)
    assert bad.image is None and 'NaN' in bad.error and not (tmp_path / 'b.jpg').exists()
    jobs = [Job(0, 'train', 's', 'a.jpg', '', 1, o), bad_job]
    lines = M.summarize([ok, bad], jobs, {'train': 2}, tmp_path, 1.0, None, None, False, 0)
    assert lines[0].startswith('wrote 1/2 images')
    assert any(line.startswith('skipped s/b.jpg:') and 'NaN' in line for line in lines)
    assert any('1 image(s) skipped' in line for line in lines)
    assert any('more than one attempt' in line for line in lines)


def test_detector_follows_visibility():
    from common.pipeline import simulated_detector as D
    rng = np.random.default_rng(0)
    uv = np.stack([np.linspace(10, 100, 18), np.linspace(20, 200, 18)], 1)
    st = np.full(18, D.VISIBLE)
    st[:3] = D.OUTSIDE
    dets, swaps = D.simulate(rng, [uv], [st], [np.full(18, -1)], [150.0], W, H, noise=0.0)
    d = dets[0]
    assert (d[:3] == 0).all() and swaps == 0
    np.testing.assert_allclose(d[3:, :2], uv[3:])
    assert ((d[3:, 2] > 0.5) & (d[3:, 2] <= 1)).all()
    # joints hidden by a person are missed far more often than visible ones, and sometimes swapped
    st_hidden = np.full(18, D.PERSON)
    other = uv + 5
    dets, swaps = [], 0
    for _ in range(200):
        d, s = D.simulate(rng, [uv, other], [st_hidden, np.full(18, D.VISIBLE)],
                          [np.full(18, 1), np.full(18, -1)], [150.0, 150.0], W, H)
        dets.append(d[0])
        swaps += s
    miss_hidden = np.mean([(d[:, 2] == 0).mean() for d in dets])
    assert miss_hidden > 0.2 and swaps > 0   # visible joints: 2-6% missed
    assert D.smpl30_to_openpose18(np.arange(30.0)[:, None]).shape == (18, 1)


def test_cli_rejects_bad_options_with_one_line():
    from tool import make_synthetic as M
    for argv, text in ((['--min-people', '0'], '--min-people'), (['--max-people', '6'], '--max-people'),
                       (['--overlap', '1.5'], '--overlap'), (['--split', 'bogus'], '--split'),
                       (['--num-images', '0'], '--num-images')):
        with pytest.raises(UserError, match=text.replace('-', r'\-')):
            M.main(argv + ['--out', '/nonexistent/never'])


def test_split_counts():
    from tool.make_synthetic import split_counts
    assert split_counts(20, '80,10,10') == {'train': 16, 'validation': 2, 'test': 2}
    assert split_counts(3, '80,10,10') == {'train': 1, 'validation': 1, 'test': 1}
    assert split_counts(1, '80,10,10') == {'train': 1, 'validation': 0, 'test': 0}
    assert split_counts(5, 'test') == {'train': 0, 'validation': 0, 'test': 5}
