"""The synthetic test split written in the files of SEFD's keypoint benchmarks, so that their loaders and
evaluators (AP, PCKh) run end to end on a machine without OCHuman or LSP.

    python tool/make_data/make_keypoint_benchmarks.py --root data/Synthetic --out output/synthetic_benchmarks
    python main/test.py --ckpt <checkpoint> data.root=output/synthetic_benchmarks data.test_set=OCHuman

Writes, from the test split of a synthetic set (tool/make_data/make_synthetic.py):
- <out>/OCHuman/annotations/ochuman_coco_format_test_range_0.00_1.00.json: every person's GT COCO-17 keypoints (the
  projection of its SMPL joints; v = 2 seen, 1 hidden by someone or something, 0 outside the image), the images under
  <out>/OCHuman/images/, and <out>/OCHuman/data/test_keypoint_detections.json: what the set's simulated detector gave
  for each person (its COCO-17 joints, the score their mean confidence), the samples the protocol takes when present.
- <out>/LSP/joints.mat and images/im1001.jpg ...: the images with one person, in LSP's layout (test split = images
  1001-2000; the first 1000 entries are empty).
"""
import argparse
import json
import shutil

import numpy as np

from common.body.joint_sets import COCO17, LSP14, OPENPOSE18, SMPL30, map_joints
from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import resolve_path
from data.dataset import get_dataset_class
from data.PW3D.PW3D import image_dir, read_annotations
from data.Synthetic.Synthetic import LAYOUT
from main.config import load_config


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', default='data/Synthetic',
                    help='the synthetic set (tool/make_data/make_synthetic.py --out)')
    ap.add_argument('--out', required=True, help='data.root to write OCHuman/ and LSP/ under')
    return ap.parse_args(argv)


def people_keypoints(root):
    """[(image entry, [(annotation, SMPL-30 joints [30,2] image px)])] of the test split."""
    entries, problems = read_annotations(root, 'test', LAYOUT)
    if problems:
        raise UserError(f'{root}: {len(problems)} bad test annotation(s), e.g. {problems[0]}')
    ds = get_dataset_class('Synthetic')(load_config(None, [f'data.root={root.parent}', 'data.test_set=Synthetic']),
                                        'test')
    joints = lambda p: ds.project(ds.smpl_joints(*ds.camera_frame_smpl(p), p.gender), p)  # noqa: E731
    return [(img, [(a, joints(p)) for a, p in pairs]) for img, pairs, _ in entries]


def visibility30(ann, j2d30, img):
    """[30] COCO v per SMPL-30 joint: the visibility the set recorded (OpenPose-18 order; the head top and neck,
    not OpenPose joints, count as seen), or, in sets made before it was recorded, 2 inside the image and 0 outside."""
    inside = (j2d30[:, 0] >= 0) & (j2d30[:, 0] < img['width']) & (j2d30[:, 1] >= 0) & (j2d30[:, 1] < img['height'])
    if 'joint_visibility' not in ann:
        return np.where(inside, 2.0, 0.0)
    vis = map_joints(np.asarray(ann['joint_visibility'], np.float64)[:, None], OPENPOSE18, SMPL30)[:, 0]
    vis[[SMPL30.index('Head_top'), SMPL30.index('Neck')]] = 2
    return np.where(inside, vis, 0.0)


def coco17(j2d30, ann, img):
    """GT COCO-17 keypoints [17,3] (x, y, v)."""
    vis = visibility30(ann, j2d30, img)[:, None]
    return map_joints(np.concatenate([j2d30, vis], 1), SMPL30, COCO17)


def write_ochuman(people, src_images, out):
    images, anns, dets = [], [], []
    for img, pairs in people:
        name = f'{img["sequence"]}/{img["file_name"]}'
        copy(src_images / name, out / 'images' / name)
        images.append({'id': img['id'], 'file_name': name, 'width': img['width'], 'height': img['height']})
        for a, j in pairs:
            k = coco17(j, a, img)
            anns.append({'id': a['id'], 'image_id': img['id'], 'category_id': 1, 'bbox': a['bbox'],
                         'area': a.get('area', a['bbox'][2] * a['bbox'][3]), 'iscrowd': 0, 'keypoints': np.round(k, 2).reshape(-1).tolist(),
                         'num_keypoints': int((k[:, 2] > 0).sum())})
            det = map_joints(np.asarray(a['openpose_result'], np.float64).reshape(18, 3), OPENPOSE18, COCO17)
            if (det[:, 2] > 0).any():
                dets.append({'image_id': img['id'], 'category_id': 1, 'keypoints': np.round(det, 3).reshape(-1).tolist(),
                             'score': round(float(det[det[:, 2] > 0, 2].mean()), 4)})
    cats = [{'id': 1, 'name': 'person', 'keypoints': list(COCO17.joints)}]
    atomic_write_text(out / 'annotations' / 'ochuman_coco_format_test_range_0.00_1.00.json',
                      json.dumps({'images': images, 'annotations': anns, 'categories': cats}))
    atomic_write_text(out / 'data' / 'test_keypoint_detections.json', json.dumps(dets))
    return len(anns), len(dets)


def write_lsp(people, src_images, out):
    import scipy.io
    single = [(img, pairs[0]) for img, pairs in people if len(pairs) == 1][:1000]
    if not single:
        return 0   # no LSP stand-in without a one-person image
    joints = np.zeros((1000 + len(single), 14, 3))
    for n, (img, (a, j)) in enumerate(single):
        vis = visibility30(a, j, img)
        joints[1000 + n, :, :2] = map_joints(j, SMPL30, LSP14)
        joints[1000 + n, :, 2] = map_joints(vis[:, None], SMPL30, LSP14)[:, 0] == 0   # LSP: 1 = occluded/outside
        copy(src_images / img['sequence'] / img['file_name'], out / 'images' / f'im{1001 + n:04d}.jpg')
    out.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(out / 'joints.mat'), {'joints': joints.transpose(2, 1, 0)})
    return len(single)


def copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def main(argv=None):
    args = parse_args(argv)
    root, out = resolve_path(args.root), resolve_path(args.out)
    if root.name != 'Synthetic':   # the loader finds the set as <data.root>/Synthetic
        raise UserError(f'--root {args.root}: give the folder named Synthetic that '
                        f'tool/make_data/make_synthetic.py made')
    people = people_keypoints(root)
    n, d = write_ochuman(people, image_dir(root), out / 'OCHuman')
    s = write_lsp(people, image_dir(root), out / 'LSP')
    print(f'{out / "OCHuman"}: {n} people in {len(people)} images, {d} detections; {out / "LSP"}: {s} one-person images')


if __name__ == '__main__':
    run_cli(main)
