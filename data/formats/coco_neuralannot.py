"""COCO-style keypoint files with NeuralAnnot SMPL fits (MSCOCO, MPII, CrowdPose): one parse, from which both the
tools' scenes and the training records are made.

Fits: {str(annotation id): {smpl_param: {pose, shape, trans}, cam_param: {focal, princpt}}}, each person in its own
virtual camera (Person.focal / princpt); `scene_meshes` brings them into one image.
"""
from pathlib import Path

import numpy as np

from common.pipeline import preprocessing as pre
from data.dataset import Record, add_neighbours
from data.scenes import Person, Scene, camera_of, coco_images, load_json, problem, report_problems, smpl_of

BAD_ENTRY = (KeyError, ValueError, TypeError, IndexError, AttributeError)


def read_annotations(ann_file, fits_file, layout, image_prefix='', swap_wh=False, keep_fit=None):
    """[(image entry, its annotations, {annotation id: Person}, Scene)] and the problems. The people are the
    annotations with a fit (passing keep_fit); an image with a malformed size or fit is skipped whole (its scene
    would miss a person) and named in problems. swap_wh: the file stores width and height swapped."""
    db = load_json(ann_file, layout)
    fits = load_json(fits_file, layout)
    entries, problems = [], []
    for img, anns in coco_images(db, ann_file, layout, problems):
        key = f'image {img["id"]} ({img.get("file_name")})'
        try:
            people = {}
            for a in anns:
                fit, where = fits.get(str(a['id'])), f'{key} annotation {a["id"]}'
                if fit is None or (keep_fit is not None and not keep_fit(fit)):
                    continue
                focal, princpt = camera_of(fit.get('cam_param', {}), where)
                people[a['id']] = Person(*smpl_of(fit['smpl_param'], where), focal, princpt,
                                         np.asarray(a['bbox'], np.float64).reshape(4))
            w, h = (img['height'], img['width']) if swap_wh else (img['width'], img['height'])
            scene = Scene(f'{image_prefix}{img["file_name"]}', int(w), int(h), list(people.values()), key)
        except BAD_ENTRY as e:
            problems.append(problem(key, e))
            continue
        entries.append((img, anns, people, scene))
    return entries, problems


def read_scenes(ann_file, fits_file, layout, image_prefix='', swap_wh=False, keep_fit=None):
    entries, problems = read_annotations(ann_file, fits_file, layout, image_prefix, swap_wh, keep_fit)
    return [scene for *_, scene in entries if scene.people], problems


def keypoints(ann, num_joints, where):
    """COCO `keypoints` (x, y, v flattened) -> [J,3] float64 (x, y, valid = v > 0)."""
    k = np.asarray(ann['keypoints'], np.float64).reshape(num_joints, 3).copy()
    if not np.isfinite(k).all():
        raise ValueError(f'{where}: keypoints contain NaN/inf')
    k[:, 2] = k[:, 2] > 0
    return k


def records(ds, ann_file, fits_file, layout, img_dir, joints_of, image_prefix='', keep_ann=None, keep_fit=None,
            swap_wh=False):
    """Training records of the file for dataset `ds`.

    img_dir: the image folder (image path = img_dir / image_prefix + file_name); joints_of(ann, where) -> [J,3]
    (x, y, valid) in ds.joint_set; keep_ann(ann, joints) -> bool (persons that become samples); keep_fit(fit) ->
    bool (fits that are used). Every kept person of an image can be a PoseFix neighbour of the others (IoU >= 0.1),
    including those whose box is too degenerate to be a sample; the image's scene (on-the-fly overlap edges) is the
    one the tools render.
    """
    entries, problems = read_annotations(ann_file, fits_file, layout, image_prefix, swap_wh, keep_fit)
    out = []
    for img, anns, people, scene in entries:
        recs = []
        for a in anns:
            where = f'{scene.key} annotation {a.get("id")}'
            try:
                joints = joints_of(a, where)
                tight = np.asarray(a['bbox'], np.float32).reshape(4)
            except BAD_ENTRY as e:
                problems.append(problem(where, e))
                continue
            if keep_ann is not None and not keep_ann(a, joints):
                continue
            W, H = scene.width, scene.height
            recs.append(Record(Path(img_dir) / scene.image, (H, W), pre.process_bbox(tight, W, H, train=True), tight,
                               ds.joint_set, joints.astype(np.float32), None, people.get(a['id']), scene=scene,
                               image_rel=scene.image, key=where))
        add_neighbours(recs)
        out += [r for r in recs if r.bbox is not None]
    report_problems(ds.name, problems)
    return out
