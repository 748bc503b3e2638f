"""common/edges (SMPL overlap edges, SEFD's Canny) against expectations computed independently: pixel
centres inside projected squares, 4-neighbour boundaries and dilations written out here in numpy.

Camera: OpenCV axes, x_pix = f*X/Z + c, OpenCV's pixel convention: pixel (u, v) has its centre at the
integer point (u, v) and is covered iff that point is inside.
"""

import cv2
import numpy as np
import pytest
import torch

from common.camera import Camera
from common.edges import overlap as O
from common.edges.canny import canny_edge_map, canny_magnitude, max_filter

W, H = 160, 120
F = 200.0
C = (80.0, 60.0)
CAM = Camera(W, H, F, C)
QUAD = np.array([[0, 1, 2], [0, 2, 3]])
SMALL = 10.0      # box area that means no dilation (also at 2x crops: 40 px^2)




def polygon(px, py, z):
    """A flat quad at depth z whose corners project to pixel coordinates (px[k], py[k])."""
    px, py = np.asarray(px, float), np.asarray(py, float)
    return np.stack([(px - C[0]) * z / F, (py - C[1]) * z / F, np.full(4, z)], 1).astype(np.float32)


def rect(x0, x1, y0, y1, z):
    return polygon([x0, x1, x1, x0], [y0, y0, y1, y1], z)


def inside(px, py, w=W, h=H):
    """[h, w] bool: pixel centres strictly inside the convex polygon (px, py) (no centre on an edge)."""
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    px, py = np.asarray(px, float), np.asarray(py, float)
    cross = []
    for k in range(len(px)):
        ax, ay, bx, by = px[k], py[k], px[(k + 1) % len(px)], py[(k + 1) % len(py)]
        cross.append((bx - ax) * (v - ay) - (by - ay) * (u - ax))
    cross = np.stack(cross)
    assert np.abs(cross).min() > 1e-6, 'a pixel centre lies on an edge: move the polygon'
    return (cross > 0).all(0) | (cross < 0).all(0)


def inside_rect(x0, x1, y0, y1):
    return inside([x0, x1, x1, x0], [y0, y0, y1, y1])


def boundary(mask):
    """Mask pixels with a 4-neighbour outside the mask (neighbours beyond the array: same as the pixel)."""
    p = np.pad(mask, 1, mode='edge')
    all_in = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~all_in


def dilate(mask, k):
    """Max over a k x k square, written out with shifts."""
    r = k // 2
    p = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(k):
        for dx in range(k):
            out |= p[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return out


def edges(meshes, areas, renderer, method='geometric', **kw):
    return O.overlap_edges(meshes, QUAD, CAM, areas, method=method, renderer=renderer, **kw)


# --------------------------------------------------------------------------------------------------

def test_dilation_size_thresholds():
    cases = {0: 1, 1: 1, 255.9: 1, 256: 1, 256.01: 3, 1000: 3, 4096: 3, 4096.5: 5, 20000: 5, 65536: 5,
             65537: 7, 1e7: 7}
    for area, k in cases.items():
        assert O.dilation_size(area) == k, area
    assert O.dilation_size(16 * 16) == 1 and O.dilation_size(64 * 64) == 3 and O.dilation_size(256 * 256) == 5
    for bad in (-1, float('nan'), float('inf')):
        with pytest.raises(ValueError):
            O.dilation_size(bad)


def test_hidden_contour_of_rear_square_exact(renderer):
    rear, front = (20.3, 90.7, 15.4, 80.6), (55.2, 130.6, 40.3, 105.7)
    in_r, in_f = inside_rect(*rear), inside_rect(*front)
    expected = boundary(in_r) & in_f
    assert expected.sum() > 40
    for order in ((0, 1), (1, 0)):  # the order of the people must not matter
        meshes = [rect(*rear, 3.0), rect(*front, 2.0)]
        ov, al = edges([meshes[k] for k in order], [SMALL, SMALL], renderer, return_all=True)
        assert ov.dtype == np.float32 and ov.shape == (H, W)
        np.testing.assert_array_equal(ov, expected.astype(np.float32))
        # all edges: the front square's outline and the visible part of the rear one
        np.testing.assert_array_equal(al, (boundary(in_f) | (boundary(in_r) & ~in_f)).astype(np.float32))


def test_no_overlap_edges_when_apart(renderer):
    a, b = (10.3, 60.6, 20.2, 90.7), (80.4, 140.3, 10.6, 70.3)
    ov, al = edges([rect(*a, 3.0), rect(*b, 2.0)], [SMALL, SMALL], renderer, return_all=True)
    assert not ov.any()
    np.testing.assert_array_equal(al, (boundary(inside_rect(*a)) | boundary(inside_rect(*b))).astype(np.float32))
    assert not edges([], [], renderer).any()


def test_self_occlusion_counts_only_when_visible_alone(renderer):
    # person 0 is two quads: q1 (z=2) in front of q2 (z=3); person 1 (z=1) covers the area where they meet
    q1, q2, p1 = (30.2, 80.7, 30.4, 90.6), (60.3, 120.4, 20.3, 70.8), (50.6, 100.3, 40.2, 100.7)
    m0 = np.concatenate([rect(*q1, 2.0), rect(*q2, 3.0)])
    faces0 = np.concatenate([QUAD, QUAD + 4])
    in1, in2, inp = inside_rect(*q1), inside_rect(*q2), inside_rect(*p1)
    contour0 = boundary(in1) | (boundary(in2) & ~in1)   # q2's outline under q1 is no contour of person 0
    ov = O.overlap_edges([m0, rect(*p1, 1.0)], [faces0, QUAD], CAM, [SMALL, SMALL], renderer=renderer)
    np.testing.assert_array_equal(ov, (contour0 & inp).astype(np.float32))
    assert (boundary(in1) & ~boundary(in1 | in2) & inp).any()  # the self-occlusion part is tested


def test_mesh_crossing_the_near_plane(renderer):
    # the front person covers the whole image and has a part behind the camera (clipped by the renderer)
    rear = (20.3, 90.7, 15.4, 80.6)
    front = np.concatenate([rect(-50.3, 210.6, -40.2, 170.7, 1.0),
                            np.array([[0, 0, -1.0], [0.3, 0, -1.0], [0, 0.3, -1.0]], np.float32)])
    faces = [QUAD, np.concatenate([QUAD, [[4, 5, 6]]])]
    ov = O.overlap_edges([rect(*rear, 3.0), front], faces, CAM, [SMALL, SMALL], renderer=renderer)
    np.testing.assert_array_equal(ov, boundary(inside_rect(*rear)).astype(np.float32))


def test_dilation_is_per_person(renderer):
    # two separate pairs in one image; each rear square's hidden contour is dilated with ITS size
    a_rear, a_front = (4.3, 50.6, 10.2, 60.7), (30.4, 70.3, 35.6, 100.2)
    b_rear, b_front = (95.3, 150.6, 8.4, 60.3), (85.6, 125.2, 40.3, 110.6)
    meshes = [rect(*a_rear, 4.0), rect(*a_front, 2.0), rect(*b_rear, 4.0), rect(*b_front, 2.0)]
    areas = [1000.0, 1e6, 1e6, SMALL]   # rear A: 3x3; rear B: 7x7 (the fronts' sizes must not be used)
    ha = boundary(inside_rect(*a_rear)) & inside_rect(*a_front)
    hb = boundary(inside_rect(*b_rear)) & inside_rect(*b_front)
    ov = edges(meshes, areas, renderer)
    np.testing.assert_array_equal(ov, (dilate(ha, 3) | dilate(hb, 7)).astype(np.float32))


def test_occluding_option_adds_the_front_outline_over_the_rear(renderer):
    rear, front = (20.3, 90.7, 15.4, 80.6), (55.2, 130.6, 40.3, 105.7)
    in_r, in_f = inside_rect(*rear), inside_rect(*front)
    ov = edges([rect(*rear, 3.0), rect(*front, 2.0)], [SMALL, SMALL], renderer, occluding=True)
    np.testing.assert_array_equal(ov, ((boundary(in_r) & in_f) | (boundary(in_f) & in_r)).astype(np.float32))


def test_canny_method_finds_the_hidden_contour(renderer):
    # rotated quads: a non-antialiased axis-aligned step makes kornia's NMS ties (see canny.py)
    def square(cx, cy, r, a):
        t = a + np.arange(4) * np.pi / 2
        return cx + r * np.cos(t), cy + r * np.sin(t)
    rear, front = square(60.3, 55.2, 38.0, 0.3), square(100.2, 68.3, 40.0, 0.5)
    in_r, in_f = inside(*rear), inside(*front)
    hidden = boundary(in_r) & in_f
    ov, al = edges([polygon(*rear, 3.0), polygon(*front, 2.0)], [SMALL, SMALL], renderer, 'canny', return_all=True)
    assert ov.dtype == np.float32 and ov.min() >= 0 and ov.max() <= 1
    hit = (ov > 0.1).astype(np.uint8)
    dist = cv2.distanceTransform(1 - hit, cv2.DIST_L2, 3)
    assert (dist[hidden] <= 2).mean() > 0.9
    # nothing far from where the two overlap (the canny map also holds the front outline over the rear)
    far = cv2.distanceTransform(1 - (in_r & in_f).astype(np.uint8), cv2.DIST_L2, 3) > 6
    assert not ov[far].any()
    # all edges: the outline of the two against the background (same grey, same normal: the front
    # square's outline over the rear one has no contrast in the joint render)
    vis = boundary(in_r | in_f).astype(np.uint8)
    d_all = cv2.distanceTransform(1 - (al > 0.1).astype(np.uint8), cv2.DIST_L2, 3)
    assert (d_all[vis > 0] <= 2).mean() > 0.9


def test_canny_method_equals_full_frame_reference(renderer):
    # the windowed renders + Canny give the same map as the full-frame pipeline written out here
    meshes = [polygon([20.3, 90.7, 85.1, 25.6], [15.4, 18.1, 80.6, 77.3], 3.0),
              polygon([55.2, 130.6, 126.3, 60.1], [40.3, 44.4, 105.7, 100.2], 2.0)]
    areas = [5000.0, 1000.0]   # 5x5 and 3x3
    ov = edges(meshes, areas, renderer, 'canny')

    def emap(ms, k, ids=None):
        rgb = renderer.render(ms, QUAD, CAM, outputs=('rgb',)).rgb
        e = canny_magnitude(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()
        return e, (cv2.dilate(e, np.ones((k, k), np.uint8)) if k > 1 else e)
    total = emap([meshes[0]], 5)[1] + emap([meshes[1]], 3)[1]
    e_all, _ = emap(meshes, 1)
    pid = renderer.render(meshes, QUAD, CAM, outputs=('person_id',)).person_id
    # each pixel's person: the one shown there, else one within 4 px (Canny's reach; ties: the higher id)
    owner = pid.copy()
    for i in (0, 1):
        near = cv2.dilate((pid == i).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        owner[(pid < 0) & near] = i
    ks = np.where(owner == 0, 5, np.where(owner == 1, 3, 1))
    joint = np.maximum(cv2.dilate(np.where(ks == 5, e_all, 0), np.ones((5, 5), np.uint8)),
                       cv2.dilate(np.where(ks == 3, e_all, 0), np.ones((3, 3), np.uint8)))
    joint = np.maximum(joint, np.where(ks == 1, e_all, 0))
    np.testing.assert_allclose(ov, np.clip(total - joint, 0, 1), atol=1e-6)


# --------------------------------------------------------------------------------------------------
# crops

@pytest.fixture(scope='module')
def two_bodies():
    from common.body.body_samples import random_smpl_params
    from common.body.smpl import get_body_model
    model = get_body_model('neutral', procedural_vertices=800)
    g = torch.Generator().manual_seed(3)
    pose, shape = random_smpl_params(2, g)
    pose[:, 3 * 16 + 2] -= 1.0   # arms down
    pose[:, 3 * 17 + 2] += 1.0
    trans = torch.tensor([[-0.12, 0.1, 3.0], [0.12, 0.05, 3.8]])
    with torch.no_grad():
        v, _ = model(pose, shape, trans)
    return list(v.numpy()), model.faces


def _full(scene, renderer, w=400, h=480, f=(500.0, 500.0), c=(200.0, 240.0)):
    meshes, faces = scene
    return O.overlap_edges(meshes, faces, Camera(w, h, f, c), [SMALL, SMALL], renderer=renderer)


def _crop(scene, a, size, renderer, f=(500.0, 500.0), c=(200.0, 240.0)):
    meshes, faces = scene
    return O.overlap_edges_crop(meshes, faces, Camera(400, 480, f, c), a, size, [SMALL, SMALL], renderer=renderer)


def test_crop_translation_flip_and_quarter_turn_are_exact(two_bodies, renderer):
    full = _full(two_bodies, renderer)
    assert full.sum() > 150
    x0, y0, cw, ch = 110, 120, 180, 220
    ref = full[y0:y0 + ch, x0:x0 + cw]
    inner = np.s_[1:-1, 1:-1]   # the crop cannot see beyond its border (its outline there is unknown)
    shift = np.array([[1.0, 0, -x0], [0, 1, -y0]])
    np.testing.assert_array_equal(_crop(two_bodies, shift, (cw, ch), renderer)[inner], ref[inner])
    flip = np.array([[-1.0, 0, x0 + cw - 1], [0, 1, -y0]])    # u -> cw-1-(u-x0)
    np.testing.assert_array_equal(_crop(two_bodies, flip, (cw, ch), renderer)[inner], ref[:, ::-1][inner])
    # a quarter turn (u, v) -> (v - y0, cw' - 1 - (u - x0)): np.rot90 of the window
    rot = np.array([[0.0, 1, -y0], [-1, 0, x0 + cw - 1]])
    np.testing.assert_array_equal(_crop(two_bodies, rot, (ch, cw), renderer)[inner], np.rot90(ref)[inner])


@pytest.mark.parametrize('deg,scale,flip', [(25.0, 0.8, False), (-35.0, 1.6, False), (15.0, 1.0, True)])
def test_crop_matches_warped_full_map(two_bodies, renderer, deg, scale, flip):
    full = _full(two_bodies, renderer)
    size = 256
    a = cv2.getRotationMatrix2D((200.0, 250.0), deg, scale)
    a[:, 2] += np.array([size / 2, size / 2]) - np.array([200.0, 250.0])
    if flip:
        a = np.array([[-1.0, 0, size - 1], [0, 1, 0]]) @ np.vstack([a, [0, 0, 1]])
    crop = _crop(two_bodies, a, size, renderer)
    warped = cv2.warpAffine(full, a, (size, size), flags=cv2.INTER_LINEAR)
    c_edge, w_edge = crop > 0, warped > 0.25
    assert c_edge.sum() > 30 and w_edge.sum() > 30
    d_to_w = cv2.distanceTransform((~w_edge).astype(np.uint8), cv2.DIST_L2, 3)
    d_to_c = cv2.distanceTransform((~c_edge).astype(np.uint8), cv2.DIST_L2, 3)
    # crop pixels lie on the warped map's band (measured: all of them within 1 px), and the band's pixels
    # near a crop pixel (measured >= 0.98: its 2-3 px wide band at 1.6x holds a few farther pixels)
    assert (d_to_w[c_edge] <= 1).mean() > 0.98
    assert (d_to_c[w_edge] <= 2).mean() > 0.95


def test_crop_scales_box_areas_for_dilation(two_bodies, renderer):
    # 4096 px^2 in the image, a 0.5x crop: 1024 px^2 there -> 3x3; at 2x: 16384 -> 5x5
    meshes, faces = two_bodies
    for s, k in ((0.5, 3), (2.0, 5)):
        a = np.array([[s, 0, -100 * s], [0, s, -50 * s]])
        cam = Camera(400, 480, 500.0, (200.0, 240.0))
        thin = O.overlap_edges_crop(meshes, faces, cam, a, 256, [SMALL, SMALL], renderer=renderer)
        thick = O.overlap_edges_crop(meshes, faces, cam, a, 256, [4096.0, 4096.0], renderer=renderer)
        assert thin.sum() > 30
        np.testing.assert_array_equal(thick > 0, dilate(thin > 0, k))


# --------------------------------------------------------------------------------------------------
# inputs

def test_inputs_checked_and_torch_accepted(renderer):
    m = [rect(20.3, 90.7, 15.4, 80.6, 3.0), rect(55.2, 130.6, 40.3, 105.7, 2.0)]
    with pytest.raises(ValueError, match='method'):
        edges(m, [SMALL, SMALL], renderer, method='sobel')
    with pytest.raises(ValueError, match='box_areas'):
        edges(m, [SMALL], renderer)
    with pytest.raises(ValueError, match='occluding'):
        edges(m, [SMALL, SMALL], renderer, method='canny', occluding=True)
    with pytest.raises(ValueError, match='singular'):
        O.overlap_edges_crop(m, QUAD, CAM, np.zeros((2, 3)), 64, [SMALL, SMALL], renderer=renderer)
    ref = edges(m, [SMALL, SMALL], renderer)
    got = O.overlap_edges(torch.from_numpy(np.stack(m)), torch.from_numpy(QUAD), CAM,
                          torch.tensor([SMALL, SMALL]), renderer=renderer)
    np.testing.assert_array_equal(got, ref)


# --------------------------------------------------------------------------------------------------
# SEFD's Canny

def test_canny_magnitude_is_sefds_definition():
    import kornia
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 40, 48, generator=g)
    img = torch.nn.functional.avg_pool2d(img, 3, 1, 1)   # some structure
    got = canny_magnitude(img)
    # SEFD: bgr_to_rgb on an RGB image, then rgb_to_grayscale, then kornia's canny with defaults, output[0]
    ref = kornia.filters.canny(kornia.color.rgb_to_grayscale(img.flip(1)))[0]
    torch.testing.assert_close(got, ref)
    assert got.shape == (2, 1, 40, 48) and got.dtype == img.dtype
    plain = canny_magnitude(img, swap_rb=False)
    torch.testing.assert_close(plain, kornia.filters.canny(kornia.color.rgb_to_grayscale(img))[0])


def test_canny_magnitude_is_a_thin_unthresholded_magnitude():
    # a bright disc: the magnitude peaks on a one-pixel ring and exceeds 1 (un-normalised Sobel)
    u, v = np.meshgrid(np.arange(64) + 0.5, np.arange(64) + 0.5)
    disc = ((u - 31.3) ** 2 + (v - 30.8) ** 2 < 18.2 ** 2).astype(np.float32)
    m = canny_magnitude(torch.from_numpy(disc)[None, None].expand(1, 3, 64, 64).contiguous())[0, 0].numpy()
    ring = boundary(disc > 0) | boundary(disc == 0)
    assert m.max() > 1
    strong = m > 0.5
    d = cv2.distanceTransform((~ring).astype(np.uint8), cv2.DIST_L2, 3)
    assert (d[strong] <= 1.5).all() and strong.sum() > 0.5 * boundary(disc > 0).sum()


def test_max_filter_is_flat_dilation():
    import kornia
    x = torch.rand(1, 1, 20, 24, generator=torch.Generator().manual_seed(1))
    for k in (1, 3, 5, 7):
        ref = x if k == 1 else kornia.morphology.dilation(x, torch.ones(k, k))
        torch.testing.assert_close(max_filter(x, k), ref)
    with pytest.raises(ValueError):
        max_filter(x, 4)
    e = canny_edge_map(x.expand(1, 3, 20, 24), dilation=5, clip=True)
    assert e.shape == (1, 1, 20, 24) and float(e.max()) <= 1
