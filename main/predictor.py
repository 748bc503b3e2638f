"""Meshes for the people of any image (the demo as a library): load a checkpoint once, call it on image arrays.

    from main.predictor import MeshPredictor
    predictor = MeshPredictor()                    # the default model (main/checkpoint.py DEFAULT_MODEL), on the CPU
    predictor = MeshPredictor('output/<experiment>', device='cuda', refine=True)
    result = predictor(image_rgb)                  # HxWx3 uint8 RGB; people found by the built-in detector
    result = predictor(image_rgb, poses)           # or 2D poses of any detector: [17,3] COCO keypoints (x, y, score)
    for person in result.people:
        person.vertices, person.joints, person.box, person.fit   # camera frame (m), SMPL-30 joints, x y w h, criterion
    result.camera                                  # the one image camera every mesh is in (common.camera.Camera)
    summarise(result.people)                       # the fit criterion pooled over people

Each person is cropped as the test loader crops (the box of the 2D pose, x1.2, squared, x1.25; the model's input
size), the model predicts the mesh in the crop's camera (focal model.focal in crop pixels, principal point at the
crop centre), and the mesh is placed in the image through the crop's affine: depth scaled by F / (focal x crop
scale) for one image camera (focal F, principal point at the image centre), so all meshes render in one pass in
depth order. With refine, each person's SMPL pose, shape and root are then fitted to its keypoints (common/body/
fitting.py; settings: the refine.* config keys). The fit criterion (common/metrics.py mesh_fit_2d) is computed for
every person on the rendered scene.
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.camera import Camera
from common.errors import UserError
from common.paths import ROOT

MEDIAPIPE_DIR = Path(os.environ.get('SEFD_MEDIAPIPE_DIR')
                     or Path.home() / '.cache' / 'sefd' / 'blazepose-mediapipe-0.10.14')


@dataclasses.dataclass
class Person:
    index: int                # position among the poses the image was given (0-based)
    keypoints: np.ndarray     # [17,3] the 2D pose (COCO-17 x, y, score; image px)
    box: np.ndarray           # [4] x, y, w, h of its keypoints above conf_thr
    crop_box: np.ndarray      # [4] the model's crop
    vertices: np.ndarray      # [V,3] camera frame (OpenCV axes: x right, y down, z forward), metres
    joints: np.ndarray        # [30,3] SMPL-30 joints, camera frame
    joints_2d: np.ndarray     # [17,2] the mesh's COCO-17 joints projected into the image (px)
    pose: np.ndarray          # [72] SMPL axis-angle, root first (its orientation in the camera frame)
    shape: np.ndarray         # [10]
    fit: dict                 # common.metrics.mesh_fit_2d of this person
    pixels: int = 0           # pixels where the rendered scene shows this person


class Bodies(NamedTuple):
    """The meshes of an image's people, one row per person, in the image camera."""
    vertices: np.ndarray      # [N,V,3] camera frame, metres
    joints: np.ndarray        # [N,30,3] SMPL-30
    pose: np.ndarray          # [N,72] axis-angle
    shape: np.ndarray         # [N,10]


@dataclasses.dataclass
class Prediction:
    people: list              # [Person], in the order of the poses given (people without a usable joint left out)
    camera: Camera            # the image's: focal (F, F), principal point at the image centre
    overlay: np.ndarray       # HxWx3 uint8: the meshes rendered over the image, nearest in front
    ids: np.ndarray           # HxW int32: the index into `people` of the mesh seen at each pixel, -1 none
    faces: np.ndarray         # [F,3] the meshes' triangles (vertex indices)
    edge: np.ndarray = None   # HxW float32: a student's edge input, put back in the image (None for a baseline)
    refine_seconds: float = None   # the refinement's wall time for this image (None: not refined)


def default_checkpoint():
    """The default model: main/checkpoint.py DEFAULT_MODEL (output/default_model/model.pth.tar), which
    tool/quickstart.py fills with its distilled student; one line when there is none."""
    from main.checkpoint import DEFAULT_MODEL
    if not DEFAULT_MODEL.is_file():
        raise UserError(f'no model at {DEFAULT_MODEL}, the default: run python tool/quickstart.py (it puts its '
                        f'distilled student there), copy a checkpoint there, or pass --ckpt')
    return DEFAULT_MODEL


def detect_people(paths, out_json, max_people):
    """Every person in each image and their 2D pose (demo/mediapipe_pose.py in a subprocess, with the folder
    requirements.sh unpacked the mediapipe 0.10.14 models and ai-edge-litert into first on its path); writes COCO
    keypoints to out_json."""
    env = dict(os.environ)
    if MEDIAPIPE_DIR.is_dir():
        env['PYTHONPATH'] = str(MEDIAPIPE_DIR) + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    cmd = [sys.executable, str(ROOT / 'demo' / 'mediapipe_pose.py'), '--out', str(out_json),
           '--max-people', str(max_people)] + [str(p) for p in paths]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode == 3 or 'MEDIAPIPE_IMPORT_ERROR' in r.stderr:
        why = next((ln.split(' ', 1)[1] for ln in r.stderr.splitlines() if ln.startswith('MEDIAPIPE_IMPORT_ERROR')),
                   'not importable')
        raise UserError(f'the built-in pose detector needs the mediapipe 0.10.14 models and ai-edge-litert in '
                        f'{MEDIAPIPE_DIR} ({why}): run bash requirements.sh, or give 2D poses with --pose-json')
    if r.returncode != 0 or not Path(out_json).is_file():
        last = (r.stderr.strip().splitlines() or ['no message'])[-1]
        raise UserError(f'the 2D pose detector (demo/mediapipe_pose.py) failed: {last[:300]}')
    return out_json


def read_detections(db, names_by_id):
    """{image name: ([17x3 keypoints per person], whether the detector stopped at max_people)} of the detector's
    COCO json (mediapipe_pose.py writes it)."""
    out = {}
    for im in db['images']:
        out[names_by_id[im['id']]] = ([], bool(im.get('max_people_reached')))
    for a in db['annotations']:
        out[names_by_id[a['image_id']]][0].append(np.asarray(a['keypoints'], np.float32).reshape(17, 3))
    return out


# ---------------------------------------------------------------------------------------------- model
def gpu_device(gpu):
    """The device of a --gpu flag: '' the CPU, '<id>' that GPU (one line when there is none)."""
    import torch
    if not gpu:
        return torch.device('cpu')
    if not str(gpu).split(',')[0].strip().isdigit():
        raise UserError(f'--gpu {gpu!r}: give one GPU id, e.g. --gpu 0')
    if not torch.cuda.is_available():
        raise UserError('--gpu: torch sees no GPU; drop --gpu to run on the CPU')
    return torch.device('cuda', int(str(gpu).split(',')[0]))


def load_model(path, device):
    """(model in eval mode on device, config, checkpoint path, (what it was trained on, whether only synthetic))."""
    import torch

    from common.paths import resolve_path
    from main.checkpoint import model_from_checkpoint
    model, cfg, ckpt, path = model_from_checkpoint(resolve_path(path))
    if cfg.mode == 'teacher':
        raise UserError(f'{path} is a teacher: it sees the SMPL overlap edge rendered from ground-truth meshes, '
                        f'which a photograph does not have; use a student or a baseline checkpoint')
    bad = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()),
               None)
    if bad is not None:
        raise UserError(f'{path} has NaN or inf weights ({bad}): its training diverged; use an earlier snapshot')
    return model.to(device).eval(), cfg, path, trained_on(cfg, ckpt)


def trained_on(cfg, ckpt):
    """What the checkpoint learned from, in words, and whether that is only the synthetic crowd set."""
    sets = list(cfg.data.train_sets_3d) + list(cfg.data.train_sets_2d)
    epochs = int(ckpt.get('epoch', -1)) + 1 if isinstance(ckpt.get('epoch'), int) else None
    span = f'{epochs} epoch{"s" if epochs != 1 else ""} ' if epochs else ''
    text = f'trained {span}on {", ".join(sets) or "no named set"}'
    return text, bool(sets) and set(sets) <= {'Synthetic'}


# ---------------------------------------------------------------------------------------------- people
def person_inputs(img, coco, cfg, conf_thr, loader_edge):
    """One person's model inputs (the test loader's crop, PW3D.test_inputs) from COCO-17 keypoints [17,3] (image
    px, score), and its crop box and affines; None when no joint is above conf_thr."""
    import torch

    from common.body.joint_sets import COCO17, COCO19, SMPL30, add_midpoints, map_joints
    from common.pipeline import preprocessing as pre
    H, W = img.shape[:2]
    pose30 = map_joints(add_midpoints(np.asarray(coco, np.float32), COCO17, ('Pelvis', 'Neck')), COCO19, SMPL30)
    published = cfg.data.crop_convention == 'published'
    crop_box = pre.pose_box(pose30, W, H, train=False, conf_thr=conf_thr, published=published)
    if crop_box is None:
        return None
    patch, img2bb, bb2img, joints, mask = pre.test_crop(img, crop_box, pose30, conf_thr, cfg.model.input_size,
                                                         published=published)
    inputs = {'img': torch.from_numpy(pre.image_to_chw(patch.astype(np.float32))),
              'joints': torch.from_numpy(joints), 'joints_mask': torch.from_numpy(mask)}
    if loader_edge is not None:
        inputs['edge'] = torch.from_numpy(loader_edge.numpy_edge(patch))[None]
    kp_box = pre.get_bbox(coco[:, :2], coco[:, 2] > conf_thr, extend=1.0)
    # a crop box exists, so some COCO joint is above conf_thr and kp_box too
    return inputs, {'crop_box': crop_box, 'bb2img': bb2img, 'img2bb': img2bb, 'box': kp_box}


def place_meshes(out, metas, S, focal, width, height):
    """Root-relative meshes of the crops -> one image camera (focal F, principal point at the image centre): each
    root keeps its image position, its depth scaled by F / (the crop focal in image pixels). Returns (meshes [N,V,3]
    camera frame, that Camera)."""
    mesh_rel = out['mesh_cam'].float().cpu().numpy()
    root = (out['mesh_cam_render'] - out['mesh_cam'])[:, 0].float().cpu().numpy()   # [N,3] crop camera
    f_crop = np.asarray(focal, np.float64)
    f_img = np.stack([f_crop * np.array([m['bb2img'][0, 0], m['bb2img'][1, 1]]) for m in metas])  # [N,2]
    camera = Camera.centred(float(np.median(f_img[:, 0])), width, height)
    F, c = camera.focal[0], np.array(camera.princpt)
    meshes = []
    for i, m in enumerate(metas):
        # the root's pixel in the crop, then in the image (the crop's affine has no rotation at test time)
        uv_crop = f_crop * root[i, :2] / root[i, 2] + S / 2.0
        uv = m['bb2img'][:, :2] @ uv_crop + m['bb2img'][:, 2]
        z = root[i, 2] * F / f_img[i, 0]
        xy = (uv - c) * z / F
        meshes.append(mesh_rel[i] + np.array([xy[0], xy[1], z], np.float32))
    return np.stack(meshes) if meshes else np.zeros((0, 0, 3), np.float32), camera


def usable_keypoints(kp, width, height):
    """kp [17,3] with the score of joints that are not finite or lie more than an image size outside the image set to
    0 (no detector puts a joint there; such values would only wreck the crop), and how many were."""
    kp = np.array(kp, np.float32).reshape(17, 3)
    x, y = kp[:, 0], kp[:, 1]
    ok = np.isfinite(kp).all(1) & (x > -width) & (x < 2 * width) & (y > -height) & (y < 2 * height)
    kp[~ok] = 0.0
    return kp, int((~ok).sum())


# ---------------------------------------------------------------------------------------------- predictor
class MeshPredictor:
    """A checkpoint loaded once; predictor(image, poses=None) -> Prediction. conf_thr: 2D joints at or below this
    score are masked out of the model's input; refine: fit each person to its keypoints (settings: the refine.*
    keys, `refine_overrides` on top of the checkpoint's config, e.g. ['refine.iters=200']); max_people: what the
    built-in detector looks for per image."""

    def __init__(self, ckpt=None, device='cpu', refine=False, refine_overrides=(), conf_thr=0.1, max_people=10):
        import torch
        self.device = torch.device(device)
        self.model, self.cfg, self.checkpoint, (self.trained, self.synthetic_only) = \
            load_model(ckpt or default_checkpoint(), self.device)
        if refine_overrides:
            from main.config import parse_overrides, update_config, validate
            other = [o for o in refine_overrides if not str(o).startswith('refine.')]
            if other:
                raise UserError(f'{other[0]}: only the refine.* settings can be changed here (the model\'s come with '
                                f'its checkpoint)')
            validate(update_config(self.cfg, parse_overrides(list(refine_overrides)), 'the refine settings'))
        self.refine, self.conf_thr, self.max_people = bool(refine), float(conf_thr), int(max_people)
        # an edge the loader would compute (OpenCV Canny) is computed per crop here, by the model's own estimator
        edge = self.model.edge
        self.loader_edge = edge.module if edge is not None and edge.module.in_loader else None
        faces = self.model.body_model.faces
        self.faces = faces.cpu().numpy() if hasattr(faces, 'cpu') else np.asarray(faces)

    @property
    def info(self):
        """Which checkpoint, and what it was trained on (the demo writes it in every result)."""
        return {'checkpoint': str(self.checkpoint), 'mode': self.cfg.mode, 'trained': self.trained}

    def detect(self, images):
        """[(poses [17x3 per person], whether the detector stopped at max_people)] of each image (RGB arrays or
        image files), by the built-in detector."""
        import cv2
        with tempfile.TemporaryDirectory(prefix='sefd_detect_') as tmp:
            paths = []
            for i, im in enumerate(images):
                if isinstance(im, (str, Path)):
                    paths.append(Path(im))
                    continue
                paths.append(Path(tmp) / f'image_{i}.png')
                cv2.imwrite(str(paths[-1]), np.ascontiguousarray(np.asarray(im)[:, :, ::-1]))
            out = Path(tmp) / 'poses.json'
            detect_people(paths, out, self.max_people)
            found = read_detections(json.loads(out.read_text()), {i: i for i in range(len(paths))})
        return [found.get(i, ([], False)) for i in range(len(paths))]

    def __call__(self, image, poses=None):
        """image: HxWx3 uint8 RGB; poses: [17x3] COCO keypoints per person (image px; score), None: detect them."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise UserError(f'the image must be an HxWx3 uint8 RGB array, got {img.dtype} {list(img.shape)}')
        if poses is None:
            poses = self.detect([img])[0][0]
        H, W = img.shape[:2]
        poses = [usable_keypoints(p, W, H)[0] for p in poses]
        items = [(k, person_inputs(img, kp, self.cfg, self.conf_thr, self.loader_edge)) for k, kp in enumerate(poses)]
        items = [(k, it) for k, it in items if it is not None]
        if not items:
            return Prediction([], Camera.centred(1.0, W, H), img.copy(), np.full((H, W), -1, np.int32), self.faces)
        import torch

        from common.runtime import to_device
        batch = {key: torch.stack([it[0][key] for _, it in items]) for key in items[0][1][0]}
        with torch.no_grad():
            out = self.model(to_device(batch, self.device), mode='test')
        out = {key: v.float().cpu() for key, v in out.items()}
        if not all(torch.isfinite(out[k]).all() for k in ('mesh_cam', 'mesh_cam_render', 'pose', 'shape')):
            raise UserError(f'{self.checkpoint} predicts meshes that are not finite (NaN or inf): use another '
                            f'checkpoint')
        metas = [it[1] for _, it in items]
        meshes, camera = place_meshes(out, metas, self.cfg.model.input_size, self.cfg.model.focal, W, H)
        body = self.model.body_model
        joints = body.regress_joints(torch.from_numpy(meshes).to(body.joint_regressor.device)).cpu().numpy()
        bodies = Bodies(meshes, joints, out['pose'].numpy(), out['shape'].numpy())
        seconds = None
        if self.refine:
            t0 = time.perf_counter()
            bodies = self.refined(bodies, [poses[k] for k, _ in items], [m['box'] for m in metas], camera)
            seconds = time.perf_counter() - t0
        return self.scene(img, items, poses, bodies, camera, out.get('edge'), seconds)

    def refined(self, bodies, keypoints, boxes, camera):
        import torch

        from common.body.fitting import fit_to_keypoints, posed
        from common.body.joint_sets import SMPL30
        body = self.model.body_model
        root = bodies.joints[:, SMPL30.root_idx]
        pose, shape, root, _ = fit_to_keypoints(body, bodies.pose, bodies.shape, root, np.stack(keypoints),
                                                np.array([b[3] for b in boxes]), camera, self.cfg.refine)
        with torch.no_grad():
            verts, joints = posed(body, pose, shape, root)
        return Bodies(verts.cpu().numpy(), joints.cpu().numpy(), pose.cpu().numpy(), shape.cpu().numpy())

    def scene(self, img, items, poses, bodies, camera, edge, seconds):
        """Render all meshes together, measure the criterion per person, assemble the Prediction."""
        from common import vis
        from common.body.joint_sets import COCO17, SMPL30, map_joints
        from common.metrics import mesh_fit_2d
        H, W = img.shape[:2]
        colors = [vis.PALETTE[k % len(vis.PALETTE)] for k, _ in items]
        overlay, ids = vis.render_scene(img, list(bodies.vertices), self.faces, camera, colors)
        coco = map_joints(bodies.joints, SMPL30, COCO17)
        proj = camera.focal[0] * coco[..., :2] / coco[..., 2:] + np.asarray(camera.princpt)
        people = []
        for j, (k, (_, meta)) in enumerate(items):
            mask = ids == j
            people.append(Person(k, poses[k], meta['box'], meta['crop_box'], bodies.vertices[j], bodies.joints[j],
                                 proj[j], bodies.pose[j], bodies.shape[j],
                                 mesh_fit_2d(proj[j], poses[k], meta['box'][3], mask), int(mask.sum())))
        full = None
        if edge is not None:
            full = np.zeros((H, W), np.float32)
            for j, (_, (_, meta)) in enumerate(items):
                full = np.maximum(full, vis.crop_map_to_image(edge[j], meta['bb2img'], W, H))
        return Prediction(people, camera, overlay, ids, self.faces, full, seconds)


# ---------------------------------------------------------------------------------------------- files
def save_prediction(out_dir, name, img, poses, result, info, conf_thr=0.1, obj=True):
    """The files of one image's Prediction in out_dir: <stem>_mesh.jpg (the meshes over the image), _pose2d.jpg (the 2D
    poses, drawn above conf_thr, and the crop boxes), _ids.png (0 none, k the person of the k-th pose), _edge.jpg (a
    student's edge input), _person<k>.obj (with obj) and <stem>.json (people, boxes, camera, fit; info: which model).
    Returns the json's content."""
    from common import vis
    from common.body.joint_sets import COCO17
    from common.io import atomic_write_text
    from common.metrics import pool_fits
    stem = Path(name).stem
    H, W = img.shape[:2]
    t = max(1, round(max(H, W) / 400))
    pose_img = img.copy()
    for k, kp in enumerate(poses):
        kp = usable_keypoints(kp, W, H)[0]
        pose_img = vis.draw_pose(pose_img, kp[:, :2], COCO17.skeleton, kp[:, 2], conf_thr,
                                 color=vis.PALETTE[k % len(vis.PALETTE)], radius=2 + t, thickness=t)
    for p in result.people:
        pose_img = vis.draw_box(pose_img, p.crop_box, vis.PALETTE[p.index % len(vis.PALETTE)], t, f'{p.index + 1}')
    vis.save_image(out_dir / f'{stem}_mesh.jpg', result.overlay)
    vis.save_image(out_dir / f'{stem}_pose2d.jpg', pose_img)
    id_img = np.zeros((H, W), np.uint8)
    for j, p in enumerate(result.people):
        id_img[result.ids == j] = p.index + 1
    vis.save_image(out_dir / f'{stem}_ids.png', np.repeat(id_img[..., None], 3, 2))
    if result.edge is not None:
        vis.save_image(out_dir / f'{stem}_edge.jpg', vis.edge_image(result.edge))
    rnd = (lambda a, d=2: [round(float(v), d) for v in np.asarray(a).reshape(-1)])
    people = []
    for p in result.people:
        path = out_dir / f'{stem}_person{p.index + 1}.obj' if obj else None
        if path is not None:
            write_obj(path, p.vertices, result.faces)
        fit = pool_fits([p.fit])
        people.append({'id': p.index + 1, 'keypoints': [rnd(j) for j in p.keypoints], 'box': rnd(p.box),
                       'crop_box': rnd(p.crop_box), 'root_cam': rnd(p.joints[0], 4), 'pose': rnd(p.pose, 4),
                       'shape': rnd(p.shape, 4), 'pixels': p.pixels, 'obj': path.name if path else None,
                       'fit': {k: fit[k] for k in ('keypoints', 'on_mesh', 'pck', 'err')} |
                              {'height_ratio': p.fit['height_ratio']}})
    summary = {'image': name, 'width': W, 'height': H, 'model': info, 'people': people,
               'camera': {'focal': list(result.camera.focal), 'princpt': list(result.camera.princpt)},
               'fit': pool_fits(p.fit for p in result.people),
               'refine': None if result.refine_seconds is None else {'seconds': round(result.refine_seconds, 3)}}
    atomic_write_text(out_dir / f'{stem}.json', json.dumps(summary, indent=1))
    return summary


def write_obj(path, verts, faces):
    from common.io import atomic_write_text
    lines = [f'# SEFD demo mesh: camera frame (OpenCV axes: x right, y down, z forward), metres; {len(verts)} vertices']
    lines += [f'v {x:.5f} {y:.5f} {z:.5f}' for x, y, z in verts]
    lines += [f'f {a + 1} {b + 1} {c + 1}' for a, b, c in np.asarray(faces)]
    atomic_write_text(path, '\n'.join(lines) + '\n')



def summarise(people):
    """The fit criterion pooled over people (common.metrics.pool_fits)."""
    from common.metrics import pool_fits
    return pool_fits(p.fit for p in people)
