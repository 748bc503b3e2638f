"""tool/make_data/make_synthetic.py and tool/make_data/synthetic/: the generated files, checked independently of the
generator (pycocotools, the body model + pinhole projection, joint-limit geometry), determinism, bad input."""
import json
import math
import shutil

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.body.joint_sets import SMPL30
from common.errors import UserError
from tests import fixtures

W, H = 192, 256
ARGS = ['--num-images', '6', '--width', str(W), '--height', str(H), '--seq-len', '2', '--workers', '0',
        '--contact-count', '2', '--no-progress']


@pytest.fixture(scope='module')
def egl(renderer):
    """Skips where there is no EGL context (the generator renders)."""


def _generate(out, seed, *extra):
    from tool.make_data import make_synthetic
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
    from tool.make_data.synthetic import poses as P
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
    from tool.make_data.synthetic import poses as P
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
    from tool.make_data.synthetic.check import check_dataset
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
    from tool.make_data.synthetic.generate import Job, Options, make_image
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
    from tool.make_data import make_synthetic as M
    from tool.make_data.synthetic.generate import Job, Options, make_image
    o = Options(width=W, height=H, max_people=2)
    ok = make_image(Job(0, 'train', 's', 'a.jpg', str(tmp_path / 'a.jpg'), 1, o, fail_attempts=1))
    assert ok.error is None and ok.attempts == 2 and (tmp_path / 'a.jpg').is_file()
    bad_job = Job(1, 'train', 's', 'b.jpg', str(tmp_path / 'b.jpg'), 1, o, fail_attempts=99)
    bad = make_image(bad_job)
    assert bad.image is None and 'NaN' in bad.error and not (tmp_path / 'b.jpg').exists()
    jobs = [Job(0, 'train', 's', 'a.jpg', '', 1, o), bad_job]
    lines = M.summarize([ok, bad], jobs, {'train': 2}, tmp_path, 1.0, None, False, 0)
    assert lines[0].startswith('wrote 1/2 images')
    assert any(line.startswith('skipped s/b.jpg:') and 'NaN' in line for line in lines)
    assert any('1 image(s) skipped' in line for line in lines)
    assert any('more than one attempt' in line for line in lines)


def test_a_bug_is_not_retried_and_keeps_its_type_and_traceback(monkeypatch, tmp_path):
    from tool.make_data import make_synthetic as M
    from tool.make_data.synthetic import generate as G
    calls = []

    def broken(model_dir):
        calls.append(model_dir)
        raise KeyError('boom')

    monkeypatch.setattr(G, '_models', broken)
    job = G.Job(4, 'train', 's', 'a.jpg', str(tmp_path / 'a.jpg'), 1, G.Options(width=W, height=H))
    with pytest.raises(KeyError, match='boom') as info:
        G.make_image(job)
    assert len(calls) == 1                                       # not retried
    assert any('image 4 (s/a.jpg' in n for n in info.value.__notes__)
    assert any(f.name == 'broken' for f in info.traceback)
    # from a worker process: the parent gets the same type and message, the note and the worker's traceback
    bad = G.Job(5, 'train', 's', 'b.jpg', str(tmp_path / 'b.jpg'), 1, None)   # options None: AttributeError
    with pytest.raises(AttributeError, match='model_dir') as info:
        M.run_jobs([bad], 1, progress=False)
    assert any('image 5 (s/b.jpg' in n for n in info.value.__notes__)
    assert '_attempt' in str(info.value.__cause__)


def test_photos_an_installation_lacks_are_left_out_other_errors_propagate(monkeypatch):
    skd = pytest.importorskip('skimage.data')
    from tool.make_data.synthetic import appearance as A

    def needs_pooch():
        raise ModuleNotFoundError('needs pooch')

    def broken():
        raise TypeError('a bug')

    monkeypatch.setattr(skd, 'test_needs_pooch', needs_pooch, raising=False)
    monkeypatch.setattr(skd, 'test_broken', broken, raising=False)
    A._photo.cache_clear()
    try:
        assert A._photo('test_no_such_image') is None
        assert A._photo('test_needs_pooch') is None
        with pytest.raises(TypeError, match='a bug'):
            A._photo('test_broken')
    finally:
        A._photo.cache_clear()


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
    from tool.make_data import make_synthetic as M
    for argv, text in ((['--min-people', '0'], '--min-people'), (['--max-people', '6'], '--max-people'),
                       (['--overlap', '1.5'], '--overlap'), (['--split', 'bogus'], '--split'),
                       (['--num-images', '0'], '--num-images'), (['--truncation', '1.5'], '--truncation'),
                       (['--focal', '2,1'], '--focal'), (['--elevation', '-90,0'], '--elevation'),
                       (['--distance', '5'], '--distance')):
        with pytest.raises(UserError, match=text.replace('-', r'\-')):
            M.main(argv + ['--out', '/nonexistent/never'])


def test_split_counts():
    from tool.make_data.make_synthetic import split_counts
    assert split_counts(20, '80,10,10') == {'train': 16, 'validation': 2, 'test': 2}
    assert split_counts(3, '80,10,10') == {'train': 1, 'validation': 1, 'test': 1}
    assert split_counts(1, '80,10,10') == {'train': 1, 'validation': 0, 'test': 0}
    assert split_counts(5, 'test') == {'train': 0, 'validation': 0, 'test': 5}


# --------------------------------------------------------------------------------------------------
# what photographs show: the options of the quickstart's set (people cut by the frame, close-ups to wide shots, seen
# from below or above, sitting and bending), checked from the written files with the body model

@pytest.fixture(scope='module')
def photos(egl, tmp_path_factory):
    options, args = fixtures.photo_options()
    root = _generate(tmp_path_factory.mktemp('synth') / 'photos', 5, '--num-images', '80', '--width', '128',
                     '--height', '160', '--contact-count', '0', *args)
    return root, options


def _range(text):
    return tuple(float(v) for v in str(text).split(','))


def _people(root):
    """Per person: the image entry, the annotation and the mesh's vertices and SMPL-30 joints in the camera frame and
    in the levelled world frame of the image (x right, y down, z forward horizontal; from camera_tilt)."""
    from common.body.smpl import get_body_model
    out = []
    for split in ('train', 'validation', 'test'):
        db = _load(root, split)
        images = {i['id']: i for i in db['images']}
        for a in db['annotations']:
            img, sp = images[a['image_id']], a['smpl_param']
            v, j = get_body_model(sp['gender'])(torch.tensor([sp['pose']]), torch.tensor([sp['shape']]),
                                                torch.tensor([sp['trans']]))
            t = math.radians(img['camera_tilt'])
            R = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
            v, j = v[0].double().numpy(), j[0].double().numpy()
            out.append((img, a, v, j, v @ R, j @ R))
    return out


def _outside(img, pts):
    uv = pts[:, :2] / pts[:, 2:] * np.asarray(img['cam_param']['focal']) + np.asarray(img['cam_param']['princpt'])
    return ~((uv[:, 0] >= 0) & (uv[:, 0] < img['width']) & (uv[:, 1] >= 0) & (uv[:, 1] < img['height']))


def test_people_are_cut_by_the_frame_at_the_requested_rate_head_in_view(photos):
    """A person is cut when >= 10% of its mesh projects outside the image (recomputed from the SMPL parameters): the
    share of such people is about the requested probability (people wholly in view are harder to place, so it comes
    out higher: measured +0.00 to +0.11 on this set's size over seeds 5-9, held within 0.15); every cut person shows
    its nose and head top; among them close/medium shots (both ankles below the bottom edge) and people across the
    left or right edge; nobody else is cut at all."""
    root, options = photos
    people = _people(root)
    cut, kinds = 0, set()
    for img, a, v, j, _, _ in people:
        out = _outside(img, v).mean()
        assert out == pytest.approx(a['truncation'], abs=1e-3)
        if out < 0.1:
            assert out == pytest.approx(0, abs=1e-3)   # the others wholly in view
            continue
        cut += 1
        assert not _outside(img, j[[SMPL30.index('Nose'), SMPL30.index('Head_top')]]).any()
        uv = v[:, :2] / v[:, 2:] * img['cam_param']['focal'] + img['cam_param']['princpt']
        ankles = j[[SMPL30.index('L_Ankle'), SMPL30.index('R_Ankle')]]
        if (ankles[:, 1] / ankles[:, 2] * img['cam_param']['focal'][1] + img['cam_param']['princpt'][1]
                >= img['height']).all():
            kinds.add('legs below the frame')
        if (uv[:, 0] < 0).any() or (uv[:, 0] >= img['width']).any():
            kinds.add('across a side')
    assert len(people) > 150
    assert abs(cut / len(people) - options['truncation']) < 0.15, cut / len(people)
    assert kinds == {'legs below the frame', 'across a side'}


def test_cameras_span_the_requested_focal_lengths_distances_and_elevations(photos):
    """Focal length (x the long side) and everyone's horizontal depth inside the requested ranges, both spread over
    them; the recorded elevation inside its range, from below and from above; it is the angle from the camera down to
    a point of the person it frames: where that person is in the image (the depth of its pelvis is camera_distance),
    the point distance x tan(elevation) below the camera lies between its head top and the floor."""
    root, options = photos
    focal, distance, elevation = (_range(options[k]) for k in ('focal', 'distance', 'elevation'))
    people = _people(root)
    images = {img['id']: img for img, *_ in people}
    f = np.array([img['cam_param']['focal'][0] / max(img['width'], img['height']) for img in images.values()])
    assert focal[0] - 1e-3 <= f.min() and f.max() <= focal[1] + 1e-3 and np.ptp(f) > 0.5 * (focal[1] - focal[0])
    depth = np.array([jw[0, 2] for *_, jw in people])
    assert distance[0] - 1e-3 <= depth.min() and depth.max() <= distance[1] + 1e-3
    assert depth.min() < 2.0 and depth.max() > 6.0      # close-ups and wide shots
    e = np.array([img['camera_elevation'] for img in images.values()])
    assert elevation[0] - 1e-3 <= e.min() and e.max() <= elevation[1] + 1e-3
    assert (e < -5).any() and (e > 20).any()
    framed = 0
    for img, a, v, j, vw, jw in people:
        if abs(jw[0, 2] - img['camera_distance']) < 1e-3:
            aim = img['camera_distance'] * math.tan(math.radians(img['camera_elevation']))   # world y (down)
            assert vw[:, 1].min() - 1e-3 <= aim <= img['camera_height'] + 1e-3
            framed += 1
    assert framed > 0.8 * len(images)


def test_sitting_and_bending_people_at_the_requested_rate(photos):
    """The share of people in a sitting/kneeling/crouching/bending pose is the requested one (within 0.12); measured
    on the meshes: those people's heads are lower over the floor, in units of their own leg + torso length, than the
    others' by > 0.12 on average (measured 0.20-0.28 over seeds 5-9), and the hip-bending poses pitch the torso
    (pelvis to neck) from the vertical by > 30 deg on average, the everyday ones by < 10 (measured 43-56 and 6-7)."""
    from tool.make_data.synthetic.poses import ROOT_PITCH, SIT_BEND_NAMES
    root, options = photos
    people = _people(root)
    low = np.array([a['pose_name'] in SIT_BEND_NAMES for _, a, *_ in people])
    assert abs(low.mean() - options['sit_bend']) < 0.12, low.mean()
    head, pitch = [], []
    for img, a, v, j, vw, jw in people:
        i = {n: SMPL30.index(n) for n in ('Pelvis', 'Neck', 'Head_top', 'L_Hip', 'L_Knee', 'L_Ankle')}
        size = sum(np.linalg.norm(jw[i[p]] - jw[i[c]]) for p, c in (('L_Hip', 'L_Knee'), ('L_Knee', 'L_Ankle'),
                                                                    ('Pelvis', 'Neck')))
        head.append((vw[:, 1].max() - jw[i['Head_top'], 1]) / size)    # y is down: the floor is the lowest vertex
        up = jw[i['Pelvis']] - jw[i['Neck']]
        pitch.append(math.degrees(math.acos(up[1] / np.linalg.norm(up))))
    head, pitch = np.array(head), np.array(pitch)
    assert head[low].mean() < head[~low].mean() - 0.12, (head[low].mean(), head[~low].mean())
    bend = np.array([ROOT_PITCH.get(a['pose_name'], 0) >= 40 for _, a, *_ in people])
    assert bend.sum() >= 3 and pitch[bend].mean() > 30 and pitch[~low].mean() < 10, (pitch[bend], pitch[~low].mean())


def test_truncated_people_get_detections_only_for_what_is_in_view(photos):
    """The recorded 2D detections (the test input) of every person: a joint outside the image (visibility 0) is never
    detected, every detection is inside the image; people cut by the frame are among them."""
    root, _ = photos
    cut = 0
    for split in ('train', 'validation', 'test'):
        db = _load(root, split)
        sizes = {i['id']: (i['width'], i['height']) for i in db['images']}
        for a in db['annotations']:
            w, h = sizes[a['image_id']]
            op = np.asarray(a['openpose_result'])
            outside = np.asarray(a['joint_visibility']) == 0
            assert (op[outside] == 0).all()
            found = op[:, 2] > 0
            assert ((op[found, 0] >= 0) & (op[found, 0] < w) & (op[found, 1] >= 0) & (op[found, 1] < h)).all()
            cut += bool(outside.any() and found.any())
    assert cut > 20


def test_the_published_like_set_is_the_default():
    """Without the photograph options a set is made as before: the camera not framing anyone, every pose from the
    everyday library, no one deliberately cut; --sit-bend draws from the sitting/bending poses exactly as asked."""
    from tool.make_data import make_synthetic as M
    from tool.make_data.synthetic.generate import Options
    from tool.make_data.synthetic.poses import POSE_NAMES, SIT_BEND_NAMES
    from tool.make_data.synthetic.scene import sample_person
    args = M.parse_args(['--out', 'x'])
    M.validate(args)
    o = M.options_of(args)
    assert not o.framed and o.truncation == 0 and o.sit_bend is None and o == Options(model_dir=None)
    rng = np.random.default_rng(0)
    names = {p: [sample_person(rng, sit_bend=p).pose_name for _ in range(300)] for p in (None, 0.0, 1.0)}
    assert set(names[None]) == set(POSE_NAMES) and not set(names[0.0]) & set(SIT_BEND_NAMES)
    assert set(names[1.0]) == set(SIT_BEND_NAMES) and set(SIT_BEND_NAMES) - set(POSE_NAMES)
    args = M.parse_args(['--out', 'x', '--elevation', '-20,40', '--focal=0.6,2'])
    M.validate(args)
    assert args.elevation == (-20.0, 40.0) and args.focal == (0.6, 2.0) and M.options_of(args).framed
