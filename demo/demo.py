"""Meshes of the people in your own photographs (or video), with a trained baseline or student.

    python demo/demo.py --img photo.jpg                      # the default model, people found by the detector
    python demo/demo.py --img folder/ --ckpt output/<experiment>/checkpoint/snapshot_13.pth.tar --gpu
    python demo/demo.py --img folder/ --pose-json poses.json  # 2D poses of any detector, COCO format
    python demo/demo.py --img photo.jpg --refine              # + fit each SMPL to its 2D keypoints
    python demo/demo.py --img photo.jpg --refine refine.iters=200 refine.w_net=0.01   # the fit's settings
    python demo/demo.py --video clip.mp4 --every 2            # every 2nd frame; an overlay video

The default model is output/default_model/model.pth.tar (tool/quickstart.py puts its distilled student there; any
checkpoint of this project can be copied there). 2D poses: --pose-json takes COCO keypoints (17 joints, x y score)
in any of the usual layouts: a COCO file ({"images": [{"id", "file_name"}], "annotations": [{"image_id",
"keypoints"}]}), a list of detections ([{"image_id" or "file_name", "keypoints"}], image ids matched to file stems),
or {file name: [person, ...]} (3DCrowdNet's demo: each person 17 x 3 or 51 numbers). Without it, people and their
2D poses are found by BlazePose (the detector and landmark models inside the mediapipe 0.10.14 wheel, offline;
demo/mediapipe_pose.py); its poses are written to <out>/poses_detected.json (reusable with --pose-json).

The meshes come from main/predictor.py (MeshPredictor: the same code as a library). For every person the demo
measures how well the mesh sits on them (common/metrics.py mesh_fit_2d, against the keypoints scored above 0.5):
the share of keypoints on the person's rendered mesh (grown by 3% of the box height), PCK at 10% of the box
height, the mean error in % of it, and the mesh's projected height over the keypoints' (people with head and feet
in view); it prints them per image and overall and writes them in each json. Writes to --out (default
output/demo/<time>), per image: <name>_mesh.jpg (all meshes over the image), <name>_pose2d.jpg (2D poses and
boxes), <name>_edge.jpg (a student's edge input, put back in the image), <name>_ids.png (which person each pixel
shows: 0 none, k for the k-th person), <name>_person<k>.obj (camera frame, metres), <name>.json (people, boxes,
camera, fit).
"""
import argparse
import datetime
import json
import logging
import math
import shutil
import sys
from pathlib import Path

import numpy as np

from common.errors import UserError, run_cli
from common.paths import ROOT

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--img', help='an image, or a folder of images')
    src.add_argument('--video', help='a video file (frames decoded with OpenCV)')
    ap.add_argument('--ckpt', default='', help='checkpoint file or experiment folder (default: '
                                               'output/default_model/model.pth.tar)')
    ap.add_argument('--pose-json', default='', help='2D poses (COCO keypoints) instead of the built-in detector')
    ap.add_argument('--out', default='', help='output folder (default output/demo/<YYYYmmdd-HHMMSS>)')
    ap.add_argument('--gpu', nargs='?', const='0', default='', help='run the model on a GPU (id, default 0)')
    ap.add_argument('--refine', action='store_true', help='fit each SMPL to its 2D keypoints (SMPLify-style)')
    ap.add_argument('--conf-thr', type=float, default=0.1, help='2D joints at or below this score are masked out')
    ap.add_argument('--max-people', type=int, default=10, help='people the detector looks for per image')
    ap.add_argument('--every', type=int, default=1, help='video: every N-th frame')
    ap.add_argument('--max-frames', type=int, default=0, help='video: at most this many frames (0: all)')
    ap.add_argument('--no-obj', action='store_true', help='no .obj files (the default for videos)')
    ap.add_argument('overrides', nargs='*', metavar='refine.KEY=VALUE', help='settings of --refine (main/config.py '
                                                                             'RefineConfig)')
    args = ap.parse_args(argv)
    if not (math.isfinite(args.conf_thr) and 0 <= args.conf_thr < 1):
        raise UserError(f'--conf-thr must be a score in [0, 1), got {args.conf_thr}')
    for flag, low in (('max_people', 1), ('every', 1), ('max_frames', 0)):
        if getattr(args, flag) < low:
            raise UserError(f'--{flag.replace("_", "-")} must be >= {low}, got {getattr(args, flag)}')
    if args.overrides and not args.refine:
        raise UserError(f'{args.overrides[0]}: settings of the refinement need --refine')
    return args


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
                raise UserError(f'cannot read image {path}: {e.reason}') from e
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
        a = np.asarray(kp, np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise UserError(f'{where}: keypoints are not numbers') from e
    if not np.isfinite(a).all():
        raise UserError(f'{where}: keypoints that are not finite numbers (NaN or inf)')
    if a.size == 34:   # x, y without scores
        a = np.concatenate([a.reshape(17, 2), np.ones((17, 1))], 1).reshape(-1)
    if a.size != 51:
        raise UserError(f'{where}: {a.size} keypoint values; expected 17 COCO joints x (x, y, score) = 51')
    return a.reshape(17, 3).astype(np.float32)


def _names(key):
    p = Path(str(key))
    return {str(key), p.name, p.stem}


def read_pose_json(path, names):
    """{image name: [17x3 COCO keypoints per person]} from a COCO-format file (--pose-json), for the given image
    names."""
    path = Path(path)
    try:
        db = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f'--pose-json {path}: no such file') from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f'--pose-json {path}: not valid JSON ({str(e).splitlines()[0]})') from e
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


def fit_text(fit):
    """One line of the fit criterion (common.metrics.pool_fits' dict)."""
    if not fit['keypoints']:
        return 'fit: no keypoint above 0.5'
    pct = (lambda v: '-' if v is None else f'{100 * v:.0f}%')
    size = f', height {fit["height_ratio"]:.2f} ({fit["in_range"]}/{fit["sized"]} in 0.8-1.25)' if fit['sized'] else ''
    return (f'fit: {pct(fit["on_mesh"])} of {fit["keypoints"]} keypoints on their mesh, PCK@0.1 {pct(fit["pck"])}, '
            f'error {100 * fit["err"]:.1f}% of the box height{size}')


def main(argv=None):
    args = parse_args(argv)
    from common.logger import setup_logger
    from main.predictor import MeshPredictor, gpu_device
    setup_logger(level=logging.WARNING)  # the model's build messages are noise here; warnings still show
    device = gpu_device(args.gpu)
    items = None if args.video else list_images(args.img)   # a wrong --img fails before the model loads
    predictor = MeshPredictor(args.ckpt or None, device, refine=args.refine, refine_overrides=args.overrides,
                              conf_thr=args.conf_thr, max_people=args.max_people)
    out_dir = Path(args.out).expanduser() if args.out else \
        ROOT / 'output' / 'demo' / datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    out_dir = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    created = not out_dir.exists()
    try:   # a bad input, a failure, an interrupt: no folder of this run (or an empty one) left behind
        run(args, predictor, items, out_dir)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out_dir


def run(args, predictor, items, out_dir):
    from tqdm import tqdm

    from common.metrics import pool_fits
    from main.predictor import detect_people, read_detections, save_prediction
    fps = None
    if args.video:
        out_dir.mkdir(parents=True, exist_ok=True)   # the frames are written there
        items, fps = video_frames(args.video, out_dir, args.every, args.max_frames)
        args.no_obj = True
    images = read_images(items, single=len(items) == 1 and not args.video)
    names = list(images)
    paths = dict(items)
    poses = read_pose_json(args.pose_json, names) if args.pose_json else None
    out_dir.mkdir(parents=True, exist_ok=True)   # inputs read: no empty folder for a bad one
    capped = set()
    if poses is None:
        found = read_detections(json.loads(detect_people([paths[n] for n in names], out_dir / 'poses_detected.json',
                                                         args.max_people).read_text()), dict(enumerate(names)))
        poses = {n: found.get(n, ([], False))[0] for n in names}
        capped = {n for n in names if found.get(n, ([], False))[1]}
        if not any(poses.values()):
            print(f'warning: the detector found nobody in {"the images" if len(names) > 1 else names[0]}',
                  file=sys.stderr)
    overlays, fits, seconds = [], [], []
    quiet = len(names) > 20
    for name in tqdm(names, desc='demo', unit='img', disable=not quiet):   # else a line per image
        img = images[name]
        result = predictor(img, poses.get(name, []))
        summary = save_prediction(out_dir, name, img, poses.get(name, []), result, predictor.info, args.conf_thr,
                                  obj=not args.no_obj)
        if args.video:
            overlays.append(result.overlay)
        fits += [p.fit for p in result.people]
        if result.refine_seconds is not None and result.people:
            seconds.append((result.refine_seconds, len(result.people)))
        n = len(result.people)
        if name in capped:
            print(f'warning: {name}: the detector stopped at --max-people {args.max_people}; there may be more '
                  f'people (raise --max-people)', file=sys.stderr)
        if not quiet:
            print(f'{name}: {n} {"person" if n == 1 else "people"}' + (f'; {fit_text(summary["fit"])}' if n else ''))
    if args.video and overlays:
        write_video(out_dir / f'{Path(args.video).stem}_mesh.mp4', overlays, fps)
    if len(names) > 1:
        print(f'all {len(names)} images: {len(fits)} people; {fit_text(pool_fits(fits))}')
    if seconds:
        total, people = sum(s for s, _ in seconds), sum(n for _, n in seconds)
        print(f'refine: {total / people:.2f} s per person ({people} people, {total:.1f} s, {predictor.device})')
    cfg = predictor.cfg
    print(f'model {predictor.checkpoint} ({cfg.mode}, {cfg.model.backbone} {cfg.model.input_size} px, '
          f'{predictor.trained}); results in {out_dir}')
    if predictor.synthetic_only:
        print('note: this model has seen only the synthetic crowd set (minutes of training on procedural people): '
              'on photographs its 2D poses and boxes are right, its meshes mean-like (--refine fits them to the 2D '
              'poses); for real results give --ckpt a published 3DCrowdNet or SEFD snapshot (docs/checkpoints.md)')


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
