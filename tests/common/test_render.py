"""common/render/renderer.py against closed-form projections (never against its own output).

Camera used throughout: OpenCV axes, x_pix = fx*X/Z + cx, and OpenCV's pixel convention (that of every
camera and cv2 warp in the data pipeline): pixel centres at INTEGER coordinates, pixel (u, v) covers
[u-0.5, u+0.5) x [v-0.5, v+0.5), so pixel u is covered iff the point u lies inside the projected shape.
"""
import os
import signal
import threading
from collections import Counter
from unittest import mock

import cv2
import numpy as np
import pytest

from common.camera import Camera
from common.errors import UserError
from common.render import renderer as R

W = H = 64
FX = FY = 100.0
CX = CY = 32.0
CAM = Camera(W, H, (FX, FY), (CX, CY))
QUAD = np.array([[0, 1, 2], [0, 2, 3]])




def centres(w=W, h=H):
    """Pixel coordinates of every pixel centre (integers: the OpenCV convention), [H, W] each."""
    return np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))


def rect_at_depth(x0, x1, y0, y1, z):
    """A square mesh at depth z whose projection is [x0, x1] x [y0, y1] in pixels (corners c0..c3 go
    around: (x0,y0), (x1,y0), (x1,y1), (x0,y1))."""
    px = np.array([x0, x1, x1, x0])
    py = np.array([y0, y0, y1, y1])
    return np.stack([(px - CX) * z / FX, (py - CY) * z / FY, np.full(4, z)], 1).astype(np.float32)


def test_square_footprint_depth_and_face_ids(renderer):
    x0, x1, y0, y1 = 7.3, 40.8, 12.6, 50.2  # no pixel centre on an edge
    out = renderer.render([rect_at_depth(x0, x1, y0, y1, 2.0)], QUAD, CAM)
    u, v = centres()
    inside = (u > x0) & (u < x1) & (v > y0) & (v < y1)
    assert inside.sum() == 33 * 38  # columns 8..40, rows 13..50 (centres at integers)
    np.testing.assert_array_equal(out.depth > 0, inside)
    np.testing.assert_allclose(out.depth[inside], 2.0, atol=1e-5)
    assert (out.depth[~inside] == 0).all()
    assert out.depth.dtype == np.float32 and out.face_id.dtype == np.int32 and out.person_id.dtype == np.int32

    # face 0 = (c0, c1, c2) lies on c1's side of the diagonal c0 -> c2
    cross = (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0)
    assert np.abs(cross[inside]).min() > 1e-3
    expected = np.where(inside, np.where(cross < 0, 0, 1), -1)
    np.testing.assert_array_equal(out.face_id, expected)
    np.testing.assert_array_equal(out.person_id, np.where(inside, 0, -1))
    assert out.part_id is None  # no part ids given


def test_pixel_centre_convention(renderer):
    # OpenCV: a point projecting to (10.0, 5.0) is the centre of pixel (column 10, row 5). A shape
    # covering x_pix in [9.9, 10.1] x [4.9, 5.1] holds only that centre; one covering [20.6, 21.7] x
    # [30.2, 32.8] only column 21 and rows 31, 32; one covering [40.2, 40.8]^2 holds no integer point
    # and covers nothing (with pixel centres at +0.5 these would be (30..32, 21) and (40, 40))
    meshes = [rect_at_depth(9.9, 10.1, 4.9, 5.1, 3.0), rect_at_depth(20.6, 21.7, 30.2, 32.8, 3.0),
              rect_at_depth(40.2, 40.8, 40.2, 40.8, 3.0)]
    out = renderer.render(meshes, QUAD, CAM, outputs=('person_id',))
    assert out.depth is None and out.rgb is None
    np.testing.assert_array_equal(np.argwhere(out.person_id == 0), [[5, 10]])
    np.testing.assert_array_equal(np.argwhere(out.person_id == 1), [[31, 21], [32, 21]])
    assert not (out.person_id == 2).any()
    # a camera point on the optical axis lands on the pixel whose index is the principal point
    dot = np.array([[-.002, -.002, 2.0], [.002, -.002, 2.0], [.002, .002, 2.0], [-.002, .002, 2.0]], np.float32)
    out = renderer.render([dot], QUAD, Camera(W, H, (FX, FY), (17.0, 40.0)), outputs=('person_id',))
    np.testing.assert_array_equal(np.argwhere(out.person_id == 0), [[40, 17]])


def test_mirror_is_w_minus_1_minus_u(renderer):
    # with pixel centres at integers, mirroring the scene (X -> -X) and the principal point
    # (cx -> W-1-cx) mirrors the image exactly as preprocessing flips images: column u <-> W-1-u; the
    # same as cv2.warpAffine with the flip matrix [[-1, 0, W-1], [0, 1, 0]]
    w, h, cx, cy = 57, 41, 20.3, 18.6
    tri = np.array([[5.2, 3.1], [50.7, 12.4], [17.9, 38.3]])   # pixel coordinates
    v = np.stack([(tri[:, 0] - cx) * 2.0 / FX, (tri[:, 1] - cy) * 2.0 / FY, np.full(3, 2.0)], 1).astype(np.float32)
    face = np.array([[0, 1, 2]])
    a = renderer.render([v], face, Camera(w, h, (FX, FY), (cx, cy)), outputs=('depth',)).depth
    b = renderer.render([v * np.float32([-1, 1, 1])], face, Camera(w, h, (FX, FY), (w - 1 - cx, cy)),
                        outputs=('depth',)).depth
    u, vv = centres(w, h)
    cross = [(tri[(k + 1) % 3, 0] - tri[k, 0]) * (vv - tri[k, 1]) - (tri[(k + 1) % 3, 1] - tri[k, 1]) * (u - tri[k, 0])
             for k in range(3)]
    expected = np.all(np.stack(cross) > 0, 0) | np.all(np.stack(cross) < 0, 0)
    np.testing.assert_array_equal(a > 0, expected)
    np.testing.assert_array_equal(b > 0, expected[:, ::-1])
    flip = np.array([[-1.0, 0, w - 1], [0, 1, 0]])
    np.testing.assert_array_equal(cv2.warpAffine(a, flip, (w, h), flags=cv2.INTER_NEAREST), b)


def test_nearer_mesh_wins(renderer):
    far = rect_at_depth(5.2, 40.3, 5.2, 40.3, 3.0)
    near = rect_at_depth(20.7, 55.6, 25.3, 60.1, 2.0)
    u, v = centres()
    in_far = (u > 5.2) & (u < 40.3) & (v > 5.2) & (v < 40.3)
    in_near = (u > 20.7) & (u < 55.6) & (v > 25.3) & (v < 60.1)
    assert (in_far & in_near).sum() > 100
    for order in ([far, near], [near, far]):  # draw order must not matter
        out = renderer.render(order, QUAD, CAM)
        near_idx = 1 if order[1] is near else 0
        exp_person = np.where(in_near, near_idx, np.where(in_far, 1 - near_idx, -1))
        np.testing.assert_array_equal(out.person_id, exp_person)
        exp_depth = np.where(in_near, 2.0, np.where(in_far, 3.0, 0.0))
        np.testing.assert_allclose(out.depth, exp_depth, atol=1e-5)


def test_cube_front_face(renderer):
    # closed cube centred at z=3, half size 0.5: the front face z=2.5 covers the image centre
    c = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)]) + [0.05, -0.03, 3.0]
    idx = lambda x, y, z: 4 * x + 2 * y + z  # noqa: E731
    faces = []
    for axis in range(3):
        for side in (0, 1):
            q = []
            for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                k = [0, 0, 0]
                k[axis], k[(axis + 1) % 3], k[(axis + 2) % 3] = side, a, b
                q.append(idx(*k))
            faces += [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
    faces = np.array(faces)
    out = renderer.render([c.astype(np.float32)], faces, CAM)
    front = {i for i, f in enumerate(faces) if all(c[j, 2] < 3.0 for j in f)}
    assert len(front) == 2
    # the front face projects to x in [32+100*(-.45)/2.5, 32+100*.55/2.5] = [14, 54]; take its interior
    inner = (slice(20, 44), slice(20, 44))
    np.testing.assert_allclose(out.depth[inner], 2.5, atol=1e-5)
    assert set(np.unique(out.face_id[inner])) <= front


def test_tilted_plane_depth_is_perspective_correct(renderer):
    # quad on the plane Z = 2 + 0.8 X + 0.3 Y over |X|, |Y| <= 0.5 (depths 1.45 .. 2.55)
    X = np.array([-.5, .5, .5, -.5])
    Y = np.array([-.5, -.5, .5, .5])
    verts = np.stack([X, Y, 2 + 0.8 * X + 0.3 * Y], 1).astype(np.float32)
    out = renderer.render([verts], QUAD, CAM, outputs=('depth', 'face_id'))
    u, v = centres()
    dx, dy = (u - CX) / FX, (v - CY) / FY
    t = 2.0 / (1 - 0.8 * dx - 0.3 * dy)         # ray (dx, dy, 1) * t meets the plane
    Xi, Yi = t * dx, t * dy
    margin = np.minimum(0.5 - np.abs(Xi), 0.5 - np.abs(Yi))
    inside, outside = margin > 1e-3, margin < -1e-3
    assert inside.sum() > 1000
    assert (out.depth[inside] > 0).all() and (out.depth[outside] == 0).all()
    np.testing.assert_allclose(out.depth[inside], t[inside], rtol=1e-5, atol=1e-5)
    # screen-space (affine) interpolation of depth would be centimetres off: the test tells them apart
    corners_px = np.stack([FX * X / verts[:, 2] + CX, FY * Y / verts[:, 2] + CY], 1)
    mid_px = corners_px[[0, 2]].mean(0)   # screen midpoint of the diagonal c0-c2
    mid_lin = verts[[0, 2], 2].mean()     # what screen-linear interpolation would give there
    mid_true = 2.0 / (1 - 0.8 * (mid_px[0] - CX) / FX - 0.3 * (mid_px[1] - CY) / FY)
    assert abs(mid_lin - mid_true) > 1e-2


def _majority(ids):
    value, count = Counter(ids).most_common(1)[0]
    return value if count >= 2 else ids[0]


def test_part_ids_per_face(renderer):
    # 8x8 grid of quads at z=2 with random per-vertex part ids: every majority / all-different case
    n = 9
    gx, gy = np.meshgrid(np.linspace(-0.6, 0.6, n), np.linspace(-0.6, 0.6, n))
    verts = np.stack([gx.ravel(), gy.ravel(), np.full(n * n, 2.0)], 1).astype(np.float32)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j
            faces += [[a, b, c], [a, c, d]]
    faces = np.array(faces)
    parts = np.random.default_rng(0).integers(0, 4, n * n)
    expected = np.array([_majority(list(parts[f])) for f in faces])
    kinds = Counter(len(set(parts[f])) for f in faces)
    assert kinds[1] and kinds[2] and kinds[3]
    np.testing.assert_array_equal(R.face_part_ids(faces, parts), expected)

    out = renderer.render([verts], faces, CAM, part_ids=parts)
    fg = out.face_id >= 0
    assert fg.sum() > 1000 and len(np.unique(out.face_id[fg])) == len(faces)
    np.testing.assert_array_equal(out.part_id[fg], expected[out.face_id[fg]])
    assert (out.part_id[~fg] == -1).all()


def test_rgb_shading(renderer):
    bg = (10, 20, 30)
    # left square faces the camera; right one is turned 60 degrees about the y axis
    facing = rect_at_depth(4.3, 28.7, 10.2, 50.6, 2.0)
    ang = np.deg2rad(60)
    s = np.array([[-.25, -.3, 0], [.25, -.3, 0], [.25, .3, 0], [-.25, .3, 0]])
    rot = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    turned = (s @ rot.T + [0.35, 0.0, 2.0]).astype(np.float32)
    out = renderer.render([facing, turned], QUAD, CAM, bg_color=bg)
    assert out.rgb.shape == (H, W, 3) and out.rgb.dtype == np.uint8
    fg = out.depth > 0
    assert (out.rgb[~fg] == bg).all()
    assert (out.rgb[fg] != bg).any(axis=1).all()
    lum0 = out.rgb[out.person_id == 0].astype(float).mean()
    lum1 = out.rgb[out.person_id == 1].astype(float).mean()
    assert abs(lum0 - lum1) > 20, (lum0, lum1)
    # planar faces, smooth normals: constant colour on each square
    assert np.ptp(out.rgb[out.person_id == 0], axis=0).max() <= 1

    # two-sided: reversing the winding (flipping the normals) changes nothing
    flipped = renderer.render([facing, turned], QUAD[:, ::-1], CAM, bg_color=bg)
    np.testing.assert_array_equal(flipped.rgb, out.rgb)

    # unlit: exactly the per-mesh colours
    flat = renderer.render([facing, turned], QUAD, CAM, shade=False,
                           colors=[(255, 0, 0), (0, 0, 255)], outputs=('person_id', 'rgb'))
    assert (flat.rgb[flat.person_id == 0] == (255, 0, 0)).all()
    assert (flat.rgb[flat.person_id == 1] == (0, 0, 255)).all()
    assert (flat.rgb[flat.person_id == -1] == 255).all()  # default white background


def test_part_palette_colours(renderer):
    verts = rect_at_depth(5.2, 58.7, 5.2, 58.7, 2.0)
    parts = np.array([0, 1, 1, 2])  # face 0: majority 1; face 1 (0, 1, 2): all differ -> first, 0
    pal = np.array([(200, 0, 0), (0, 200, 0), (0, 0, 200)])
    out = renderer.render([verts], QUAD, CAM, part_ids=parts, part_colors=pal, shade=False)
    fg = out.face_id >= 0
    np.testing.assert_array_equal(out.part_id[fg], np.array([1, 0])[out.face_id[fg]])
    np.testing.assert_array_equal(out.rgb[fg], pal[out.part_id[fg]])


def test_output_subsets_match_full_render(renderer):
    meshes = [rect_at_depth(5.2, 40.3, 5.2, 40.3, 3.0), rect_at_depth(20.7, 55.6, 25.3, 60.1, 2.0)]
    full = renderer.render(meshes, QUAD, CAM, part_ids=np.arange(4))
    for outputs in (('depth',), ('face_id', 'rgb'), ('part_id', 'person_id')):
        sub = renderer.render(meshes, QUAD, CAM, part_ids=np.arange(4), outputs=outputs)
        for name in R.OUTPUTS:
            if name in outputs:
                np.testing.assert_array_equal(getattr(sub, name), getattr(full, name))
            else:
                assert getattr(sub, name) is None
    with pytest.raises(ValueError):
        renderer.render(meshes, QUAD, CAM, outputs=('normals',))


def test_per_mesh_faces_and_offscreen(renderer):
    tri = rect_at_depth(5.2, 30.3, 5.2, 30.3, 2.0)[:3]
    quad = rect_at_depth(35.2, 60.3, 35.2, 60.3, 2.0)
    behind = quad * np.float32([1, 1, -1])  # behind the camera: invisible
    out = renderer.render([tri, quad, behind], [np.array([[0, 1, 2]]), QUAD, QUAD], CAM)
    assert set(np.unique(out.face_id[out.person_id == 0])) == {0}
    assert set(np.unique(out.face_id[out.person_id == 1])) == {0, 1}
    assert not (out.person_id == 2).any()
    none = renderer.render([behind], QUAD, CAM)
    assert (none.depth == 0).all() and (none.face_id == -1).all() and (none.rgb == 255).all()


def test_one_context_per_process_reused(renderer):
    import moderngl
    ctx = R.get_context()
    quad = rect_at_depth(5.2, 30.3, 5.2, 30.3, 2.0)
    with mock.patch.object(moderngl, 'create_standalone_context', wraps=moderngl.create_standalone_context) as new:
        a = renderer.render([quad], QUAD, CAM)
        b = R.Renderer().render([quad], QUAD, Camera(96, 80, FX, (CX, CY)))  # another size, another Renderer
        assert R.get_context() is ctx
        np.testing.assert_array_equal(a.depth > 0, b.depth[:H, :W] > 0)

        result = {}
        t = threading.Thread(target=lambda: result.update(out=renderer.render([quad], QUAD, CAM)))
        t.start()
        t.join()
        np.testing.assert_array_equal(result['out'].face_id, a.face_id)
        assert R.get_context() is ctx
    assert new.call_count == 0


def test_forked_child_gets_a_clear_error(renderer):
    quad = rect_at_depth(5.2, 30.3, 5.2, 30.3, 2.0)
    renderer.render([quad], QUAD, CAM)
    pid = os.fork()
    if pid == 0:  # child: must fail fast with UserError, never hang
        signal.alarm(20)
        code = 3
        try:
            renderer.render([quad], QUAD, CAM)
            code = 1
        except UserError as e:
            code = 0 if 'fork' in str(e) and '\n' not in str(e) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_missing_egl_is_a_one_line_user_error(monkeypatch):
    moderngl = pytest.importorskip('moderngl')

    def no_egl(*args, **kwargs):
        raise Exception('libEGL.so: cannot open shared object file: No such file or directory')

    monkeypatch.setattr(moderngl, 'create_standalone_context', no_egl)
    with pytest.raises(UserError) as err:
        R._GLState()
    msg = str(err.value)
    assert '\n' not in msg and 'EGL' in msg and f'apt-get install -y {R.APT_PACKAGES}' in msg


def test_depth_layers_match_alone_renders(renderer):
    # 10 meshes (more than one layered pass of 8), overlapping tilted quads at varied depths, and a
    # single mesh: each window equals that mesh rendered alone at full frame
    rng = np.random.default_rng(0)
    meshes, faces, wins = [], [], []
    for k in range(10):
        z = 2.0 + 0.3 * k
        v, f = rect_at_depth(5 + 3 * k, 50, 8, 40 + 2 * k, z), QUAD
        v[:, 2] += rng.uniform(-0.2, 0.2, len(v)).astype(v.dtype)
        meshes.append(v)
        faces.append(f)
        x0, y0 = int(rng.integers(0, W // 2)), int(rng.integers(0, H // 2))
        wins.append((x0, y0, int(rng.integers(x0 + 1, W + 1)), int(rng.integers(y0 + 1, H + 1))))
    for sel in (list(range(10)), [3]):
        got = renderer.render_depth_layers([meshes[i] for i in sel], [faces[i] for i in sel], CAM,
                                           [wins[i] for i in sel])
        for i, d in zip(sel, got):
            x0, y0, x1, y1 = wins[i]
            ref = renderer.render([meshes[i]], [faces[i]], CAM, outputs=('depth',)).depth
            assert d.shape == (y1 - y0, x1 - x0)
            np.testing.assert_array_equal(d, ref[y0:y1, x0:x1])
