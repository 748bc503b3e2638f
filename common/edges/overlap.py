"""SMPL overlap edges: the contours of each person that other people hide (SEFD's teacher input).

Definition (SEFD's released tools): for every person the edge map of that person rendered ALONE,
summed over persons, minus the edge map of all persons rendered TOGETHER, clipped to [0, 1]; the
"all edges" map is the edge map of the joint render. Each person's edges are dilated by a square max
filter whose size follows that person's annotation box area A = w*h in px^2 (`dilation_size`):
A <= 256 none, <= 4096 3x3, <= 65536 5x5, larger 7x7. The size is chosen PER PERSON (the reference
used one annotation's area for the whole image, a bug).

Two methods, one option:

- method='geometric' (default): exact and cheap, from depth buffers. A person's contour is the set of
  its surface pixels that have a 4-neighbour which is background (silhouette) or a surface farther away
  by more than max(DEPTH_JUMP_M, DEPTH_JUMP_PX * z / f) (self-occlusion: an arm in front of the torso;
  the z/f term, the size of a pixel at depth z, keeps steep but continuous surfaces near the silhouette
  from firing). Its hidden part is where another person's surface is nearer to the camera at that pixel
  (what the joint render shows there). The map is binary before dilation. Work is limited to where it
  can matter: only people whose projected boxes intersect (and are not entirely behind one another) can
  hide each other; each of those is rendered alone, depth only, in the bounding box of its
  intersections with the others, and the alone depths are compared instead of rendering the group.
  All those windows go to the renderer in one layered pass: each person's mesh, culled to its window,
  is drawn into its own float attachment with MIN blending (Renderer.render_depth_layers), which gives
  the same depths as rendering that person alone at full frame.
  occluding=True also marks each person's silhouette where another person's body lies behind it (the
  occluder's outline over the person behind): the Canny difference marks those too, since the
  contrast there drops from white background to grey body.
- method='canny': faithful to SEFD: each person alone and all together are rendered as shaded grey
  meshes on a white background (the reference's material and three lights), SEFD's Canny magnitude
  (common.edges.canny) is taken on each, each person's map is dilated with its own size, the joint map
  with the size of the person shown at (or within Canny's reach of) each pixel, and
  clip(sum alone - joint, 0, 1). Renders and Canny run in windows around the people with enough margin
  that the result equals the full-frame computation. Its map is continuous; besides the hidden contours
  it holds the occluders' outlines over the people behind and faint hidden shading ridges.

`overlap_edges_crop` renders the map of one training crop directly at crop resolution (on the fly in a
data loader), instead of warping a full-resolution map. Rendering in DataLoader workers: see the fork
limitation in common/render/renderer.py (workers must not be forked from a process that has rendered).
"""
import math

import cv2
import numpy as np

from common.render.renderer import default_renderer

METHODS = ('geometric', 'canny')
DILATION_THRESHOLDS = (256.0, 4096.0, 65536.0)   # inclusive upper bounds of the area classes (px^2)
DILATION_SIZES = (1, 3, 5, 7)
DEPTH_JUMP_M = 0.05    # a self-occlusion is a depth jump of more than 5 cm between 4-neighbours ...
DEPTH_JUMP_PX = 6.0    # ... and of more than 6 pixel widths at that depth (6 z/f: slopes up to ~80 deg)
CANNY_SUPPORT = 4      # pixels a Canny value depends on: Gaussian 5x5 (2) + Sobel (1) + NMS (1)



def dilation_size(box_area: float) -> int:
    """Square dilation size for a person whose annotation box has area `box_area` (px^2): 1 (none), 3, 5, 7."""
    a = float(box_area)
    if not math.isfinite(a) or a < 0:
        raise ValueError(f'box area must be a finite number >= 0, got {box_area!r}')
    for limit, size in zip(DILATION_THRESHOLDS, DILATION_SIZES):
        if a <= limit:
            return size
    return DILATION_SIZES[-1]


# --------------------------------------------------------------------------------------------------
# Inputs and boxes. A box is (x0, y0, x1, y1) in integer pixel indices, end exclusive.

def _np(x, dtype=None):
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _meshes(meshes, faces):
    if isinstance(meshes, np.ndarray) or hasattr(meshes, 'detach'):
        arr = _np(meshes)
        meshes = [arr] if arr.ndim == 2 else list(arr)
    verts = [np.ascontiguousarray(_np(m, np.float32).reshape(-1, 3)) for m in meshes]
    if isinstance(faces, (list, tuple)) and len(faces) and np.ndim(faces[0]) == 2:
        if len(faces) != len(verts):
            raise ValueError(f'faces: got {len(faces)} arrays for {len(verts)} meshes')
        faces_l = [_np(f).reshape(-1, 3) for f in faces]
    else:
        faces_l = [_np(faces).reshape(-1, 3)] * len(verts)
    return verts, faces_l


def _sizes(box_areas, n):
    areas = np.atleast_1d(_np(box_areas, np.float64)).ravel()
    if len(areas) != n:
        raise ValueError(f'box_areas: got {len(areas)} areas for {n} meshes')
    return [dilation_size(a) for a in areas]


def _boxes(verts, cam, znear, uv=None):
    """Per mesh, a box holding every pixel the mesh can cover (None: off screen). With a list `uv`,
    each mesh's projected vertices (u, v) are stored in it (None where a vertex is not in front of the
    near plane)."""
    (fx, fy), (cx, cy), width, height = cam.focal, cam.princpt, cam.width, cam.height
    out = []
    for v in verts:
        p = None
        if not len(v) or v[:, 2].max() < znear:
            b = None
        elif v[:, 2].min() < znear:  # near-plane clipping: the projected vertices no longer bound the footprint
            b = (0, 0, width, height)
        else:
            z = v[:, 2]
            p = (fx * v[:, 0] / z + cx, fy * v[:, 1] / z + cy)
            b = (max(int(math.floor(p[0].min())) - 1, 0), max(int(math.floor(p[1].min())) - 1, 0),
                 min(int(math.ceil(p[0].max())) + 1, width), min(int(math.ceil(p[1].max())) + 1, height))
            if not (b[0] < b[2] and b[1] < b[3]):
                b = None
        out.append(b)
        if uv is not None:
            uv.append(p)
    return out


def _inter(a, b):
    if a is None or b is None:
        return None
    r = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return r if r[0] < r[2] and r[1] < r[3] else None


def _union(boxes):
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _grow(b, m, width, height):
    return (max(b[0] - m, 0), max(b[1] - m, 0), min(b[2] + m, width), min(b[3] + m, height))


def _sl(inner, outer):
    """Slices of box `inner` in the array of box `outer`."""
    return np.s_[inner[1] - outer[1]:inner[3] - outer[1], inner[0] - outer[0]:inner[2] - outer[0]]


def _cull(v, f, uv, win):
    """The part of a mesh that can reach the pixels of box `win`: its faces whose projected bounding box
    meets the window (no other face can cover a pixel centre there), and its vertices with the unused
    ones moved onto a used one, so that the renderer's footprint (which it clears, draws and reads back)
    shrinks to about the window; also the mask of the vertices used. None if nothing reaches it."""
    u, w = uv
    # outcodes: a face misses the window iff its three vertices lie beyond the same side of it
    code = ((u < win[0] - 1).astype(np.uint8) | ((u > win[2] + 1).astype(np.uint8) << 1)
            | ((w < win[1] - 1).astype(np.uint8) << 2) | ((w > win[3] + 1).astype(np.uint8) << 3))
    fc = code[f]
    keep = (fc[:, 0] & fc[:, 1] & fc[:, 2]) == 0
    if not keep.any():
        return None
    used = np.zeros(len(v), bool)
    if keep.all():
        used[f.ravel()] = True
        return v, f, used
    f = f[keep]
    used[f.ravel()] = True
    v = v.copy()
    v[~used] = v[f[0, 0]]
    return v, f, used


def _render(renderer, verts, faces, cam, win, outputs, **kwargs):
    """Render a width x height frame and return its arrays cropped to box `win`. The frame buffer keeps
    the frame's size: the renderer caches a few sizes, a new size per window would allocate GL buffers
    every call; it clears, draws and reads back only the meshes' footprint anyway."""
    out = renderer.render(verts, faces, cam, outputs=outputs, **kwargs)
    sl = _sl(win, (0, 0))
    for name in outputs:
        setattr(out, name, getattr(out, name)[sl])
    return out


# --------------------------------------------------------------------------------------------------
# Geometric method

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def contour_pixels(depth, jump_per_depth, person_id=None, split=False):
    """[H, W] bool: surface pixels (depth > 0) with a 4-neighbour that is background (silhouette), or
    a surface farther away by more than max(DEPTH_JUMP_M, jump_per_depth * z) (z: this pixel's depth;
    self-occlusion), or (with `person_id`) a farther surface of another person. The nearer side of a
    jump is marked. Nothing is marked along the array border (what lies beyond is unknown: replicate).
    split: return (silhouette, depth jumps) separately."""
    depth = np.asarray(depth)
    if depth.dtype != np.float32:
        depth = depth.astype(np.float32)
    if person_id is not None:
        return _contour_ids(depth, jump_per_depth, person_id)
    # cv2's morphology ignores the outside (replicate-like), as the definition wants
    fg = cv2.compare(depth, 0, cv2.CMP_GT)
    sil = cv2.subtract(fg, cv2.erode(fg, _CROSS))               # a background 4-neighbour
    diff = cv2.subtract(cv2.dilate(depth, _CROSS), depth)       # farthest 4-neighbour minus this one
    zmax = float(depth.max()) if depth.size else 0.0
    if zmax * jump_per_depth <= DEPTH_JUMP_M:
        jumps = cv2.compare(diff, DEPTH_JUMP_M, cv2.CMP_GT)
    else:
        jumps = cv2.compare(diff, cv2.max(cv2.multiply(depth, float(jump_per_depth)), DEPTH_JUMP_M), cv2.CMP_GT)
    jumps = cv2.bitwise_and(jumps, fg)
    if split:
        return sil.view(bool), jumps.view(bool)
    return cv2.bitwise_or(sil, jumps).view(bool)


def _contour_ids(depth, jump_per_depth, person_id):
    """contour_pixels with person ids: also a pixel whose 4-neighbour shows ANOTHER person farther away
    (by any amount). That rule is checked only where the ids change, which is a thin set."""
    c = contour_pixels(depth, jump_per_depth)
    pid = person_id.astype(np.float32)   # exact for ids < 2^24; cv2 morphology has no int32
    change = cv2.compare(cv2.dilate(pid, _CROSS), cv2.erode(pid, _CROSS), cv2.CMP_NE)
    ys, xs = _nonzero(cv2.bitwise_and(change, cv2.compare(depth, 0, cv2.CMP_GT)), (0, 0))
    h, w = depth.shape
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        qy, qx = ys + dy, xs + dx
        ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        py, px, qy, qx = ys[ok], xs[ok], qy[ok], qx[ok]
        other = person_id[qy, qx]
        mark = (other >= 0) & (other != person_id[py, px]) & (depth[qy, qx] > depth[py, px])
        c[py[mark], px[mark]] = True
    return c


def _nonzero(mask, box):
    """(ys, xs) image coordinates of the True pixels of `mask` (the array of box `box`)."""
    pts = cv2.findNonZero(mask.view(np.uint8))
    if pts is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    pts = pts.reshape(-1, 2)
    return pts[:, 1].astype(np.intp) + box[1], pts[:, 0].astype(np.intp) + box[0]


def _paint(out, items):
    """out [H, W] float32 = max(out, 1 at each item's pixels), dilated with the item's size.
    items: (ys, xs, size) with image coordinates."""
    height, width = out.shape
    for k in sorted({k for _, _, k in items}):
        ys = np.concatenate([y for y, _, kk in items if kk == k])
        xs = np.concatenate([x for _, x, kk in items if kk == k])
        if not len(ys):
            continue
        r = k // 2
        reg = _grow((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), r, width, height)
        acc = np.zeros((reg[3] - reg[1], reg[2] - reg[0]), np.uint8)
        acc[ys - reg[1], xs - reg[0]] = 1
        if k > 1:
            acc = cv2.dilate(acc, np.ones((k, k), np.uint8))
        o = out[_sl(reg, (0, 0))]
        np.maximum(o, acc, out=o)


def _alone_depths(renderer, verts, faces, cam, wins, uv):
    """{i: depth of person i rendered alone, [h, w] over its window wins[i]}.

    One layered render (Renderer.render_depth_layers): each person's mesh, culled to its window, is
    drawn into its own float attachment with MIN blending, cleared, drawn and read back only over its
    window: the depth a render of that person alone would give. People crossing the near plane
    (uv[i] None) are rendered on their own."""
    depth, todo = {}, []
    for i, w in wins.items():
        v, f = verts[i], faces[i]
        if uv[i] is None or not len(f):
            depth[i] = _render(renderer, [v], [f], cam, w, ('depth',)).depth
            continue
        part = _cull(v, f, uv[i], w)
        if part is None:
            depth[i] = np.zeros((w[3] - w[1], w[2] - w[0]), np.float32)
            continue
        todo.append((i, part[0], part[1]))
    if todo:
        maps = renderer.render_depth_layers([v for _, v, _ in todo], [f for *_, f in todo], cam,
                                            [wins[i] for i, *_ in todo])
        for (i, *_), d in zip(todo, maps):
            depth[i] = d
    return depth


def _geometric(verts, faces, cam, ks, renderer, return_all, occluding=False):
    width, height = cam.width, cam.height
    uv = []
    boxes = _boxes(verts, cam, renderer.znear, uv)
    jump = DEPTH_JUMP_PX / math.sqrt(cam.focal[0] * cam.focal[1])
    vis = [i for i, b in enumerate(boxes) if b is not None]
    zmin = {i: float(verts[i][:, 2].min()) for i in vis}
    zmax = {i: float(verts[i][:, 2].max()) for i in vis}
    # j can hide part of i if their boxes meet and j is not entirely behind i (with `occluding`, any j
    # whose body lies under i's silhouette counts as well)
    front = {i: [j for j in vis if j != i and _inter(boxes[i], boxes[j]) and (occluding or zmin[j] < zmax[i])]
             for i in vis}
    # i is needed alone where it may be hidden (its contour) and where it may hide someone (its depth)
    need = {i: [_inter(boxes[i], boxes[j]) for j in front[i]] for i in vis}
    for i in vis:
        for j in front[i]:
            need[j].append(_inter(boxes[i], boxes[j]))
    wins = {i: _grow(_union(b), 1, width, height) for i, b in need.items() if b}
    depth = _alone_depths(renderer, verts, faces, cam, wins, uv)
    items = []
    for i in vis:
        if not front[i]:
            continue
        wi = wins[i]
        r = _grow(_union([_inter(boxes[i], boxes[j]) for j in front[i]]), 1, width, height)
        di = depth[i]
        if occluding:
            sil, c = contour_pixels(di[_sl(r, wi)], jump, split=True)
            ys, xs = _nonzero(cv2.bitwise_or(sil.view(np.uint8), c.view(np.uint8)), r)
            is_sil = sil[ys - r[1], xs - r[0]]
        else:
            ys, xs = _nonzero(contour_pixels(di[_sl(r, wi)], jump), r)
        if not len(ys):
            continue
        zi = di[ys - wi[1], xs - wi[0]]
        hidden = np.zeros(len(ys), bool)
        for j in front[i]:
            wj = wins[j]
            inside = (xs >= wj[0]) & (xs < wj[2]) & (ys >= wj[1]) & (ys < wj[3])
            zj = depth[j][ys[inside] - wj[1], xs[inside] - wj[0]]
            hit = (zj > 0) & (zj < zi[inside])
            if occluding:  # the silhouette of i over the body of j, in front or behind
                hit |= (zj > 0) & is_sil[inside]
            hidden[inside] |= hit
        if hidden.any():
            items.append((ys[hidden], xs[hidden], ks[i]))
    overlap = np.zeros((height, width), np.float32)
    _paint(overlap, items)
    if not return_all:
        return overlap
    all_edges = np.zeros((height, width), np.float32)
    u = _union([boxes[i] for i in vis])
    if u is not None:
        u = _grow(u, 1, width, height)
        r = _render(renderer, verts, faces, cam, u, ('depth', 'person_id'))
        ys, xs = _nonzero(contour_pixels(r.depth, jump, r.person_id), u)
        k_of = np.asarray(ks, np.int64)[r.person_id[ys - u[1], xs - u[0]]]
        _paint(all_edges, [(ys[k_of == k], xs[k_of == k], k) for k in set(ks)])
    return overlap, all_edges


# --------------------------------------------------------------------------------------------------
# Canny method (SEFD)

def _canny_np(rgb):
    import torch

    from common.edges.canny import canny_magnitude
    with torch.no_grad():
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)
        return canny_magnitude(t)[0, 0].numpy()


def _dilate(x, k):
    return cv2.dilate(x, np.ones((k, k), np.uint8)) if k > 1 else x


def _canny(verts, faces, cam, ks, renderer, return_all, occluding=None):
    width, height = cam.width, cam.height
    boxes = _boxes(verts, cam, renderer.znear)
    vis = [i for i, b in enumerate(boxes) if b is not None]
    overlap = np.zeros((height, width), np.float32)
    all_edges = np.zeros((height, width), np.float32)
    if vis:
        # windows with room for Canny's support and the dilation: Canny of a white margin is 0, so the
        # windowed maps equal the full-frame ones
        margin = {i: 2 * CANNY_SUPPORT + ks[i] // 2 + 2 for i in vis}
        wins = {i: _grow(boxes[i], margin[i], width, height) for i in vis}
        u = _union(wins.values())
        total = np.zeros((u[3] - u[1], u[2] - u[0]), np.float32)
        for i in vis:
            rgb = _render(renderer, [verts[i]], [faces[i]], cam, wins[i], ('rgb',), shade=True).rgb
            total[_sl(wins[i], u)] += _dilate(_canny_np(rgb), ks[i])
        r = _render(renderer, verts, faces, cam, u, ('rgb', 'person_id'), shade=True)
        e = _canny_np(r.rgb)
        sizes = sorted({ks[i] for i in vis})
        if len(sizes) == 1:
            e_d = _dilate(e, sizes[0])
        else:  # each pixel dilated with the size of the person it shows, or of a person within reach
            lab = (r.person_id + 1).astype(np.uint16)
            near = cv2.dilate(lab, np.ones((2 * CANNY_SUPPORT + 1,) * 2, np.uint8))
            owner = np.where(lab > 0, lab, near).astype(np.int64) - 1
            k_of = np.asarray(ks + [1], np.int64)[owner]
            e_d = np.zeros_like(e)
            for k in sizes:
                np.maximum(e_d, _dilate(np.where(k_of == k, e, np.float32(0)), k), out=e_d)
        overlap[_sl(u, (0, 0))] = np.clip(total - e_d, 0, 1)
        all_edges[_sl(u, (0, 0))] = np.clip(e_d, 0, 1)
    return (overlap, all_edges) if return_all else overlap


# --------------------------------------------------------------------------------------------------
# Public API

def overlap_edges(meshes, faces, camera, box_areas, method='geometric', renderer=None, return_all=False,
                  occluding=False):
    """SMPL overlap-edge map of one image.

    meshes: list of [V, 3] camera-frame vertices (metres, OpenCV axes), one per person (numpy or torch),
      or an [N, V, 3] array. faces: [F, 3] shared, or one per mesh. camera: the image's common.camera.Camera.
    box_areas: per person, the annotation box area w*h in THIS image's px^2 (picks its dilation size).
    method: 'geometric' or 'canny' (module docstring).
    renderer: a common.render.renderer.Renderer (default: a shared one; its znear clips).
    return_all: also the edges of all people together (their visible contours, same dilation rule).
    occluding: geometric only; also each person's outline over the body of another (module docstring).
    Returns overlap [H, W] float32 in [0, 1], or (overlap, all_edges) with return_all.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if occluding and method != 'geometric':
        raise ValueError("occluding=True is an option of method='geometric'")
    verts, faces_l = _meshes(meshes, faces)
    ks = _sizes(box_areas, len(verts))
    renderer = renderer or default_renderer()
    fn = _geometric if method == 'geometric' else _canny
    return fn(verts, faces_l, camera, ks, renderer, return_all, occluding)


def overlap_edges_crop(meshes, faces, camera, img2crop, crop_size, box_areas, method='geometric', renderer=None,
                       occluding=False):
    """The overlap-edge map of one training crop, rendered directly at crop resolution.

    camera: the image's common.camera.Camera. img2crop: 2x3 affine, image pixel indices -> crop pixel indices
      (as given to cv2.warpAffine), made of scale, rotation and translation, possibly with a horizontal flip
      (negative determinant). crop_size: (width, height) as cv2.warpAffine's dsize, or one int for a square crop.
    box_areas: per person, in ORIGINAL image px^2; scaled by the affine's |det| (s^2) to pick each
      person's dilation at crop resolution.
    The result agrees with warping the full-resolution map with cv2.warpAffine(img2crop) up to
    resolution effects (contours are 1 px lines at crop resolution instead of resampled ones); the
    rotation is applied to the meshes about the camera z axis, exact when fx == fy (see Camera.crop).
    With method='canny' the lights turn with the crop's rotation (shading differs slightly from the
    warped full map). Returns [h, w] float32 in [0, 1].
    """
    verts, faces_l = _meshes(meshes, faces)
    crop = camera.crop(img2crop, crop_size)
    rot = crop.rot.astype(np.float32)
    verts = [v @ rot.T for v in verts]
    areas = np.atleast_1d(_np(box_areas, np.float64)).ravel() * crop.area_scale
    out = overlap_edges(verts, faces_l, crop.camera, areas, method=method, renderer=renderer, occluding=occluding)
    return np.ascontiguousarray(out[:, ::-1]) if crop.flip else out
