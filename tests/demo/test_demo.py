"""demo/demo.py on real photographs (scikit-image's astronaut, found by the bundled MediaPipe detector), on a
synthetic crowd image with known people (--pose-json), and its one-line errors.

The checkpoint is built here, untrained, with its output layers set so that every person's prediction is the
same known mesh: the rest pose turned upright, mean shape, the root at the crop centre at a chosen depth. The
placement test then compares the rendered silhouette with that mesh projected by hand through the crop box of the
detected pose (crop centre -> box centre, crop pixel -> box width / input size), so it checks the camera mapping
from crop to image, not what a training run learned.
"""
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.body.joint_sets import COCO17, OPENPOSE18, map_joints
from common.errors import UserError
from common.paths import ROOT
from main.checkpoint import save_checkpoint
from main.config import load_config
from main.model import CAMERA_CENTRE, Model

pytestmark = pytest.mark.usefixtures('renderer')

TINY = ['model.backbone=resnet18', 'model.input_size=64', 'model.procedural_vertices=800']
HEIGHT_IN_CROP = 0.7                              # the known mesh spans this fraction of the crop's height


def known_mesh_model(cfg):
    """A model of cfg's architecture whose prediction ignores the image: upright rest pose, mean shape, camera
    translation (0, 0, tz) with tz chosen so the body spans HEIGHT_IN_CROP of the crop."""
    torch.manual_seed(0)
    model = Model(cfg).eval()
    rn = model.rotation_net
    for layer in (rn.hidden2root, rn.hidden2pose, rn.hidden2shape, rn.hidden2cam):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    # zero outputs: the root's offset alone, an upright person facing the camera
    verts = template(model)
    S, f = cfg.model.input_size, cfg.model.focal[1]
    tz = f * float(np.ptp(verts[:, 1])) / (HEIGHT_IN_CROP * S)
    p = tz / model.camera_k
    offset = CAMERA_CENTRE if cfg.model.camera == 'centred' else 0.0   # the depth logit's offset
    rn.hidden2cam.bias.data = torch.tensor([0.0, 0.0, math.log(p / (1 - p)) - offset])
    return model, tz


def template(model):
    """The known mesh at the origin (root rotation pi about x, rest pose, mean shape)."""
    pose = torch.zeros(1, 72)
    pose[0, 0] = math.pi
    with torch.no_grad():
        v, _ = model.body_model(pose, torch.zeros(1, 10), torch.zeros(1, 3))
    return v[0].numpy()


@pytest.fixture(scope='module')
def student_ckpt(tmp_path_factory):
    """A Canny student (edge-only: no teacher needed) with the known prediction, and the mesh depth."""
    # a depth of its own (centred), not one laid onto each input pose (anchored): the known mesh's place is fixed
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=none', 'model.camera=centred'])
    model, tz = known_mesh_model(cfg)
    path = tmp_path_factory.mktemp('ckpt') / 'student.pth.tar'
    save_checkpoint(path, {'model': model.state_dict(), 'config': cfg.to_dict(), 'epoch': 0})
    return path, tz, template(model), cfg


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """astronaut.png (one person) and two.png (the astronaut and her mirror image side by side)."""
    from skimage import data
    d = tmp_path_factory.mktemp('photos')
    img = data.astronaut()[:, :, ::-1]
    cv2.imwrite(str(d / 'astronaut.png'), img)
    cv2.imwrite(str(d / 'two.png'), np.concatenate([img, img[:, ::-1]], 1))
    return d


def run_demo(*args):
    from demo import demo
    return demo.main([str(a) for a in args])


def read_ids(path):
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(int)


def expected_box(tmpl, tz, crop_box, S, f):
    """The known mesh's silhouette box in the image, projected by hand: crop camera, then crop -> image."""
    v = tmpl + np.array([0.0, 0.0, tz])
    u = f * v[:, :2] / v[:, 2:] + S / 2                  # crop pixels
    x, y, w, h = crop_box
    img = np.array([x + w / 2, y + h / 2]) + (u - S / 2) * np.array([w, h]) / S
    return img.min(0), img.max(0)


def test_demo_on_photographs_places_each_mesh_on_its_person(student_ckpt, photos, tmp_path, capsys):
    ckpt, tz, tmpl, cfg = student_ckpt
    out = run_demo('--img', photos, '--ckpt', ckpt, '--out', tmp_path / 'out')
    assert out == tmp_path / 'out'
    # it says which checkpoint it used and what that learned from, on the screen and in each result
    said = capsys.readouterr().out
    assert str(ckpt) in said and 'trained 1 epoch on Synthetic' in said and 'published' in said
    astro = json.loads((out / 'astronaut.json').read_text())
    assert astro['model'] == {'checkpoint': str(ckpt), 'mode': 'student', 'trained': 'trained 1 epoch on Synthetic'}
    two = json.loads((out / 'two.json').read_text())
    assert len(astro['people']) == 1 and len(two['people']) == 2
    S, f = cfg.model.input_size, cfg.model.focal[1]
    for name, summary in (('astronaut', astro), ('two', two)):
        ids = read_ids(out / f'{name}_ids.png')
        for person in summary['people']:
            mask = ids == person['id']
            assert mask.sum() > 500
            # the silhouette is the known mesh projected through the crop box of the detected pose
            (x0, y0), (x1, y1) = expected_box(tmpl, tz, person['crop_box'], S, f)
            ys, xs = np.nonzero(mask)
            H, W = mask.shape
            for got, want, lim in ((xs.min(), x0, W), (xs.max(), x1, W), (ys.min(), y0, H), (ys.max(), y1, H)):
                if 2 < want < lim - 3:   # not clipped by the image border
                    assert abs(got - want) <= 2.5, (name, person['id'], got, want)
            # and it lies on the person: most of it inside the detected box, covering a good part of it
            bx, by, bw, bh = person['box']
            inside = mask[int(by):int(by + bh) + 1, int(bx):int(bx + bw) + 1].sum()
            assert inside / mask.sum() > 0.6 and inside / (bw * bh) > 0.15, (name, inside / mask.sum())
            obj = [ln for ln in (out / person['obj']).read_text().splitlines() if ln.startswith('v ')]
            assert len(obj) == len(tmpl)
    # the two people of the composite are on the two halves, the mirrored one on the left
    centres = sorted(np.mean(p['box'][0::2]) + p['box'][2] / 2 for p in two['people'])
    assert centres[0] < 512 < centres[1]
    for name in ('astronaut', 'two'):
        for kind in ('mesh.jpg', 'pose2d.jpg', 'edge.jpg'):
            assert cv2.imread(str(out / f'{name}_{kind}')) is not None
    assert (out / 'poses_detected.json').is_file()


def openpose_to_coco(op):
    return map_joints(np.asarray(op, np.float32).reshape(18, 3), OPENPOSE18, COCO17)


def test_demo_on_a_synthetic_crowd_with_known_people(student_ckpt, tmp_path):
    from tool.make_data import make_synthetic
    make_synthetic.main(['--out', str(tmp_path / 'syn'), '--num-images', '1', '--split', 'test', '--min-people', '3',
                         '--max-people', '3', '--occluders', '0', '--seed', '3', '--workers', '0', '--contact-sheet',
                         'none', '--no-progress'])
    db = json.loads((tmp_path / 'syn' / 'data' / '3DPW_latest_test.json').read_text())
    (img,) = db['images']
    path = tmp_path / 'syn' / 'imageFiles' / img['sequence'] / img['file_name']
    poses = {img['file_name']: [openpose_to_coco(a['openpose_result']).tolist() for a in db['annotations']]}
    (tmp_path / 'poses.json').write_text(json.dumps(poses))
    ckpt, *_ = student_ckpt
    out = run_demo('--img', path, '--ckpt', ckpt, '--pose-json', tmp_path / 'poses.json', '--out', tmp_path / 'o')
    summary = json.loads((out / f'{path.stem}.json').read_text())
    n = len(db['annotations'])   # the generator drops a person it cannot place: the annotations say how many
    assert n >= 2 and len(summary['people']) == n
    assert len(list(out.glob(f'{path.stem}_person*.obj'))) == n
    ids = read_ids(out / f'{path.stem}_ids.png')
    seen = [p for p in summary['people'] if (ids == p['id']).any()]
    assert len(seen) >= 2   # people may hide each other; the depth test decides who is seen
    for p in seen:
        ys, xs = np.nonzero(ids == p['id'])
        x, y, w, h = p['crop_box']
        assert x <= xs.mean() <= x + w and y <= ys.mean() <= y + h


def one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert '\n' not in msg and all(w in msg for w in words), msg


def test_bad_inputs_are_one_line_naming_the_file(student_ckpt, photos, tmp_path):
    ckpt, _, _, cfg = student_ckpt
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image')
    with pytest.raises(UserError) as e:
        run_demo('--img', bad, '--ckpt', ckpt, '--out', tmp_path / 'o1')
    one_line(e, 'broken.jpg')
    poses = tmp_path / 'poses.json'
    poses.write_text(json.dumps({'someone_else.jpg': [[0.0] * 51]}))
    with pytest.raises(UserError) as e:
        run_demo('--img', photos / 'astronaut.png', '--ckpt', ckpt, '--pose-json', poses, '--out', tmp_path / 'o2')
    one_line(e, 'poses.json', 'someone_else', 'astronaut')
    assert not (tmp_path / 'o1').exists() and not (tmp_path / 'o2').exists()
    video = tmp_path / 'clip.mp4'
    video.write_bytes(b'not a video')
    with pytest.raises(UserError) as e:
        run_demo('--video', video, '--ckpt', ckpt, '--out', tmp_path / 'o5')
    one_line(e, 'clip.mp4')
    assert not (tmp_path / 'o5').exists()   # no empty folder, no decoded frames left behind
    # a checkpoint of another architecture (ResNet-34 weights under a ResNet-18 config), and a file that is no
    # checkpoint of this project
    other = Model(load_config(None, TINY[1:] + ['model.backbone=resnet34', 'mode=student', 'edge.type=canny']))
    wrong = save_checkpoint(tmp_path / 'wrong_arch.pth.tar', {'model': other.state_dict(), 'config': cfg.to_dict()})
    with pytest.raises(UserError) as e:
        run_demo('--img', photos / 'astronaut.png', '--ckpt', wrong, '--out', tmp_path / 'o3')
    one_line(e, 'wrong_arch.pth.tar')
    torch.save({'state_dict': {}}, tmp_path / 'foreign.pth')
    r = subprocess.run([sys.executable, 'demo/demo.py', '--img', str(photos / 'astronaut.png'), '--ckpt',
                        str(tmp_path / 'foreign.pth'), '--out', str(tmp_path / 'o4')], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and 'foreign.pth' in r.stderr and r.stderr.strip().count('\n') == 0, r.stderr


def test_without_a_checkpoint_it_says_where_the_default_goes(photos, tmp_path, monkeypatch):
    from demo import demo
    from main import checkpoint
    monkeypatch.setattr(checkpoint, 'DEFAULT_MODEL', tmp_path / 'default_model' / 'model.pth.tar')
    with pytest.raises(UserError) as e:
        demo.main(['--img', str(photos / 'astronaut.png'), '--out', str(tmp_path / 'o')])
    one_line(e, 'default_model', 'tool/quickstart.py', '--ckpt')
    assert not (tmp_path / 'o').exists()


def test_the_default_model_is_the_published_checkpoint(student_ckpt, photos, tmp_path, monkeypatch):
    """publish_model (what tool/quickstart.py does at the end of a default run) copies the weights and config, not
    the optimiser; the demo then runs without --ckpt."""
    from main import checkpoint
    from main.predictor import MeshPredictor
    ckpt, *_ = student_ckpt
    default = tmp_path / 'default_model' / 'model.pth.tar'
    monkeypatch.setattr(checkpoint, 'DEFAULT_MODEL', default)
    full = torch.load(ckpt, weights_only=True)
    full['optimizer'] = {'state': {0: {'exp_avg': torch.ones(1000)}}}
    torch.save(full, tmp_path / 'with_optimizer.pth.tar')
    assert checkpoint.publish_model(tmp_path / 'with_optimizer.pth.tar', default) == default
    copied = torch.load(default, weights_only=True)
    assert 'optimizer' not in copied and copied['config'] == full['config']
    assert all(torch.equal(copied['model'][k], v) for k, v in full['model'].items())
    assert MeshPredictor().checkpoint == default


class PoseFittingModel(torch.nn.Module):
    """A model whose output is known: one fixed mesh (arms out, a step), its root placed in the crop camera where
    the mesh's joints best match the input 2D pose (linear least squares on the translation). What the demo does
    with that output is then all the camera path. residual: per person, how far the best fit stays from the input
    in the crop, as a fraction of the pose's size (the crop camera looks along the crop's centre, so a person off
    the image's axis, seen in perspective from the side, is not fitted exactly by a translation)."""

    def __init__(self, cfg, pose):
        super().__init__()
        from common.body.smpl import body_model
        self.cfg, self.edge = cfg, None
        self.body_model = body_model(cfg.model)
        with torch.no_grad():
            v, j = self.body_model(pose, torch.zeros(1, 10))
        self.pose = pose[0]
        self.verts = (v[0] - j[0, 0]).numpy().astype(np.float64)     # root-relative, metres
        self.joints = (j[0] - j[0, 0]).numpy().astype(np.float64)
        self.residual = []

    def forward(self, batch, mode='test'):
        from common.body.joint_sets import SMPL30
        from common.pipeline.preprocessing import grid_to_crop
        S, f = self.cfg.model.input_size, np.asarray(self.cfg.model.focal, np.float64)
        fit = [SMPL30.index(n) for n in COCO17.joints]   # the detector's joints, not the midpoints added to them
        roots = []
        for joints, mask in zip(batch['joints'].numpy(), batch['joints_mask'].numpy()):
            uv = grid_to_crop(joints[fit, :2], (S, S), (S // 4, S // 4)).astype(np.float64) - S / 2.0
            P, keep = self.joints[fit], mask[fit, 0] > 0
            # f * (P + t)_xy = uv * (P + t)_z, linear in t
            A = np.zeros((2 * keep.sum(), 3))
            A[0::2, 0], A[1::2, 1] = f[0], f[1]
            A[0::2, 2], A[1::2, 2] = -uv[keep, 0], -uv[keep, 1]
            b = np.stack([uv[keep, 0] * P[keep, 2] - f[0] * P[keep, 0],
                          uv[keep, 1] * P[keep, 2] - f[1] * P[keep, 1]], 1).reshape(-1)
            t = np.linalg.lstsq(A, b, rcond=None)[0]
            Q = P[keep] + t
            self.residual.append(np.linalg.norm(f * Q[:, :2] / Q[:, 2:] - uv[keep], axis=1).max()
                                 / np.ptp(uv[keep], 0).max())
            roots.append(t)
        rel = torch.from_numpy(np.repeat(self.verts[None], len(roots), 0)).float()
        return {'mesh_cam': rel, 'mesh_cam_render': rel + torch.tensor(np.stack(roots), dtype=torch.float32)[:, None],
                'pose': self.pose.repeat(len(roots), 1), 'shape': torch.zeros(len(roots), 10)}


def test_each_mesh_projects_onto_its_persons_2d_pose(monkeypatch, tmp_path):
    """Four people of one known mesh at known places in an image camera (F = 900 px; far off the image centre,
    near, far, on the axis): their 2D poses in, and the joints of the meshes the demo writes, projected with the
    camera it writes, must land on those poses within 1% of the person's size beyond what the model's own crop
    camera can fit, and within 10% in all. That camera (3DCrowdNet's: a fixed virtual focal, the principal point at
    the crop centre) fits these people to 3-8% of their size (measured); the placement adds nothing to it (<0.5%).
    A mesh standing beside its person or twice their height would be off by 50% or more."""
    from common.body.joint_sets import SMPL30
    from main import predictor
    cfg = load_config(None, TINY)
    pose = torch.zeros(1, 72)
    pose[0, 0] = math.pi                                   # upright, facing the camera
    pose[0, 3 * 16 + 2], pose[0, 3 * 17 + 2] = -1.2, 1.2   # shoulders: arms out
    pose[0, 3 * 1], pose[0, 3 * 2] = -0.5, 0.3             # hips: a step
    model = PoseFittingModel(cfg, pose)
    monkeypatch.setattr(predictor, 'load_model', lambda path, device: (model, cfg, Path(path), ('known', False)))
    W, H, F = 960, 640, 900.0
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    coco = [SMPL30.index(n) for n in COCO17.joints]
    people = [np.array(t) for t in ((-1.6, 0.3, 5.0), (0.4, -0.1, 3.5), (2.2, 0.6, 8.0), (0.0, 0.0, 4.5))]
    poses2d = []
    for t in people:
        J = model.joints[coco] + t
        poses2d.append(np.concatenate([F * J[:, :2] / J[:, 2:] + c, np.ones((17, 1))], 1))
    cv2.imwrite(str(tmp_path / 'scene.png'), np.full((H, W, 3), 90, np.uint8))
    (tmp_path / 'poses.json').write_text(json.dumps({'scene.png': [p.tolist() for p in poses2d]}))
    out = run_demo('--img', tmp_path / 'scene.png', '--ckpt', tmp_path / 'any.pth.tar', '--pose-json',
                   tmp_path / 'poses.json', '--out', tmp_path / 'o')
    summary = json.loads((out / 'scene.json').read_text())
    (fx, fy), (cx, cy) = summary['camera']['focal'], summary['camera']['princpt']
    assert len(summary['people']) == len(people) == len(model.residual)
    for person, want, fit in zip(summary['people'], poses2d, model.residual):
        verts = np.array([[float(v) for v in ln.split()[1:]] for ln in (out / person['obj']).read_text().splitlines()
                          if ln.startswith('v ')])
        J = model.body_model.regress_joints(torch.from_numpy(verts)[None].float())[0].numpy()[coco]
        got = np.stack([fx * J[:, 0] / J[:, 2] + cx, fy * J[:, 1] / J[:, 2] + cy], 1)
        err = np.linalg.norm(got - want[:, :2], axis=1).max() / np.ptp(want[:, :2], 0).max()
        assert err < fit + 0.01 and err < 0.1, (person['id'], err, fit)


def test_flags_and_settings_out_of_range_are_one_line(student_ckpt, photos, tmp_path):
    ckpt, *_ = student_ckpt
    img = photos / 'astronaut.png'
    cases = [(['--max-people', '0'], '--max-people'), (['--every', '0'], '--every'), (['--conf-thr', 'nan'], '--conf-thr'),
             (['--conf-thr', '1.5'], '--conf-thr'), (['--max-frames', '-1'], '--max-frames'),
             (['refine.iters=5'], '--refine'), (['--refine', 'refine.iter=5'], 'refine.iters'),
             (['--refine', 'refine.sigma=-1'], 'refine.sigma'), (['--refine', 'model.input_size=128'], 'refine.')]
    for k, (flags, word) in enumerate(cases):
        with pytest.raises(UserError) as e:
            run_demo('--img', img, '--ckpt', ckpt, '--out', tmp_path / f'o{k}', *flags)
        one_line(e, word)
        assert not (tmp_path / f'o{k}').exists()


def test_a_checkpoint_with_nan_weights_is_one_line_and_leaves_nothing(student_ckpt, photos, tmp_path):
    ckpt, *_ = student_ckpt
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state['model'].items() if v.is_floating_point() and 'rotation_net' in k)
    state['model'][key] = torch.full_like(state['model'][key], float('nan'))
    torch.save(state, tmp_path / 'nan.pth.tar')
    r = subprocess.run([sys.executable, 'demo/demo.py', '--img', str(photos / 'astronaut.png'), '--ckpt',
                        str(tmp_path / 'nan.pth.tar'), '--out', str(tmp_path / 'o')], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and 'nan.pth.tar' in r.stderr and 'NaN' in r.stderr, r.stderr
    assert r.stderr.strip().count('\n') == 0 and not (tmp_path / 'o').exists(), r.stderr


def test_pose_json_values_that_are_not_coordinates(student_ckpt, photos, tmp_path):
    """A NaN or inf keypoint is refused in one line; one 1e30 px away is no detection (dropped), not a crash."""
    ckpt, *_ = student_ckpt
    det = tmp_path / 'det'
    run_demo('--img', photos / 'astronaut.png', '--ckpt', ckpt, '--out', det, '--no-obj')
    kp = json.loads((det / 'astronaut.json').read_text())['people'][0]['keypoints']
    bad = [row[:] for row in kp]
    bad[3][0] = float('inf')
    (tmp_path / 'inf.json').write_text(json.dumps({'astronaut.png': [bad]}))
    with pytest.raises(UserError) as e:
        run_demo('--img', photos / 'astronaut.png', '--ckpt', ckpt, '--pose-json', tmp_path / 'inf.json', '--out',
                 tmp_path / 'o1')
    one_line(e, 'inf.json', 'not finite')
    far = [row[:] for row in kp]
    far[3][0] = 1e30
    (tmp_path / 'far.json').write_text(json.dumps({'astronaut.png': [far]}))
    out = run_demo('--img', photos / 'astronaut.png', '--ckpt', ckpt, '--pose-json', tmp_path / 'far.json', '--out',
                   tmp_path / 'o2')
    person = json.loads((out / 'astronaut.json').read_text())['people'][0]
    assert person['box'] == json.loads((det / 'astronaut.json').read_text())['people'][0]['box'] or \
        person['keypoints'][3][2] == 0.0


def test_the_detector_says_when_it_finds_nobody_or_reaches_the_cap(student_ckpt, photos, tmp_path, capsys):
    ckpt, *_ = student_ckpt
    cv2.imwrite(str(tmp_path / 'wall.png'), np.full((300, 400, 3), 128, np.uint8))
    out = run_demo('--img', tmp_path / 'wall.png', '--ckpt', ckpt, '--out', tmp_path / 'o1')
    err = capsys.readouterr().err
    assert 'the detector found nobody in wall.png' in err and '--pose-json' not in err, err
    assert json.loads((out / 'wall.json').read_text())['people'] == []
    run_demo('--img', photos / 'two.png', '--ckpt', ckpt, '--out', tmp_path / 'o2', '--max-people', '1')
    captured = capsys.readouterr()
    assert 'two.png: the detector stopped at --max-people 1' in captured.err and 'two.png: 1 person' in captured.out
    run_demo('--img', photos / 'two.png', '--ckpt', ckpt, '--out', tmp_path / 'o3', '--max-people', '2')
    assert '--max-people' not in capsys.readouterr().err


def test_refine_fits_the_known_mesh_to_the_detected_people(student_ckpt, photos, tmp_path, capsys):
    """The known-mesh model draws every person in the same rest pose: its joints are far from the astronaut's
    keypoints. --refine moves them onto the keypoints; the criterion says so, per person and per image, and the time
    per person is printed."""
    ckpt, *_ = student_ckpt
    before = run_demo('--img', photos / 'two.png', '--ckpt', ckpt, '--out', tmp_path / 'plain', '--no-obj')
    after = run_demo('--img', photos / 'two.png', '--ckpt', ckpt, '--out', tmp_path / 'refined', '--no-obj',
                     '--refine', 'refine.iters=40')
    said = capsys.readouterr().out
    assert re.search(r'refine: \d+\.\d\d s per person \(2 people', said), said
    fit0, fit1 = (json.loads((d / 'two.json').read_text())['fit'] for d in (before, after))
    assert fit0['keypoints'] == fit1['keypoints'] >= 16
    assert fit0['err'] > 0.15 and fit1['err'] < 0.05 and fit1['pck'] > 0.9 and fit1['on_mesh'] > 0.9, (fit0, fit1)
    assert f'{round(100 * fit1["on_mesh"])}% of {fit1["keypoints"]} keypoints on their mesh' in said
    people = json.loads((after / 'two.json').read_text())['people']
    assert [p['fit']['keypoints'] for p in people] and all(p['fit']['pck'] > 0.8 for p in people)


def test_the_predictor_is_the_demo_as_a_library(student_ckpt, photos, tmp_path):
    """MeshPredictor on an image array gives what the demo writes: the same people, meshes and criterion."""
    from common.pipeline.preprocessing import load_img
    from main.predictor import MeshPredictor, summarise
    ckpt, *_ = student_ckpt
    out = run_demo('--img', photos / 'two.png', '--ckpt', ckpt, '--out', tmp_path / 'o')
    written = json.loads((out / 'two.json').read_text())
    predictor = MeshPredictor(ckpt)
    found = predictor(load_img(photos / 'two.png'))                       # the built-in detector
    given = predictor(load_img(photos / 'two.png'), [np.array(p['keypoints']) for p in written['people']])
    for result in (found, given):
        assert len(result.people) == 2 and result.ids.shape == (512, 1024)
        assert summarise(result.people)['keypoints'] == written['fit']['keypoints']
        for person, w in zip(result.people, written['people']):
            obj = np.array([[float(v) for v in ln.split()[1:]] for ln in (out / w['obj']).read_text().splitlines()
                            if ln.startswith('v ')])
            assert np.abs(person.vertices - obj).max() < 2e-3
            assert person.joints.shape == (30, 3) and person.joints_2d.shape == (17, 2)
            assert np.allclose(person.box, w['box'], atol=0.02)


def test_video_frames_go_through_the_predictor(student_ckpt, photos, tmp_path):
    ckpt, *_ = student_ckpt
    frame = cv2.imread(str(photos / 'astronaut.png'))
    wr = cv2.VideoWriter(str(tmp_path / 'clip.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 10.0, frame.shape[1::-1])
    for dx in (0, 8, 16):
        wr.write(np.roll(frame, dx, axis=1))
    wr.release()
    out = run_demo('--video', tmp_path / 'clip.mp4', '--ckpt', ckpt, '--out', tmp_path / 'o', '--every', '2')
    frames = sorted(out.glob('frame_*.json'))
    assert len(frames) == 2 and all(len(json.loads(f.read_text())['people']) == 1 for f in frames)
    cap = cv2.VideoCapture(str(out / 'clip_mesh.mp4'))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    assert not list(out.glob('*.obj'))


@pytest.mark.slow
@pytest.mark.parametrize('script', ['demo/demo.py', 'demo/photos.py'])
def test_the_scripts_run_from_the_repository_root(script, student_ckpt, photos, tmp_path):
    """As the README writes them (python demo/<script>.py): the script's own folder first on sys.path must not hide
    the project's packages."""
    from demo import photos as demo_photos
    ckpt, *_ = student_ckpt
    args = ['--img', str(photos / 'astronaut.png')] if script == 'demo/demo.py' else []
    if script == 'demo/photos.py' and not all((demo_photos.PHOTOS_DIR / p.name).is_file() for p in demo_photos.PHOTOS):
        pytest.skip(f'the photographs are not in {demo_photos.PHOTOS_DIR}: python demo/photos.py --fetch')
    r = subprocess.run([sys.executable, script, *args, '--ckpt', str(ckpt), '--out', str(tmp_path / 'o')], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    if script == 'demo/demo.py':
        assert re.search(r'astronaut.png: 1 person; fit: \d+% of \d+ keypoints on their mesh', r.stdout), r.stdout
    else:
        assert re.search(r'\| all \| 15 \| 1[1-5] \| \d+ \| \d+% \| \d+% \| [\d.]+% \|', r.stdout), r.stdout
