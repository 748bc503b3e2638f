"""Meshes of the people in your own photographs (or video), with a trained baseline or student.

    python demo/demo.py --img photo.jpg                      # the quickstart's distilled student, people found
    python demo/demo.py --img folder/ --ckpt output/<experiment>/checkpoint/snapshot_13.pth.tar --gpu
    python demo/demo.py --img folder/ --pose-json poses.json  # 2D poses of any detector, COCO format
    python demo/demo.py --video clip.mp4 --every 2            # every 2nd frame; an overlay video

2D poses: --pose-json takes COCO keypoints (17 joints, x y score) in any of the usual layouts: a COCO file
({"images": [{"id", "file_name"}], "annotations": [{"image_id", "keypoints"}]}), a list of detections
([{"image_id" or "file_name", "keypoints"}], image ids matched to file stems), or {file name: [person, ...]}
(3DCrowdNet's demo: each person 17 x 3 or 51 numbers). Without it, people and their 2D poses are found by
BlazePose (the detector and landmark models inside the mediapipe 0.10.14 wheel, offline; demo/mediapipe_pose.py:
every person the detector sees, on the whole image and on windows, then the landmark model on each person);
its poses are written to <out>/poses_detected.json (reusable with --pose-json).

Each person is cropped as the test loader crops (the box of the 2D pose, x1.2, squared, x1.25; the model's input
size), the model predicts the mesh in the crop's camera (focal model.focal in crop pixels, principal point at the
crop centre), and the mesh is placed in the image through the crop's affine: depth scaled by F / (focal x crop
scale) for one image camera (focal F, principal point at the image centre), so all meshes render in one pass in
depth order. Writes to --out (default output/demo/<time>), per image: <name>_mesh.jpg (all meshes over the image),
<name>_pose2d.jpg (2D poses and boxes), <name>_edge.jpg (a student's edge input, put back in the image),
<name>_ids.png (which person each pixel shows: 0 none, k for the k-th person), <name>_person<k>.obj (camera frame,
metres), <name>.json (people, boxes, camera).
"""
import argparse
import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from common.errors import UserError, run_cli
from common.paths import ROOT
from tool.quickstart import default_student_checkpoint

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MEDIAPIPE_DIR = Path(os.environ.get('SEFD_MEDIAPIPE_DIR')
                     or Path.home() / '.cache' / 'sefd' / 'blazepose-mediapipe-0.10.14')
log = logging.getLogger('sefd')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--img', help='an image, or a folder of images')
    src.add_argument('--video', help='a video file (frames decoded with OpenCV)')
    ap.add_argument('--ckpt', default='', help='checkpoint file or experiment folder (default: the distilled student '
                                               'of the newest finished tool/quickstart.py run)')
    ap.add_argument('--pose-json', default='', help='2D poses (COCO keypoints) instead of the built-in detector')
    ap.add_argument('--out', default='', help='output folder (default output/demo/<YYYYmmdd-HHMMSS>)')
    ap.add_argument('--gpu', nargs='?', const='0', default='', help='run the model on a GPU (id, default 0)')
    ap.add_argument('--conf-thr', type=float, default=0.1, help='2D joints at or below this score are masked out')
    ap.add_argument('--max-people', type=int, default=10, help='people the detector looks for per image')
    ap.add_argument('--every', type=int, default=1, help='video: every N-th frame')
    ap.add_argument('--max-frames', type=int, default=0, help='video: at most this many frames (0: all)')
    ap.add_argument('--no-obj', action='store_true', help='no .obj files (the default for videos)')
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------- inputs
def list_images(spec):
    """[(name, path)] of --img: one file, or the images of a folder (sorted)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not files:
            raise UserError(f'--img {spec}: no images ({", ".join(IMAGE_EXTS)}) in this folder')
        return [(p.name, p) for p in files]
    if not path.exists():
        raise UserError(f'--img {spec}: no such file or folder')
    return [(path.name, path)]


def read_images(items, single):
    """{name: RGB uint8} of the readable images; an unreadable one is an error (one file) or a warning (a folder)."""
    from common.pipeline import preprocessing as pre
    out = {}
    for name, path in items:
        try:
            out[name] = pre.load_img(path)
        except pre.BadSample as e:
            if single:
                raise UserError(f'cannot read image {path}: {e.reason}') from None
            print(f'warning: skipped {path}: {e.reason}', file=sys.stderr)
    if not out:
        raise UserError(f'none of the {len(items)} image(s) could be read ({items[0][1]}, ...)')
    return out


def video_frames(path, out_dir, every, max_frames):
    """Decode a video's frames to out_dir/frames/frame_<k>.jpg; [(name, path)] and the frame rate."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    if not Path(path).is_file() or not cap.isOpened():
        raise UserError(f'cannot read video {path}: no such file, or not a format OpenCV can decode')
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames_dir = out_dir / 'frames'
    frames_dir.mkdir(parents=True, exist_ok=True)
    items, k = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if k % every == 0:
            p = frames_dir / f'frame_{k:06d}.jpg'
            cv2.imwrite(str(p), frame)
            items.append((p.name, p))
            if max_frames and len(items) >= max_frames:
                break
        k += 1
    cap.release()
    if not items:
        raise UserError(f'cannot read video {path}: no frame could be decoded')
    return items, fps / every


# ---------------------------------------------------------------------------------------------- 2D poses
def _keypoints(person, where):
    kp = person.get('keypoints', person.get('coco_joints')) if isinstance(person, dict) else person
    try:
        a = np.asarray(kp, np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f'{where}: keypoints are not numbers') from None
    if a.size == 34:   # x, y without scores
        a = np.concatenate([a.reshape(17, 2), np.ones((17, 1), np.float32)], 1).reshape(-1)
    if a.size != 51:
        raise UserError(f'{where}: {a.size} keypoint values; expected 17 COCO joints x (x, y, score) = 51')
    return a.reshape(17, 3)


def _names(key):
    p = Path(str(key))
    return {str(key), p.name, p.stem}


def read_pose_json(path, names):
    """{image name: [17x3 COCO keypoints per person]} from a COCO-format file, for the given image names."""
    path = Path(path)
    try:
        db = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f'--pose-json {path}: no such file') from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f'--pose-json {path}: not valid JSON ({str(e).splitlines()[0]})') from None
    entries = []   # (image key candidates, person)
    if isinstance(db, dict) and 'annotations' in db:
        files = {img.get('id'): img.get('file_name', '') for img in db.get('images', []) if isinstance(img, dict)}
        for a in db['annotations']:
            iid = a.get('image_id')
            entries.append((_names(files[iid]) if iid in files else _names(iid), a))
    elif isinstance(db, list):
        for a in db:
            if not isinstance(a, dict):
                raise UserError(f'--pose-json {path}: a list must hold detections {{"image_id", "keypoints"}}')
            key = next((a[k] for k in ('file_name', 'image', 'img_name', 'image_id') if k in a), None)
            entries.append((_names(key), a))
    elif isinstance(db, dict):
        for key, people in db.items():
            people = people.get('people', people.get('annotations', [])) if isinstance(people, dict) else people
            if isinstance(people, list) and people and not isinstance(people[0], (list, dict)):
                people = [people]   # one person given as a flat list
            for person in people or []:
                entries.append((_names(key), person))
    else:
        raise UserError(f'--pose-json {path}: expected COCO keypoints (a COCO file, a list of detections or '
                        f'{{image: [people]}})')
    out = {n: [] for n in names}
    matched = set()
    lookup = {}
    for n in names:
        for cand in _names(n):
            lookup.setdefault(cand, n)
    for k, (cands, person) in enumerate(entries):
        hit = next((lookup[c] for c in cands if c in lookup), None)
        if hit is None and len(names) == 1 and len({frozenset(c) for c, _ in entries}) == 1 and \
                all(c.lstrip('-').isdigit() for c in cands):
            hit = names[0]   # one image, the poses of one numeric image id: that id need not be the file's stem
        if hit is not None:
            out[hit].append(_keypoints(person, f'--pose-json {path}: person {k} of image {sorted(cands)[0]}'))
            matched.add(hit)
    if entries and not matched:
        theirs = sorted({sorted(c)[0] for c, _ in entries})[:3]
        raise UserError(f'--pose-json {path} does not match the images: it has poses for {", ".join(theirs)}'
                        f'{", ..." if len(entries) > 3 else ""}, none for {", ".join(names[:3])}'
                        f'{", ..." if len(names) > 3 else ""} (name each image by its file name or stem)')
    if not entries:
        print(f'warning: --pose-json {path} holds no poses: no people in any image', file=sys.stderr)
    for n in names:
        if n not in matched and entries:
            print(f'warning: --pose-json {path} has no entry for {n}: no people there', file=sys.stderr)
    return out


def detect_people(paths, out_json, max_people):
    """Every person in each image and their 2D pose (demo/mediapipe_pose.py in a subprocess, with the folder
    requirements.sh unpacked the mediapipe 0.10.14 models and ai-edge-litert into first on its path)."""
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


# ---------------------------------------------------------------------------------------------- model
def load_model(path, device):
    from common.paths import resolve_path
    from main.checkpoint import model_from_checkpoint
    model, cfg, ckpt, path = model_from_checkpoint(resolve_path(path))
    if cfg.mode == 'teacher':
        raise UserError(f'{path} is a teacher: it sees the SMPL overlap edge rendered from ground-truth meshes, '
                        f'which a photograph does not have; use a student or a baseline checkpoint')
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
    camera frame, F, principal point)."""
    mesh_rel = out['mesh_cam'].float().cpu().numpy()
    root = (out['mesh_cam_render'] - out['mesh_cam'])[:, 0].float().cpu().numpy()   # [N,3] crop camera
    f_crop = np.asarray(focal, np.float64)
    f_img = np.stack([f_crop * np.array([m['bb2img'][0, 0], m['bb2img'][1, 1]]) for m in metas])  # [N,2]
    F = float(np.median(f_img[:, 0]))
    c = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    meshes = []
    for i, m in enumerate(metas):
        # the root's pixel in the crop, then in the image (the crop's affine has no rotation at test time)
        uv_crop = f_crop * root[i, :2] / root[i, 2] + S / 2.0
        uv = m['bb2img'][:, :2] @ uv_crop + m['bb2img'][:, 2]
        z = root[i, 2] * F / f_img[i, 0]
        xy = (uv - c) * z / F
        meshes.append(mesh_rel[i] + np.array([xy[0], xy[1], z], np.float32))
    return np.stack(meshes) if meshes else np.zeros((0, 0, 3), np.float32), F, tuple(c)


def write_obj(path, verts, faces):
    from common.io import atomic_write_text
    lines = [f'# SEFD demo mesh: camera frame (OpenCV axes: x right, y down, z forward), metres; {len(verts)} vertices']
    lines += [f'v {x:.5f} {y:.5f} {z:.5f}' for x, y, z in verts]
    lines += [f'f {a + 1} {b + 1} {c + 1}' for a, b, c in np.asarray(faces)]
    atomic_write_text(path, '\n'.join(lines) + '\n')


def process_image(name, img, people, model, cfg, device, out_dir, args, loader_edge, model_info):
    """Everything for one image; returns its summary dict and the mesh overlay. model_info: which checkpoint,
    and what it was trained on (written in the image's json)."""
    import torch

    from common import vis
    from common.body.joint_sets import COCO17
    from common.runtime import to_device
    stem = Path(name).stem
    H, W = img.shape[:2]
    items = [(k, person_inputs(img, kp, cfg, args.conf_thr, loader_edge)) for k, kp in enumerate(people)]
    items = [(k, it) for k, it in items if it is not None]
    summary = {'image': name, 'width': W, 'height': H, 'model': model_info, 'people': []}
    pose_img = img.copy()
    t = max(1, round(max(H, W) / 400))
    for k, kp in enumerate(people):
        pose_img = vis.draw_pose(pose_img, kp[:, :2], COCO17.skeleton, kp[:, 2], args.conf_thr,
                                 color=vis.PALETTE[k % len(vis.PALETTE)], radius=2 + t, thickness=t)
    if not items:
        vis.save_image(out_dir / f'{stem}_mesh.jpg', img)
        vis.save_image(out_dir / f'{stem}_pose2d.jpg', pose_img)
        vis.save_image(out_dir / f'{stem}_ids.png', np.zeros((H, W), np.uint8)[..., None].repeat(3, 2))
        return summary, img
    batch = {key: torch.stack([it[0][key] for _, it in items]) for key in items[0][1][0]}
    with torch.no_grad():
        out = model(to_device(batch, device), mode='test')
    out = {key: v.float().cpu() for key, v in out.items()}
    metas = [it[1] for _, it in items]
    S = cfg.model.input_size
    meshes, F, c = place_meshes(out, metas, S, cfg.model.focal, W, H)
    faces = model.body_model.faces
    faces = faces.cpu().numpy() if hasattr(faces, 'cpu') else np.asarray(faces)
    colors = [vis.PALETTE[k % len(vis.PALETTE)] for k, _ in items]
    overlay, ids = vis.render_scene(img, list(meshes), faces, (F, F), c, colors)
    vis.save_image(out_dir / f'{stem}_mesh.jpg', overlay)
    id_img = np.zeros((H, W), np.uint8)
    for j, (k, _) in enumerate(items):
        id_img[ids == j] = k + 1
    vis.save_image(out_dir / f'{stem}_ids.png', np.repeat(id_img[..., None], 3, 2))
    for j, (k, it) in enumerate(items):
        pose_img = vis.draw_box(pose_img, it[1]['crop_box'], vis.PALETTE[k % len(vis.PALETTE)], t, f'{k + 1}')
    vis.save_image(out_dir / f'{stem}_pose2d.jpg', pose_img)
    if 'edge' in out:
        full = np.zeros((H, W), np.float32)
        for j, (_, it) in enumerate(items):
            full = np.maximum(full, vis.crop_map_to_image(out['edge'][j], it[1]['bb2img'], W, H))
        vis.save_image(out_dir / f'{stem}_edge.jpg', vis.edge_image(full))
    for j, (k, it) in enumerate(items):
        obj = None
        if not args.no_obj:
            obj = out_dir / f'{stem}_person{k + 1}.obj'
            write_obj(obj, meshes[j], faces)
        summary['people'].append({
            'id': k + 1, 'keypoints': [[round(float(v), 2) for v in j] for j in people[k]],
            'box': [round(float(v), 2) for v in it[1]['box']],
            'crop_box': [round(float(v), 2) for v in it[1]['crop_box']],
            'root_cam': [round(float(v), 4) for v in meshes[j][0] - out['mesh_cam'][j, 0].numpy()],
            'pixels': int((ids == j).sum()), 'obj': obj.name if obj else None})
    summary['camera'] = {'focal': [F, F], 'princpt': list(c)}
    from common.io import atomic_write_text
    atomic_write_text(out_dir / f'{stem}.json', json.dumps(summary, indent=1))
    return summary, overlay


def main(argv=None):
    args = parse_args(argv)
    import torch

    from common.logger import setup_logger
    setup_logger(level=logging.WARNING)  # the model's build messages are noise here; warnings still show
    if args.gpu and not args.gpu.split(',')[0].strip().isdigit():
        raise UserError(f'--gpu {args.gpu!r}: give one GPU id, e.g. --gpu 0')
    if args.gpu and not torch.cuda.is_available():
        raise UserError('--gpu: torch sees no GPU; drop --gpu to run on the CPU')
    device = torch.device('cuda', int(args.gpu.split(',')[0])) if args.gpu else torch.device('cpu')
    ckpt = args.ckpt or default_student_checkpoint()
    items = None if args.video else list_images(args.img)   # a wrong --img fails before the model loads
    model, cfg, ckpt_path, (trained, synthetic_only) = load_model(ckpt, device)
    out_dir = Path(args.out).expanduser() if args.out else \
        ROOT / 'output' / 'demo' / datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    out_dir = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    fps, created = None, not out_dir.exists()
    try:
        if args.video:
            out_dir.mkdir(parents=True, exist_ok=True)   # the frames are written there
            items, fps = video_frames(args.video, out_dir, max(1, args.every), args.max_frames)
            args.no_obj = True if not args.no_obj else args.no_obj
        images = read_images(items, single=len(items) == 1 and not args.video)
        names = list(images)
        paths = dict(items)
        poses = read_pose_json(args.pose_json, names) if args.pose_json else None
    except BaseException:   # bad input: no folder of decoded frames (or an empty one) left behind
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    out_dir.mkdir(parents=True, exist_ok=True)   # inputs read: no empty folder for a bad one
    if poses is None:
        # the detector writes COCO keypoints: read back as any --pose-json
        poses = read_pose_json(detect_people([paths[n] for n in names], out_dir / 'poses_detected.json',
                                             args.max_people), names)
    # an edge the loader would compute (OpenCV Canny) is computed per crop here, by the model's own estimator
    loader_edge = model.edge.module if model.edge is not None and model.edge.module.in_loader else None
    model_info = {'checkpoint': str(ckpt_path), 'mode': cfg.mode, 'trained': trained}
    from tqdm import tqdm
    overlays = []
    for name in tqdm(names, desc='demo', unit='img', disable=len(names) < 3):
        summary, overlay = process_image(name, images[name], poses.get(name, []), model, cfg, device, out_dir, args,
                                         loader_edge, model_info)
        if args.video:
            overlays.append(overlay)
        n = len(summary['people'])
        if len(names) <= 20:
            print(f'{name}: {n} {"person" if n == 1 else "people"}')
    if args.video and overlays:
        write_video(out_dir / f'{Path(args.video).stem}_mesh.mp4', overlays, fps)
    print(f'model {ckpt_path} ({cfg.mode}, {cfg.model.backbone} {cfg.model.input_size} px, {trained}); '
          f'results in {out_dir}')
    if synthetic_only:
        print('note: this model has seen only the synthetic crowd set (minutes of training on procedural people): '
              'on photographs its 2D poses and boxes are right, its meshes mean-like; for real results give --ckpt a '
              'published 3DCrowdNet or SEFD snapshot (README, Demo)')
    return out_dir


def write_video(path, frames, fps):
    import cv2
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), float(fps or 25.0), (w, h))
    for f in frames:
        wr.write(np.ascontiguousarray(f[:, :, ::-1]))
    wr.release()


def cli():
    """The console script sefd-demo (pyproject.toml): main() with one-line errors."""
    run_cli(main)


if __name__ == '__main__':
    cli()
