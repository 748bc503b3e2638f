"""Writers of tiny datasets in the exact published formats (3DPW, Human3.6M, MuCo, MSCOCO, MPII,
CrowdPose), made from the body model and the renderer, so loaders and tools are tested without real data.

Each writer builds a few images with 2-3 overlapping people (known SMPL parameters, known cameras),
writes the annotation files where the real release has them, and (optionally) renders the images.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from common.body.joint_sets import (COCO17, CROWDPOSE14, H36M17, MPII16, MUCO21, OPENPOSE18, SMPL30, map_joints)
from common.body.smpl import get_body_model
from common.paths import ROOT
from data.scenes import Person, Scene, scene_meshes

VERTICES = 800
W, H = 320, 240


def photo_options(scale='small'):
    """The tool/make_data/make_synthetic.py options of the quickstart's synthetic set
    (assets/yaml/quickstart/<scale>.yml) but its size, seed and split, as {option: value} and as arguments: what the
    default model trains on."""
    block = yaml.safe_load((ROOT / 'assets' / 'yaml' / 'quickstart' / f'{scale}.yml').read_text())['synthetic']
    options = {k: v for k, v in block.items() if k not in ('num_images', 'seed', 'split')}
    return options, [a for k, v in options.items() for a in (f'--{k.replace("_", "-")}', str(v))]


def body():
    return get_body_model('neutral', None, VERTICES)


def make_people(rng, n, width=W, height=H, focal=(600.0, 600.0), per_person_cameras=False):
    """n people side by side with overlapping boxes, upright, facing the camera, 4-6 m away."""
    bm = body()
    people = []
    for i in range(n):
        f = np.asarray(focal) * (1 + 0.15 * i if per_person_cameras else 1)
        c = np.array([width / 2, height / 2]) + (np.array([7.0 * i, -5.0 * i]) if per_person_cameras else 0)
        pose = np.zeros(72)
        pose[0] = np.pi
        pose[3:66] = rng.normal(0, 0.15, 63)
        shape = rng.normal(0, 0.5, 10)
        z = 4.5 + 0.8 * i
        u = width * (0.4 + 0.12 * i) + rng.uniform(-5, 5)
        v = height * 0.5
        with torch.no_grad():
            _, j = bm(torch.tensor(pose, dtype=torch.float32)[None], torch.tensor(shape, dtype=torch.float32)[None])
        root = j[0, 0].numpy()
        trans = np.array([(u - c[0]) * z / f[0], (v - c[1]) * z / f[1], z]) - root
        people.append(Person(pose, shape, trans, tuple(f), tuple(c), np.zeros(4)))
    return people


def person_joints(p, cam=None):
    """SMPL-30 joints in the person's camera (m) and their projection (px)."""
    bm = body()
    with torch.no_grad():
        v, j = bm(torch.tensor(p.pose, dtype=torch.float32)[None], torch.tensor(p.shape, dtype=torch.float32)[None],
                  torch.tensor(p.trans, dtype=torch.float32)[None])
    v, j = v[0].numpy().astype(np.float64), j[0].numpy().astype(np.float64)
    if p.cam_R is not None:
        v, j = v @ p.cam_R.T + p.cam_t, j @ p.cam_R.T + p.cam_t
    f, c = np.asarray(p.focal), np.asarray(p.princpt)
    proj = lambda x: x[:, :2] / x[:, 2:] * f + c  # noqa: E731
    return j, proj(j), v, proj(v)


def tight_box(points, width, height):
    x0, y0 = np.clip(points.min(0), 0, [width - 1, height - 1])
    x1, y1 = np.clip(points.max(0), 0, [width - 1, height - 1])
    return np.array([x0, y0, x1 - x0, y1 - y0])


def render_image(path, people, width=W, height=H, seed=0):
    from common.render.renderer import Renderer
    bm = body()
    meshes, camera = scene_meshes(Scene('x', width, height, people), {'neutral': bm})
    out = Renderer().render(meshes, bm.faces, camera, outputs=('rgb', 'person_id'),
                            colors=[(200, 80, 60), (60, 160, 80), (70, 90, 200), (200, 200, 60)][:len(meshes)])
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    img = np.where(out.mask[..., None], out.rgb, bg)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[..., ::-1])


def _coco_kpts(pts2d, joint_set, valid=None):
    k = np.zeros((len(joint_set), 3))
    k[:, :2] = pts2d
    k[:, 2] = 2 if valid is None else np.where(valid, 2, 0)
    return k


def _dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _smpl(p):
    return {'pose': p.pose.tolist(), 'shape': p.shape.tolist(), 'trans': p.trans.tolist()}


def write_smpl_regressors(root, a):
    """The two extra joint regressors of 3DCrowdNet's SMPL folder (J_regressor_extra.npy: row 3 on the landmark
    vertex; J_regressor_h36m_correct.npy) for the body arrays `a`, as the official files are laid out."""
    extra = np.zeros((9, len(a['v_template'])))
    extra[3, a['landmark_vertex_ids'][-1]] = 1.0
    np.save(root / 'J_regressor_extra.npy', extra)
    np.save(root / 'J_regressor_h36m_correct.npy', a['J_regressor_h36m'].astype(np.float64))


def write_pw3d(root, num_images=2, people=3, seed=0, images=True, split='test', sequence='courtyard_hug_00',
               image_root=None):
    """data/PW3D/data/3DPW_latest_<split>.json + data/imageFiles/<sequence>/image_XXXXX.jpg (3DCrowdNet layout)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    image_root = Path(image_root) if image_root else root / 'data' / 'imageFiles'
    db = {'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'person'}]}
    aid = 0
    for i in range(num_images):
        pp = make_people(rng, people)
        name = f'image_{i:05d}.jpg'
        db['images'].append({'id': i, 'file_name': name, 'sequence': sequence, 'width': W, 'height': H,
                             'cam_param': {'focal': list(pp[0].focal), 'princpt': list(pp[0].princpt)}})
        for p in pp:
            j, j2d, _, v2d = person_joints(p)
            p.bbox = tight_box(v2d, W, H)
            op = _coco_kpts(map_joints(j2d, SMPL30, OPENPOSE18), OPENPOSE18)
            op[:, 2] = rng.uniform(0.3, 1.0, len(OPENPOSE18))
            db['annotations'].append({'id': aid, 'image_id': i, 'bbox': p.bbox.tolist(),
                                      'smpl_param': {**_smpl(p), 'gender': 'neutral'},
                                      'openpose_result': op.tolist(), 'joint_img': j2d[:24].tolist()})
            aid += 1
        if images:
            render_image(image_root / sequence / name, pp, seed=i)
    _dump(root / 'data' / f'3DPW_latest_{split}.json', db)
    return db


def write_muco(root, num_images=2, people=3, seed=0, images=True):
    rng = np.random.default_rng(seed)
    root = Path(root)
    db = {'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'person'}]}
    fits, aid = {}, 0
    for i in range(num_images):
        pp = make_people(rng, people)
        name = f'unaugmented_set/{i:03d}/img_{i:06d}.jpg'
        db['images'].append({'id': i, 'file_name': name, 'width': W, 'height': H,
                             'f': list(pp[0].focal), 'c': list(pp[0].princpt)})
        for p in pp:
            j, j2d, _, v2d = person_joints(p)
            p.bbox = tight_box(v2d, W, H)
            db['annotations'].append({'id': aid, 'image_id': i, 'bbox': p.bbox.tolist(),
                                      'keypoints_cam': (map_joints(j, SMPL30, MUCO21) * 1000).tolist(),
                                      'keypoints_img': map_joints(j2d, SMPL30, MUCO21).tolist()})
            fits[str(aid)] = _smpl(p)
            aid += 1
        if images:
            render_image(root / 'data' / name, pp, seed=i)
    _dump(root / 'data' / 'MuCo-3DHP.json', db)
    _dump(root / 'data' / 'smpl_param.json', fits)
    return db, fits


def write_h36m(root, subject=1, frames=(0, 5), seed=0, images=True, cams=(1,)):
    """One person per frame; SMPL fits in a world frame, a camera (R, t in mm) per cam_idx (camera 1 as
    before; camera c turns 0.3 * c rad about y, all looking at the person 5 m away); one image per
    (frame, camera)."""
    rng = np.random.default_rng(seed)
    root = Path(root)

    def camera(c):
        ang = 0.3 * c
        return np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    t_m = np.array([0.2, -0.1, 5.0])
    cam_json = {str(c): {'R': camera(c).tolist(), 't': (t_m * 1000).tolist(), 'f': [600.0, 600.0], 'c': [W / 2, H / 2]}
                for c in cams}
    db = {'images': [], 'annotations': []}
    fits, joints3d = {'2': {'1': {}}}, {'2': {'1': {}}}
    k = 0
    for fr in frames:
        pose = np.zeros(72)
        pose[0] = np.pi
        pose[3:66] = rng.normal(0, 0.15, 63)
        shape = rng.normal(0, 0.5, 10)
        trans = rng.normal(0, 0.1, 3)
        for c in cams:
            R = camera(c)
            p = Person(pose, shape, trans, (600.0, 600.0), (W / 2, H / 2), np.zeros(4), cam_R=R, cam_t=t_m)
            j, j2d, jw, v2d = person_joints(p)
            p.bbox = tight_box(v2d, W, H)
            seq = f's_{subject:02d}_act_02_subact_01_ca_{c:02d}'
            name = f'{seq}/{seq}_{fr + 1:06d}.jpg'
            db['images'].append({'id': k, 'file_name': name, 'width': W, 'height': H, 'subject': subject,
                                 'action_idx': 2, 'subaction_idx': 1, 'frame_idx': fr, 'cam_idx': c})
            db['annotations'].append({'id': k, 'image_id': k, 'bbox': p.bbox.tolist()})
            fits['2']['1'][str(fr)] = _smpl(p)
            world = (j - t_m) @ R  # camera -> world
            joints3d['2']['1'][str(fr)] = (map_joints(world, SMPL30, H36M17) * 1000).tolist()
            if images:
                render_image(root / 'images' / name, [p], seed=k)
            k += 1
    ann = root / 'annotations'
    _dump(ann / f'Human36M_subject{subject}_data.json', db)
    _dump(ann / f'Human36M_subject{subject}_camera.json', cam_json)
    _dump(ann / f'Human36M_subject{subject}_joint_3d.json', joints3d)
    _dump(ann / f'Human36M_subject{subject}_smpl_param.json', fits)
    return db


def _write_neuralannot(root, ann_file, fits_file, image_dir, joint_set, num_images, people, seed, images,
                       swap_wh=False, fit_err=None, prefix=''):
    rng = np.random.default_rng(seed)
    db = {'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'person'}]}
    fits, aid = {}, 0
    for i in range(num_images):
        pp = make_people(rng, people, per_person_cameras=True)
        name = f'{i:012d}.jpg'
        w, h = (H, W) if swap_wh else (W, H)
        db['images'].append({'id': i, 'file_name': name, 'width': w, 'height': h})
        for k, p in enumerate(pp):
            _, j2d, _, v2d = person_joints(p)
            p.bbox = tight_box(v2d, W, H)
            kp = _coco_kpts(map_joints(j2d, SMPL30, joint_set), joint_set)
            db['annotations'].append({'id': aid, 'image_id': i, 'bbox': p.bbox.tolist(), 'category_id': 1,
                                      'keypoints': kp.reshape(-1).tolist(), 'num_keypoints': len(joint_set),
                                      'iscrowd': 0, 'area': float(p.bbox[2] * p.bbox[3])})
            fits[str(aid)] = {'smpl_param': _smpl(p), 'cam_param': {'focal': list(p.focal), 'princpt': list(p.princpt)}}
            if fit_err is not None:
                fits[str(aid)]['fit_err'] = fit_err[k % len(fit_err)]
            aid += 1
        if images:
            render_image(image_dir / prefix / name, pp, seed=i)
    _dump(ann_file, db)
    if fits_file is not None:   # the keypoint benchmarks have no fits
        _dump(fits_file, fits)
    return db, fits


def write_mscoco(root, num_images=2, people=3, seed=0, images=True):
    root = Path(root)
    return _write_neuralannot(root, root / 'annotations' / 'person_keypoints_train2017.json',
                              root / 'annotations' / 'MSCOCO_train_SMPL_NeuralAnnot.json', root / 'images', COCO17,
                              num_images, people, seed, images, prefix='train2017')


def write_mpii(root, num_images=2, people=3, seed=0, images=True):
    root = Path(root)
    ann = root / 'data' / 'annotations'
    return _write_neuralannot(root, ann / 'train.json', ann / 'MPII_train_SMPL_NeuralAnnot.json', root / 'data', MPII16,
                              num_images, people, seed, images)


def write_ochuman(root, split='test', num_images=2, people=3, seed=0):
    """OCHuman's COCO-format keypoint file (17 COCO keypoints) in mmpose's layout, with rendered images."""
    root = Path(root)
    return _write_neuralannot(root, root / 'annotations' / f'ochuman_coco_format_{split}_range_0.00_1.00.json', None,
                              root / 'images', COCO17, num_images, people, seed, True)[0]


def write_crowdpose_test(root, num_images=2, people=3, seed=0):
    """CrowdPose's test keypoint file (14 keypoints; width and height swapped, as in the release)."""
    root = Path(root)
    return _write_neuralannot(root, root / 'annotations' / 'crowdpose_test.json', None, root / 'images', CROWDPOSE14,
                              num_images, people, seed, True, swap_wh=True)[0]


def write_lsp(root, extended=False, num_images=3, seed=0):
    """LSP's joints.mat ([3,14,N], third row 1 = occluded; the test split starts at image 1001, so N = 1000 +
    num_images and only those images are written) or LSPET's ([14,3,N], third column 1 = visible), one person per
    image; the left wrist of every second person is marked unseen. Returns the [num_images,14,3] (x, y, visible)."""
    import scipy.io
    from common.body.joint_sets import LSP14
    root, rng = Path(root), np.random.default_rng(seed)
    first = 0 if extended else 1000
    out = np.zeros((first + num_images, 14, 3))
    for i in range(num_images):
        p = make_people(rng, 1)
        out[first + i, :, :2] = map_joints(person_joints(p[0])[1], SMPL30, LSP14)
        out[first + i, :, 2] = 1
        out[first + i, LSP14.index('L_Wrist'), 2] = i % 2 == 0
        name = f'im{first + i + 1:05d}.jpg' if extended else f'im{first + i + 1:04d}.jpg'
        render_image(root / 'images' / name, p, seed=i)
    mat = out.transpose(1, 2, 0) if extended else np.concatenate([out[:, :, :2], 1 - out[:, :, 2:]], 2).transpose(2, 1, 0)
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(root / 'joints.mat'), {'joints': mat})
    return out[first:]


def write_crowdpose(root, num_images=2, people=3, seed=0, images=True, fit_err=(1.0, 2.0, 9.0)):
    """Width/height swapped in the train file, as in the release; the third person's fit is a bad one."""
    root = Path(root)
    ann = root / 'annotations'
    return _write_neuralannot(root, ann / 'crowdpose_train.json', ann / 'CrowdPose_train_SMPL_NeuralAnnot.json',
                              root / 'images', CROWDPOSE14, num_images, people, seed, images, swap_wh=True,
                              fit_err=fit_err)
