"""One synthetic image: scene -> renders -> measurements -> detector -> JPEG + annotation records.

`make_image(job)` is what the worker processes run. Everything random comes from a generator seeded by
(seed, image index, attempt), so the output does not depend on which worker makes which image or in
what order. The renderer is created here, in the process that renders (see common/render/renderer.py on
fork).
"""
import dataclasses
import functools
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from common.body.joint_sets import OPENPOSE18
from common.edges.overlap import overlap_edges
from common.errors import UserError
from common.io import atomic_write_bytes
from common.pipeline import simulated_detector as D
from common.render.renderer import default_renderer
from tool.make_data.synthetic import appearance as A
from tool.make_data.synthetic.poses import SIT_BEND_NAMES
from tool.make_data.synthetic.scene import (CUT_MIN, FOCAL, GENDERS, NEAR_M, SceneError, frame_camera, pose_people,
                                  place_people, sample_camera, sample_occluders, sample_person)

MAX_ATTEMPTS = 3
MIN_VISIBLE_PX = 150          # a person must show at least this many pixels ...
MIN_VISIBLE_FRACTION = 0.12   # ... and this fraction of their own (alone) silhouette
JPEG_QUALITY = 92


@dataclass
class Options:
    width: int = 480
    height: int = 640
    min_people: int = 1
    max_people: int = 5
    overlap: float = 0.6
    occluders: float = 0.4
    detector_noise: float = 1.0
    pose_noise: float = 1.0
    model_dir: str = None
    # what photographs show (tool/make_data/synthetic/scene.py, frame_camera); the defaults are the published-like set
    truncation: float = 0.0       # probability that a person is cut by the image frame
    focal: tuple = FOCAL          # focal length range x the image's long side
    distance: tuple = None        # range of the framed person's and everyone's depth (m)
    elevation: tuple = None       # range of the camera's elevation over the framed person (degrees, + from above)
    sit_bend: float = None        # probability of a sitting, kneeling, crouching or bending pose

    @property
    def framed(self):
        """Whether the camera frames its first person (frame_camera) instead of the published-like camera."""
        return self.truncation > 0 or self.distance is not None or self.elevation is not None


@dataclass
class Job:
    index: int            # global image index (the image id)
    split: str
    sequence: str
    file_name: str
    path: str             # where to write the JPEG
    seed: int
    options: Options
    tile_height: int = 0  # > 0: also return a contact-sheet tile of this height
    force_overlap: bool = False   # tests: two people, the second straight behind the first
    fail_attempts: int = 0        # tests: the first n attempts produce a NaN mesh


@dataclass
class Result:
    index: int
    image: dict = None
    annotations: list = field(default_factory=list)
    tile: np.ndarray = None   # contact-sheet tile [h, w, 3] uint8
    attempts: int = 1
    error: str = None
    stats: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _models(model_dir):
    from common.body.smpl import get_body_model
    return {g: get_body_model(g, model_dir) for g in GENDERS}


def write_file(path, data):
    """Atomic write, readable by everyone (the temporary file atomic_write makes is private)."""
    atomic_write_bytes(path, data)
    os.chmod(path, 0o644)


def _r(x, nd):
    """Rounded plain floats (nested lists): stable, compact JSON."""
    return np.round(np.asarray(x, np.float64), nd).tolist()


def _bbox(uv, w, h):
    x0, y0 = np.clip(uv.min(0), 0, [w, h])
    x1, y1 = np.clip(uv.max(0), 0, [w, h])
    return np.array([x0, y0, x1 - x0, y1 - y0])


def build_scene(rng, job, models):
    """The camera and the placed people. Framed scenes (Options.framed) draw the people first, each cut by the frame
    or not, pose the first one levelled to know its height, frame it (frame_camera), then pose everyone for that
    camera's tilt and place them; otherwise the published-like camera comes first."""
    o = job.options
    framed = o.framed and not job.force_overlap
    cam = None if framed else sample_camera(rng, o.width, o.height, o.focal)
    n = int(rng.integers(o.min_people, o.max_people + 1))
    if job.force_overlap:
        n = 2
    people = [sample_person(rng, o.pose_noise, o.sit_bend) for _ in range(n)]
    if job.fail_attempts > 0:
        people[0].shape = people[0].shape * np.nan
    if framed:
        cut = [bool(rng.random() < o.truncation) for _ in people]
        pose_people(people[:1], np.eye(3), models)
        cam = frame_camera(rng, o.width, o.height, people[0], cut[0], o.focal, o.distance, o.elevation)
    pose_people(people, cam.R, models)
    if job.force_overlap:
        people = _stack_behind(rng, cam, people)
    elif framed:
        depth = tuple(o.distance) if o.distance is not None else (NEAR_M, np.inf)
        people = place_people(rng, cam, people, overlap=o.overlap, cut=cut, depth=depth)
    else:
        people = place_people(rng, cam, people, overlap=o.overlap)
    if not people:
        raise SceneError('nobody could be placed in view')
    return cam, people


def _stack_behind(rng, cam, people):
    """Test scenes: the second person 1.5 m behind the first, 0.25 m to the side (so partly hidden)."""
    placed = place_people(rng, cam, people[:1], overlap=0.0)
    front = placed[0]
    back = people[1]
    R = cam.R
    world = back.verts @ R
    pelvis = back.joints[0] @ R
    x, z = front.ground[0] + 0.25, front.ground[2] + 1.5
    back.trans = R @ np.array([x - pelvis[0], cam.height_m - world[:, 1].max(), z - pelvis[2]])
    back.verts, back.joints = back.verts + back.trans, back.joints + back.trans
    back.ground = np.array([x, cam.height_m, z])
    return [front, back]


def render_people(renderer, cam, people, faces, part_ids):
    mats = [p.materials + k * A.MATERIALS_PER_PERSON for k, p in enumerate(people)]
    pal = A.scene_palette([p.colours for p in people])
    full = renderer.render([p.verts for p in people], faces, cam, part_ids=mats, part_colors=pal,
                           outputs=('depth', 'person_id', 'rgb'))
    alone = [renderer.render([p.verts], faces, cam, outputs=('person_id',)).person_id >= 0 for p in people]
    return full, alone


def make_image(job):
    """Make, write and annotate one image. A scene that cannot be used (SceneError) is redrawn, then counted as
    skipped; anything else (UserError, a bug) propagates, naming the image (a worker's exception reaches the parent
    through the pool with its type, message, this note and its traceback)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float reduction order in every process: identical results
    try:
        return _make_image(job)
    except UserError:
        raise
    except Exception as e:
        e.add_note(f'while making image {job.index} ({job.sequence}/{job.file_name}, seed {job.seed})')
        raise
    finally:
        torch.set_num_threads(threads)


def _make_image(job):
    res = Result(job.index)
    last = None
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([job.seed, job.index, attempt])
        j = job if attempt < job.fail_attempts or job.fail_attempts == 0 else _no_fail(job)
        try:
            _attempt(rng, j, res)
            res.attempts = attempt + 1
            return res
        except SceneError as e:  # the only failure a random scene may produce (non-finite meshes are checked)
            last = str(e)
    res.attempts = MAX_ATTEMPTS
    res.error = last
    return res


def _no_fail(job):
    return dataclasses.replace(job, fail_attempts=0)


def _attempt(rng, job, res):
    o = job.options
    models = _models(o.model_dir)
    renderer = default_renderer()
    cam, people = build_scene(rng, job, models)
    ref = models['neutral']
    faces, part_ids = ref.faces, ref.part_ids
    tv = ref.template_vertices.detach().numpy()
    for p in people:
        p.materials, p.colours = A.person_materials(rng, part_ids, tv)

    # drop people who end up (nearly) invisible, then measure everyone
    while True:
        full, alone = render_people(renderer, cam, people, faces, part_ids)
        vis = [(full.person_id == k) for k in range(len(people))]
        bad = [k for k in range(len(people))
               if vis[k].sum() < max(MIN_VISIBLE_PX, MIN_VISIBLE_FRACTION * alone[k].sum())]
        if not bad:
            break
        people = [p for k, p in enumerate(people) if k != bad[0]]
        if not people:
            raise SceneError('nobody is visible')

    # occluders: keep those that leave everyone visible enough
    occ_specs = sample_occluders(rng, cam, people, o.occluders)
    kept = []
    for spec in occ_specs:
        m = np.zeros((cam.height, cam.width), np.uint8)
        cv2.fillPoly(m, [np.round(spec.polygon * 4).astype(np.int32)], 1, shift=2)
        covered = m.astype(bool)
        if all((vis[k] & ~covered).sum() >= max(MIN_VISIBLE_PX, MIN_VISIBLE_FRACTION * alone[k].sum())
               for k in range(len(people))):
            kept.append(spec)

    # the image
    bg_kind = A.choose_background(rng, A.available_photos())
    img = A.render_background(rng, cam, bg_kind)
    img = A.draw_contact_shadows(img, rng, cam, [p.ground for p in people], [0.6 * p.radius + 0.1 for p in people])
    img = A.composite(rng, img, full.rgb, full.person_id, len(people))
    occ_mask = A.draw_occluders(img, rng, kept)
    img = A.camera_effects(rng, img)

    # annotations
    W, H = cam.width, cam.height
    uv_all, status_all, occl_all, scale_all, boxes = [], [], [], [], []
    for k, p in enumerate(people):
        uv = cam.project(p.verts)
        boxes.append(_bbox(uv, W, H))
        # a detector's errors scale with the person it sees, not with a body the frame cuts off (the published-like
        # set keeps the whole body's size, so that it stays the same set byte for byte)
        scale_all.append(float(np.hypot(*(boxes[-1][2:] if o.framed else uv.max(0) - uv.min(0)))))
        juv = cam.project(p.joints)
        st, oc = D.joint_status(juv, p.joints[:, 2], k, full.person_id, full.depth, occ_mask)
        uv_all.append(D.smpl30_to_openpose18(juv[None])[0])
        status_all.append(D.smpl30_to_openpose18(st[None, :, None])[0, :, 0])
        occl_all.append(D.smpl30_to_openpose18(oc[None, :, None])[0, :, 0])
    dets, swaps = D.simulate(rng, uv_all, status_all, occl_all, scale_all, W, H, o.detector_noise)

    image = {'id': job.index, 'file_name': job.file_name, 'sequence': job.sequence, 'width': W, 'height': H,
             'cam_param': {'focal': _r(cam.focal, 4), 'princpt': _r(cam.princpt, 4)},
             'num_people': len(people), 'background': bg_kind,
             'camera_height': round(float(cam.height_m), 4), 'camera_tilt': round(float(cam.tilt_deg), 4),
             'camera_distance': round(float(cam.z_anchor), 4), 'camera_elevation': round(float(cam.elevation_deg), 4),
             'occluders': [{'type': s.kind, 'bbox': _r(_bbox(s.polygon, W, H), 2)} for s in kept]}
    anns = []
    st_counts = np.zeros(len(D.STATUS_NAMES), np.int64)
    missed = 0
    for k, p in enumerate(people):
        a_px = int(alone[k].sum())
        v_px = int(vis[k].sum())
        ov_px = int((vis[k] & occ_mask).sum())
        st = status_all[k]
        st_counts += np.bincount(st, minlength=len(D.STATUS_NAMES))
        missed += int(((dets[k][:, 2] == 0) & (st != D.OUTSIDE)).sum())
        anns.append({
            'image_id': job.index,
            'bbox': _r(boxes[k], 2),
            'smpl_param': {'pose': _r(p.pose, 6), 'shape': _r(p.shape, 6), 'trans': _r(p.trans, 6),
                           'gender': p.gender},
            'openpose_result': _r(dets[k], 3),
            'joint_img': _r(cam.project(p.joints[:24]), 2),
            'joint_visibility': [int(2 if s == D.VISIBLE else 1 if s != D.OUTSIDE else 0) for s in st],
            'occlusion': round(1.0 - v_px / max(a_px, 1), 4),
            'object_occlusion': round(ov_px / max(a_px, 1), 4),
            'truncation': round(float(cam.outside(p.verts).mean()), 4),
            'num_people': len(people),
            'pose_name': p.pose_name,
            'area_visible': v_px - ov_px,
            # what the simulated detector was given (OpenPose-18 order): the loader replays it on training crops
            'detector_input': {'status': [int(c) for c in st], 'occluder': [int(c) for c in occl_all[k]],
                               'scale': round(scale_all[k], 3), 'noise': o.detector_noise},
        })
    ok, buf = cv2.imencode('.jpg', img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SceneError('JPEG encoding failed')
    write_file(job.path, buf.tobytes())

    res.image, res.annotations = image, anns
    res.stats = {'people': len(people), 'occlusion': [a['occlusion'] for a in anns],
                 'object_occlusion': [a['object_occlusion'] for a in anns], 'status': st_counts.tolist(),
                 'missed': missed, 'swaps': swaps, 'occluders': len(kept), 'background': bg_kind.split(':')[0],
                 'cut': sum(a['truncation'] >= CUT_MIN for a in anns), 'sit_bend': sum(p.pose_name in SIT_BEND_NAMES
                                                                                        for p in people),
                 'camera': (cam.focal[0] / max(W, H), cam.z_anchor, cam.elevation_deg)}
    if job.tile_height:
        res.tile = contact_tile(img, cam, people, faces, boxes, dets, renderer, job.tile_height)


# --------------------------------------------------------------------------------------------------
# Contact-sheet tile

_LIMB_COLOURS = [(255, 80, 80), (80, 200, 255), (255, 220, 60), (120, 255, 120), (230, 120, 255)]


def contact_tile(img, cam, people, faces, boxes, dets, renderer, tile_h):
    """The image beside its annotations: 2D detections, boxes and the SMPL overlap edges (red)."""
    edges = overlap_edges([p.verts for p in people], faces, cam, [float(b[2] * b[3]) for b in boxes],
                          renderer=renderer)
    ann = (img.astype(np.float32) * 0.45).astype(np.uint8)
    ann[edges > 0.5] = (255, 40, 40)
    for k, (b, det) in enumerate(zip(boxes, dets)):
        col = _LIMB_COLOURS[k % len(_LIMB_COLOURS)]
        x, y, w, h = b
        cv2.rectangle(ann, (int(x), int(y)), (int(x + w), int(y + h)), col, 1)
        for a, c in OPENPOSE18.skeleton:
            if det[a, 2] > 0 and det[c, 2] > 0:
                cv2.line(ann, tuple(int(t) for t in det[a, :2]), tuple(int(t) for t in det[c, :2]), col, 2,
                         cv2.LINE_AA)
        for jx, jy, jc in det:
            if jc > 0:
                cv2.circle(ann, (int(jx), int(jy)), 2, (255, 255, 255), -1)
    s = tile_h / cam.height
    size = (max(1, int(round(cam.width * s))), tile_h)
    left = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    right = cv2.resize(ann, size, interpolation=cv2.INTER_AREA)
    # re-draw edges after resizing so they stay visible at thumbnail size
    e_small = cv2.resize(cv2.dilate((edges > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)), size,
                         interpolation=cv2.INTER_NEAREST).astype(bool)
    right[e_small] = (255, 40, 40)
    return np.concatenate([left, np.full((tile_h, 2, 3), 255, np.uint8), right], 1)
