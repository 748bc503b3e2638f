"""Scenes: the SMPL people of one image with their cameras, as any dataset's annotations give them.

Every dataset module has `read_scenes(root, split) -> list[Scene]`; rendering overlap edges (offline with
tool/make_data/make_overlap_edges.py, or on the fly in the loaders) works on scenes only, so it needs no knowledge
of the formats. Overlap-edge files live beside the images they belong to, one rule for every dataset:

    <dataset root>/overlap_edges/<image path relative to the image folder, suffix .png>

e.g. data/PW3D/overlap_edges/courtyard_hug_00/image_00012.png, data/MSCOCO/overlap_edges/train2017/000000000036.png.

SEFD's distributed maps keep their published names and folders (`sefd_edge_paths`), beside the images as in its
release; `find_edge_file` looks for ours first, then for those.
"""
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import List, Optional

import numpy as np

from common.camera import Camera
from common.errors import UserError
from common.registry import closest

EDGE_DIR = 'overlap_edges'


@dataclass
class Person:
    pose: np.ndarray              # [72] SMPL axis-angle
    shape: np.ndarray             # [10]
    trans: np.ndarray             # [3] metres
    focal: tuple                  # (fx, fy) px of the camera this person's parameters live in
    princpt: tuple                # (cx, cy) px
    bbox: np.ndarray              # [4] x, y, w, h in image px (decides the edge dilation)
    gender: str = 'neutral'
    cam_R: Optional[np.ndarray] = None   # world -> camera rotation when the parameters are in a world frame
    cam_t: Optional[np.ndarray] = None   # (Human3.6M), metres


def inside_path(name, key=''):
    """An annotation's path below a dataset folder; ValueError (the entry is skipped and named) for one that would
    leave it: absolute, with a drive, or climbing out with '..'. Every image and edge path is made from these."""
    text = str(name)
    parts = PurePosixPath(text.replace('\\', '/')).parts
    if not text or text.startswith(('/', '\\')) or PureWindowsPath(text).drive or '..' in parts:
        raise ValueError(f'{key}: path {text!r} leaves the dataset folder (absolute or with ..): refused')
    return text


@dataclass
class Scene:
    image: str                    # image path relative to the dataset's image folder
    width: int
    height: int
    people: List[Person] = field(default_factory=list)
    key: str = ''                 # a readable id for messages (image id / annotation ids)

    def __post_init__(self):
        inside_path(self.image, self.key)


def group_by_image(annotations, keep=None):
    """{image_id: [annotations]} (those passing `keep`), in file order."""
    out = {}
    for ann in annotations:
        if keep is None or keep(ann):
            out.setdefault(ann['image_id'], []).append(ann)
    return out


def report_problems(name, problems, limit=5):
    """One warning for the bad annotations a loader skipped (how many, and the first few)."""
    if problems:
        logging.getLogger('sefd').warning(f'{name}: skipped {len(problems)} bad annotation(s), e.g. '
                                          + '; '.join(problems[:limit]))


def check_split(name, split, splits):
    if split not in splits:
        raise UserError(f'{name} has no split {split!r}{closest(split, splits)}; splits: {", ".join(splits)}')


def coco_images(db, path, layout, problems):
    """(image entry, its annotations) of every annotated image of a COCO-style file (annotation order); annotations
    that are not objects with an image_id, or whose image is not listed, are named in problems."""
    if not (isinstance(db, dict) and isinstance(db.get('images'), list) and isinstance(db.get('annotations'), list)):
        raise UserError(f'{path} is not a COCO-style file with "images" and "annotations" lists; expected layout: '
                        f'{layout}')
    images = {img.get('id'): img for img in db['images'] if isinstance(img, dict)}
    anns = unique_people([a for a in db['annotations'] if isinstance(a, dict) and 'image_id' in a], problems)
    problems += [f'annotation {a!r:.60}: not an object with an image_id' for a in db['annotations']
                 if not (isinstance(a, dict) and 'image_id' in a)]
    for iid, group in group_by_image(anns).items():
        if iid in images:
            yield images[iid], group
        else:
            problems.append(f'annotation(s) {[a.get("id") for a in group][:3]}: image id {iid} not in the images list')


def unique_people(anns, problems):
    """The annotations with each person once: a repeated annotation id, or the same box in the same image again
    under another id, is dropped and named in problems (scored twice, it would weigh twice in every mean)."""
    seen, out = set(), []
    for a in anns:
        box = a.get('bbox')
        try:
            box = tuple(float(v) for v in box) if box is not None and float(box[2]) * float(box[3]) > 0 else None
        except (TypeError, ValueError, IndexError):
            box = None   # a malformed box is the loader's to name
        keys = [('id', repr(a['id']))] if 'id' in a else []
        keys += [('box', repr(a['image_id']), box)] if box is not None else []
        if any(k in seen for k in keys):
            problems.append(f'annotation {a.get("id")} of image {a["image_id"]}: the same person as an earlier '
                            f'annotation (same id or box): counted once')
            continue
        seen.update(keys)
        out.append(a)
    return out


def problem(key, err):
    """One line for a malformed entry: ValueErrors already name the entry, a missing key gets named here."""
    return str(err) if isinstance(err, ValueError) else f'{key}: missing or bad field {err}'


def edge_path(root, image_rel):
    return Path(root) / EDGE_DIR / Path(image_rel).with_suffix('.png')


SEFD_PREFIX = 'SMPL_overlap_edge_'   # the name SEFD's tools write; its loaders read the bare image name
SEFD_EDGE_DATASETS = ('PW3D', 'Synthetic', 'Human36M', 'MuCo', 'MSCOCO', 'MPII')
SEFD_H36M = re.compile(r's_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)_(\d+)$')


def _sefd_names(folders, rel_dir, name):
    """folder/rel_dir/name as its loader reads it, then with the tools' prefix, for each folder."""
    return [f / rel_dir / n for f in folders for n in (name, SEFD_PREFIX + name)]


def sefd_edge_paths(dataset, root, image_rel, split=''):
    """SEFD's overlap-edge files for one image (JPEG, full frame, as SEFD's tools write them), most likely first: the
    first is where `tool/make_data/make_overlap_edges.py --layout sefd` writes. [] for a dataset SEFD has none for.

    3DPW (and the synthetic set): SMPL_overlap_edge1 (test, as distributed) / SMPL_overlap_edge2 (its loader's
      other folder) / SMPL_overlap_edge (its tool's) beside imageFiles, then <sequence>/<file>.
    Human3.6M: SMPL_edge/s_S_act_A_subact_B_ca_C/SMPL_edge_s_S_act_A_subact_B_ca_C_<frame>.jpg, integers
      unpadded, frame 0-based (the image number - 1). SEFD's files there hold the person's own edges (its tool
      renders one person); an overlap map of one person, ours, is empty.
    MuCo: SMPL_overlap_edge/<file_name>. MSCOCO: images/SMPL_overlap_edge/<file>. MPII: SMPL_overlap_edge/<file>
      beside images/ (data/ here).
    """
    root, rel = Path(root), Path(image_rel)
    if dataset in ('PW3D', 'Synthetic'):
        inner = (root / 'data' / 'imageFiles').is_dir()   # 3DCrowdNet keeps imageFiles in data/, SEFD beside it
        bases = [root / 'data', root] if inner else [root, root / 'data']
        first = 'SMPL_overlap_edge1' if split in ('test', '') else 'SMPL_overlap_edge2'
        names = [first] + [n for n in ('SMPL_overlap_edge1', 'SMPL_overlap_edge2', 'SMPL_overlap_edge') if n != first]
        return _sefd_names([b / n for b in bases for n in names], rel.parent, rel.name)
    if dataset == 'Human36M':
        m = SEFD_H36M.match(rel.stem)
        if m is None:
            return []
        s, a, b, c, frame = (int(x) for x in m.groups())
        seq = f's_{s}_act_{a}_subact_{b}_ca_{c}'
        # 'SNPL_edge' is the folder name in SEFD's directory.md (a typo of its code's SMPL_edge)
        return [root / d / seq / f'SMPL_edge_{seq}_{frame - 1}.jpg' for d in ('SMPL_edge', 'SNPL_edge')]
    if dataset == 'MuCo':
        return _sefd_names([root / 'SMPL_overlap_edge'], rel.parent, rel.name)
    if dataset == 'MSCOCO':
        return _sefd_names([root / 'images' / 'SMPL_overlap_edge'], Path(), rel.name)
    if dataset == 'MPII':
        return _sefd_names([root / 'data' / 'SMPL_overlap_edge', root / 'SMPL_overlap_edge'], Path(), rel.name)
    return []


def find_edge_file(dataset, root, image_rel):
    """(the overlap-edge file of an image: ours, else SEFD's, or None; the paths looked at)."""
    tried = [edge_path(root, image_rel)] + sefd_edge_paths(dataset, root, image_rel)
    return next((p for p in tried if p.is_file()), None), tried


def load_json(path, layout_hint):
    """json.load with errors that name the file and the expected layout."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'missing annotation file {path}; expected layout: {layout_hint}')
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f'annotation file {path} is not valid JSON ({e}); re-download or regenerate it') from e


def box_of(value, where):
    """An annotation's box (x, y, w, h) as float64 [4]; ValueError naming `where` unless it is 4 finite numbers (a NaN
    box would become a crop of most of the image)."""
    box = np.asarray(value, np.float64).reshape(4)
    if not np.isfinite(box).all():
        raise ValueError(f'{where}: bbox {box.tolist()} is not 4 finite numbers')
    return box


def camera_of(entry, where):
    """(focal, princpt) from a dict with focal/princpt, f/c, or intrinsic [fx,fy,cx,cy]; one clear error otherwise."""
    if 'focal' in entry and 'princpt' in entry:
        f, c = entry['focal'], entry['princpt']
    elif 'f' in entry and 'c' in entry:
        f, c = entry['f'], entry['c']
    elif 'intrinsic' in entry:
        f, c = entry['intrinsic'][:2], entry['intrinsic'][2:4]
    else:
        raise ValueError(f'{where}: missing camera field (focal/princpt)')
    f, c = np.asarray(f, np.float64).reshape(-1), np.asarray(c, np.float64).reshape(-1)
    if f.size == 1:
        f = np.repeat(f, 2)
    if f.size != 2 or c.size != 2 or not (np.isfinite(f).all() and np.isfinite(c).all()):
        raise ValueError(f'{where}: camera focal/princpt must be 2 finite numbers each')
    return tuple(f.tolist()), tuple(c.tolist())


def smpl_of(entry, where):
    """(pose[72], shape[10], trans[3]) float arrays; ValueError naming `where` when malformed."""
    try:
        pose = np.asarray(entry['pose'], np.float64).reshape(72)
        shape = np.asarray(entry['shape'], np.float64).reshape(-1)[:10]
        trans = np.asarray(entry.get('trans', np.zeros(3)), np.float64).reshape(3)
    except (KeyError, ValueError) as e:
        raise ValueError(f'{where}: malformed SMPL parameters ({e})') from e
    if shape.size < 10:
        shape = np.pad(shape, (0, 10 - shape.size))
    if not (np.isfinite(pose).all() and np.isfinite(shape).all() and np.isfinite(trans).all()):
        raise ValueError(f'{where}: SMPL parameters contain NaN/inf')
    return pose, shape, trans


def scene_meshes(scene, body_models):
    """Camera-frame meshes of a scene's people in ONE common camera, and that camera.

    People with their own virtual cameras (NeuralAnnot fits of COCO/MPII/CrowdPose) are re-expressed in
    the first person's camera by X' = (f_i X + (c_i - c_0) Z) / f_0 (same for Y), Z' = Z: every vertex then
    projects to the same pixel as with its own camera, and depth order is kept.
    `body_models`: gender -> BodyModel. Returns (list of [V,3] float32, common.camera.Camera).
    """
    import torch
    if not scene.people:
        return [], Camera.centred(1.0, scene.width, scene.height)
    f0, c0 = np.asarray(scene.people[0].focal), np.asarray(scene.people[0].princpt)
    meshes = []
    for p in scene.people:
        bm = body_models[p.gender] if p.gender in body_models else body_models['neutral']
        with torch.no_grad():
            v, _ = bm(torch.as_tensor(p.pose, dtype=torch.float32)[None],
                      torch.as_tensor(p.shape, dtype=torch.float32)[None],
                      torch.as_tensor(p.trans, dtype=torch.float32)[None])
        v = v[0].numpy().astype(np.float64)
        if p.cam_R is not None:
            v = v @ np.asarray(p.cam_R).T + np.asarray(p.cam_t).reshape(1, 3)
        f, c = np.asarray(p.focal), np.asarray(p.princpt)
        if not (np.allclose(f, f0) and np.allclose(c, c0)):
            z = v[:, 2:3]
            v = np.concatenate([(f * v[:, :2] + (c - c0) * z) / f0, z], axis=1)
        if not np.isfinite(v).all():
            raise ValueError(f'{scene.key or scene.image}: mesh has NaN/inf vertices')
        meshes.append(v.astype(np.float32))
    return meshes, Camera(scene.width, scene.height, f0, c0)
