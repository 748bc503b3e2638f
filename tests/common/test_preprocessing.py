"""Per-sample geometry (common/pipeline/preprocessing.py) against independent computations: where
cv2.warpAffine / cv2.flip actually move image content, the body model's own mirror symmetry, pinhole
projections, and hand-computed boxes."""
import math
import pickle

import cv2
import numpy as np
import pytest
import torch

from common.body.joint_sets import COCO17, SMPL30
from common.body.smpl import get_body_model
from common.pipeline import preprocessing as pp


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------
def blob_image(h, w, x, y, sigma=2.0, channels=3):
    """Image with a Gaussian dot centred at the sub-pixel position (x, y) (pixel centres at integers)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    img = (g * 250.0).astype(np.float32)
    return np.repeat(img[..., None], channels, axis=2) if channels else img


def centroid(img):
    img = img if img.ndim == 2 else img[..., 0]
    img = img.astype(np.float64)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    s = img.sum()
    return np.array([(img * xx).sum() / s, (img * yy).sum() / s])


def project(points, f, c):
    return points[..., :2] / points[..., 2:3] * np.asarray(f) + np.asarray(c)


@pytest.fixture(scope='module')
def body():
    return get_body_model('neutral', procedural_vertices=800)


@pytest.fixture(scope='module')
def mirror_map(body):
    """For each template vertex, the index of its mirror partner (nearest neighbour of (-x, y, z))."""
    t = body.template_vertices.detach().cpu().numpy().astype(np.float64)
    d = ((t[:, None] * [-1, 1, 1] - t[None]) ** 2).sum(-1)
    idx = d.argmin(1)
    assert np.sqrt(d.min(1)).max() < 1e-6, 'the body model is not left/right symmetric'
    return idx


def run_body(body, pose, shape, trans=None):
    pose = torch.as_tensor(np.atleast_2d(pose), dtype=torch.float32)
    shape = torch.as_tensor(np.atleast_2d(shape), dtype=torch.float32).expand(len(pose), -1)
    trans = None if trans is None else torch.as_tensor(np.atleast_2d(trans), dtype=torch.float32)
    with torch.no_grad():
        v, j = body(pose, shape, trans)
    return v.numpy().astype(np.float64), j.numpy().astype(np.float64)


def random_pose(rng, std=0.3):
    pose = rng.normal(0.0, std, 72)
    pose[:3] = [math.pi + rng.normal(0, 0.1), rng.normal(0, 0.2), rng.normal(0, 0.1)]  # upright in the camera
    pose[66:] = 0
    return pose


# ----------------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------------
def test_load_img_rgb_and_bad_samples(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 10
    bgr[..., 1] = 20
    bgr[..., 2] = 30  # cv2 writes BGR: the file's red is 30
    cv2.imwrite(str(tmp_path / 'a.png'), bgr)
    img = pp.load_img(tmp_path / 'a.png')
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8
    assert img[0, 0].tolist() == [30, 20, 10]
    assert pp.load_img(str(tmp_path / 'a.png'), dtype=np.float32).dtype == np.float32

    with pytest.raises(pp.BadSample) as e:
        pp.load_img(tmp_path / 'missing.jpg')
    assert 'missing.jpg' in str(e.value) and e.value.reason == 'no such file'
    (tmp_path / 'bad.jpg').write_bytes(b'not a jpeg at all' * 10)
    with pytest.raises(pp.BadSample) as e:
        pp.load_img(tmp_path / 'bad.jpg')
    assert e.value.path.endswith('bad.jpg')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    with pytest.raises(pp.BadSample):
        pp.load_img(tmp_path / 'empty.jpg')
    err = pickle.loads(pickle.dumps(e.value))  # crosses DataLoader worker processes
    assert isinstance(err, pp.BadSample) and err.reason == e.value.reason


# ----------------------------------------------------------------------------------------------------
# boxes
# ----------------------------------------------------------------------------------------------------
def test_get_bbox():
    joints = np.array([[10, 20], [30, 60], [1000, 1000]], np.float64)
    box = pp.get_bbox(joints, np.array([1, 1, 0]), extend=1.2)
    # valid span x 10..30 (w 20), y 20..60 (h 40); centre (20, 40); x1.2 -> 24 x 48
    np.testing.assert_allclose(box, [8, 16, 24, 48], atol=1e-5)
    assert pp.get_bbox(joints, np.zeros(3)) is None


def test_process_bbox_hand_computed():
    # inside: clipped (100,50)-(299,149) -> w 199, h 99; square 199; x1.25 = 248.75 about (199.5, 99.5)
    np.testing.assert_allclose(pp.process_bbox([100, 50, 200, 100], 640, 480),
                               [75.125, -24.875, 248.75, 248.75], atol=1e-4)
    # sticking out on the left: intersection (0,10)-(49,49) -> w 49, h 39; square 49 -> 61.25 about (24.5, 29.5)
    np.testing.assert_allclose(pp.process_bbox([-50, 10, 100, 40], 640, 480),
                               [-6.125, -1.125, 61.25, 61.25], atol=1e-4)
    # aspect 0.75 (w/h): w 99 > 0.75 * 99 -> h = 99 / 0.75 = 132; x1.25 -> 123.75 x 165 about (149.5, 149.5)
    np.testing.assert_allclose(pp.process_bbox([100, 100, 100, 100], 640, 480, aspect=0.75),
                               [87.625, 67.0, 123.75, 165.0], atol=1e-4)
    # degenerate: None when training, a usable box at test time
    for bad in ([700, 10, 50, 50], [10, 10, 0, 50], [10, 10, -5, 50]):
        assert pp.process_bbox(bad, 640, 480) is None
        box = pp.process_bbox(bad, 640, 480, train=False)
        assert box is not None and box[2] > 0 and box[3] > 0 and np.isfinite(box).all()


# ----------------------------------------------------------------------------------------------------
# augmentation parameters
# ----------------------------------------------------------------------------------------------------
def test_aug_config_ranges_and_determinism():
    rng = np.random.default_rng(0)
    cfgs = [pp.get_aug_config(rng) for _ in range(4000)]
    scale = np.array([c.scale for c in cfgs])
    rot = np.array([c.rot for c in cfgs])
    gain = np.stack([c.color_gain for c in cfgs])
    flip = np.array([c.do_flip for c in cfgs])
    assert scale.min() >= 0.75 and scale.max() <= 1.25 and abs(scale.mean() - 1) < 0.01
    assert (np.isclose(scale, 0.75).mean() > 0.1) and (np.isclose(scale, 1.25).mean() > 0.1)  # clipped tails
    assert rot.min() >= -60 and rot.max() <= 60
    assert abs((rot == 0).mean() - 0.4) < 0.04
    assert abs(np.abs(rot[rot != 0]).max() - 60) < 1e-9
    assert gain.shape == (4000, 3) and gain.min() >= 0.8 and gain.max() <= 1.2
    assert abs(gain.mean() - 1.0) < 0.01
    assert abs(flip.mean() - 0.5) < 0.04

    a = [pp.get_aug_config(np.random.default_rng(7)) for _ in range(2)]
    assert a[0].scale == a[1].scale and a[0].rot == a[1].rot and a[0].do_flip == a[1].do_flip
    np.testing.assert_array_equal(a[0].color_gain, a[1].color_gain)
    ident = pp.get_aug_config(np.random.default_rng(7), train=False)
    assert (ident.scale, ident.rot, ident.do_flip) == (1.0, 0.0, False) and (ident.color_gain == 1).all()
    assert pp.get_aug_config(None).scale == 1.0


# ----------------------------------------------------------------------------------------------------
# crop
# ----------------------------------------------------------------------------------------------------
def test_affine_maps_box_to_patch():
    # no rotation, scale 1: the box's left/top edges go to 0, its centre to the patch centre, its
    # right/bottom edges to the patch size
    t = pp.gen_trans_from_patch_cv(150, 100, 80, 40, 64, 32, 1.0, 0.0)
    pts = np.array([[110, 80], [150, 100], [190, 120]], np.float64)
    np.testing.assert_allclose(pts @ t[:, :2].T + t[:, 2], [[0, 0], [32, 16], [64, 32]], atol=1e-4)
    # scale 2 doubles the box; rotation by 90 deg: the box's down vector (0, +h/2) becomes (-h/2, 0)
    t = pp.gen_trans_from_patch_cv(150, 100, 40, 40, 64, 64, 2.0, 90.0)
    p = np.array([[150 - 40, 100.0]]) @ t[:, :2].T + t[:, 2]
    np.testing.assert_allclose(p, [[32, 64]], atol=1e-4)
    inv = pp.gen_trans_from_patch_cv(150, 100, 40, 40, 64, 64, 2.0, 90.0, inv=True)
    np.testing.assert_allclose(np.vstack([inv, [0, 0, 1]]) @ np.vstack([t, [0, 0, 1]]), np.eye(3), atol=1e-6)


@pytest.mark.parametrize('scale,rot,flip', [(1.0, 0.0, False), (1.0, 0.0, True), (0.8, 30.0, False),
                                            (1.2, -45.0, True), (1.25, 60.0, True), (0.75, -17.0, False)])
def test_keypoint_transform_follows_warped_content(scale, rot, flip):
    h, w, out = 180, 240, (96, 96)
    bbox = pp.process_bbox([70, 40, 90, 110], w, h)
    for kp in ([120.3, 95.7], [100.0, 60.5], [141.6, 130.2]):
        img = blob_image(h, w, *kp)
        patch, trans, inv = pp.generate_patch_image(img, bbox, scale, rot, flip, out)
        assert patch.shape == (96, 96, 3) and patch.dtype == img.dtype
        assert trans.shape == (2, 3) and inv.shape == (2, 3) and trans.dtype == np.float32
        joints = np.array([kp + [1.0]])
        pred = pp.joints_to_crop(joints, trans, flip, w, ())[0, :2]
        np.testing.assert_allclose(centroid(patch), pred, atol=0.1)  # measured: < 0.01 px
        # bb2img_trans takes the crop position back to the (possibly mirrored) image position
        back = pp.transform_joints_2d(pred[None], inv)[0]
        expect = [w - 1 - kp[0], kp[1]] if flip else kp
        np.testing.assert_allclose(back, expect, atol=1e-3)
        # the edge channel (single-channel map) goes where the image goes
        m = pp.warp_map(img[..., 0], trans, out, do_flip=flip)
        assert m.shape == (96, 96)
        np.testing.assert_allclose(m, patch[..., 0], atol=1e-3)


def test_flip_matches_cv2_flip():
    h, w = 50, 71
    img = blob_image(h, w, 20.25, 30.5)
    flipped = cv2.flip(img, 1)
    j = pp.flip_joints_2d(np.array([[20.25, 30.5, 1.0]]), w, ())
    np.testing.assert_allclose(centroid(flipped), j[0, :2], atol=1e-6)
    # the box (x,y,w,h) maps x -> 0 and x+w -> out_w, so the whole-image box at scale 1 is the identity;
    # with do_flip its centre w/2 goes to W-1-w/2 (the flip convention), i.e. the crop is cv2.flip shifted right by 1 px
    box = [0, 0, w, h]
    np.testing.assert_allclose(pp.generate_patch_image(img, box, 1.0, 0.0, False, (h, w))[0], img, atol=1e-3)
    patch = pp.generate_patch_image(img, box, 1.0, 0.0, True, (h, w))[0]
    np.testing.assert_allclose(patch[:, 1:], flipped[:, :-1], atol=1e-3)
    assert (patch[:, 0] == 0).all()  # zero border


def test_flip_twice_is_identity():
    rng = np.random.default_rng(1)
    h, w = 40, 57
    img = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    ident = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    once = pp.warp_map(img, ident, (h, w), do_flip=True)
    np.testing.assert_array_equal(once, img[:, ::-1])
    np.testing.assert_array_equal(pp.warp_map(once, ident, (h, w), do_flip=True), img)

    joints = np.concatenate([rng.uniform(0, w, (17, 2)), rng.integers(0, 2, (17, 1))], 1)
    f1 = pp.flip_joints_2d(joints, w, COCO17.flip_pairs)
    assert f1[COCO17.index('L_Wrist'), 2] == joints[COCO17.index('R_Wrist'), 2]  # validity moves too
    np.testing.assert_allclose(f1[COCO17.index('R_Knee'), 0], w - 1 - joints[COCO17.index('L_Knee'), 0])
    np.testing.assert_allclose(pp.flip_joints_2d(f1, w, COCO17.flip_pairs), joints)
    np.testing.assert_array_equal(pp.swap_flip_pairs(pp.swap_flip_pairs(joints[:, 2], COCO17, axis=-1),
                                                      COCO17, axis=-1), joints[:, 2])

    cam = rng.normal(size=(30, 3))
    np.testing.assert_allclose(pp.flip_joints_3d(pp.flip_joints_3d(cam, SMPL30.flip_pairs), SMPL30), cam)
    pose = rng.normal(size=72)
    np.testing.assert_allclose(pp.flip_smpl_pose(pp.flip_smpl_pose(pose)), pose)
    tp = torch.tensor(pose[None])
    torch.testing.assert_close(pp.flip_smpl_pose(tp), torch.tensor(pp.flip_smpl_pose(pose)[None]))


def test_color_gain_and_chw():
    patch = np.full((2, 2, 3), 200, np.uint8)
    out = pp.apply_color_gain(patch, [0.5, 1.0, 1.5])
    assert out.dtype == np.float32 and out[0, 0].tolist() == [100, 200, 255]
    chw = pp.image_to_chw(out)
    assert chw.shape == (3, 2, 2) and chw.dtype == np.float32
    np.testing.assert_allclose(chw[:, 0, 0], [100 / 255, 200 / 255, 1.0])


# ----------------------------------------------------------------------------------------------------
# keypoints on the grid
# ----------------------------------------------------------------------------------------------------
def test_grid_scaling_and_truncation():
    crop = np.array([[0, 0, 1], [255.9, 128, 1], [256, 10, 1], [-0.1, 5, 1], [100, 200, 0]], np.float64)
    grid = pp.crop_to_grid(crop, (256, 256), (64, 64))
    np.testing.assert_allclose(grid[:, :2], crop[:, :2] / 4)
    np.testing.assert_allclose(grid[:, 2], crop[:, 2])
    np.testing.assert_allclose(pp.grid_to_crop(grid, 256, 64), crop)
    mask = pp.truncation_mask(grid, crop[:, 2], (64, 64))
    assert mask.shape == (5, 1) and mask.dtype == np.float32
    assert mask[:, 0].tolist() == [1, 1, 0, 0, 0]
    j3 = np.array([[10, 10, 0], [10, 10, 63.9], [10, 10, 64], [10, 10, -1]], np.float64)
    assert pp.truncation_mask(j3, np.ones(4), 64, depth_size=64)[:, 0].tolist() == [1, 1, 0, 0]
    # non-square grid: x by widths, y by heights
    np.testing.assert_allclose(pp.crop_to_grid([[100, 100]], (256, 192), (64, 48)), [[25, 25]])


def test_depth_to_grid():
    np.testing.assert_allclose(pp.depth_to_grid([4.0, 5.0, 6.0, 5.5], 5.0, 2.0, 64), [0, 32, 64, 48])
    np.testing.assert_allclose(pp.depth_to_grid(4500.0, 5000.0, 2000.0, 64), 16)  # millimetres


# ----------------------------------------------------------------------------------------------------
# 3D: rotation and flip against the body model
# ----------------------------------------------------------------------------------------------------
def test_rotations_consistent_with_body_model_and_crop(body):
    rng = np.random.default_rng(3)
    pose, shape = random_pose(rng), rng.normal(0, 0.5, 10)
    trans = np.array([0.1, -0.05, 8.0])
    for rot in (0.0, 25.0, -50.0, 120.0):
        _, j0 = run_body(body, pose, shape, trans)
        _, j1 = run_body(body, pp.rotate_smpl_root(pose, rot), shape, trans)
        rel0, rel1 = j0[0] - j0[0, 0], j1[0] - j1[0, 0]
        np.testing.assert_allclose(rel1, pp.rotate_root_relative(rel0, rot), atol=2e-5)
        np.testing.assert_allclose(pp.rotate_smpl_root(pose, rot)[3:], pose[3:])

        # 2D: a camera whose principal point is the box centre; the crop rotation of the projected joints
        # equals the projection of the Rz(-rot)-rotated joints (about the camera axis through the root)
        f, c, box, scale, out = 1200.0, np.array([300.0, 200.0]), 180.0, 1.1, 256
        cam = rel0 + [0, 0, 6.0]
        u = project(cam, f, c)
        t = pp.gen_trans_from_patch_cv(c[0], c[1], box, box, out, out, scale, rot)
        crop = pp.transform_joints_2d(u, t)
        rotated = pp.rotate_root_relative(rel0, rot) + [0, 0, 6.0]
        np.testing.assert_allclose(crop, project(rotated, f * out / (box * scale), (out / 2, out / 2)), atol=1e-3)
    # the rotation sense: content turns by -rot on screen (x right, y down)
    t = pp.gen_trans_from_patch_cv(0, 0, 2, 2, 2, 2, 1.0, 90.0)
    np.testing.assert_allclose(pp.transform_joints_2d(np.array([[1.0, 0.0]]), t), [[1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(pp.rotate_root_relative(np.array([[1.0, 0, 0]]), 90.0), [[0, -1, 0]], atol=1e-12)


def test_flipped_pose_mirrors_the_mesh(body, mirror_map):
    rng = np.random.default_rng(4)
    for _ in range(3):
        pose, shape = random_pose(rng, 0.4), rng.normal(0, 0.8, 10)
        v0, j0 = run_body(body, pose, shape)
        v1, j1 = run_body(body, pp.flip_smpl_pose(pose), shape)
        np.testing.assert_allclose(v1[0][mirror_map], v0[0] * [-1, 1, 1], atol=2e-5)
        np.testing.assert_allclose(j1[0], pp.flip_joints_3d(j0[0], SMPL30.flip_pairs), atol=2e-5)


@pytest.mark.parametrize('cx', [319.5, 300.0, 350.0])
def test_flipped_body_projects_to_flipped_image(body, cx):
    rng = np.random.default_rng(5)
    W, f, cy = 640, 1500.0, 240.0
    pose, shape = random_pose(rng), rng.normal(0, 0.5, 10)
    trans = np.array([0.4, 0.2, 6.0])
    _, j0 = run_body(body, pose, shape, trans)
    u0 = project(j0[0], f, (cx, cy))
    new_trans = pp.flip_smpl_translation(trans, j0[0, 0], f, cx, W)
    np.testing.assert_allclose(new_trans[1:], trans[1:])
    _, j1 = run_body(body, pp.flip_smpl_pose(pose), shape, new_trans)
    u1 = project(j1[0], f, (cx, cy))
    expect = pp.flip_joints_2d(u0, W, SMPL30.flip_pairs)  # u -> W-1-u, left/right swapped
    np.testing.assert_allclose(u1[0], expect[0], atol=2e-3)  # the root: exact
    # the rest: exact when cx = (W-1)/2, else off by -(W-1-2cx) dz / Z px (Z the joint's depth, dz its
    # depth offset from the root; derived by hand from the pinhole model)
    z = pp.flip_joints_3d(j0[0], SMPL30.flip_pairs)[:, 2]
    np.testing.assert_allclose(u1[:, 0] - expect[:, 0], -(W - 1 - 2 * cx) * (z - j0[0, 0, 2]) / z, atol=2e-3)
    np.testing.assert_allclose(u1[:, 1], expect[:, 1], atol=2e-3)
    if cx == 319.5:
        np.testing.assert_allclose(u1, expect, atol=2e-3)

    # the general form (flipped-pose root measured) agrees on this symmetric model
    _, jf = run_body(body, pp.flip_smpl_pose(pose), shape)
    t2 = pp.flip_smpl_translation(trans, j0[0, 0], f, cx, W, flipped_root_x=jf[0, 0, 0])
    np.testing.assert_allclose(t2, new_trans, atol=1e-6)


def test_spec_translation_shift_when_root_on_symmetry_plane(body):
    """3DCrowdNet's formula (shift = 2((W-1)/2 - cx)/fx Z - 2X of the root) is exact when the root joint
    lies on the model's symmetry plane, e.g. for a left/right-symmetric pose."""
    W, f, cx, cy = 640, 1500.0, 300.0, 240.0
    pose = np.zeros(72)
    pose[:3] = [math.pi, 0, 0]
    pose[3 * 12] = 0.3  # neck bend: symmetric
    shape = np.zeros(10)
    trans = np.array([-0.3, 0.1, 5.0])
    _, j0 = run_body(body, pose, shape, trans)
    shift = pp.flip_translation_shift(j0[0, 0], f, cx, W)
    _, j1 = run_body(body, pp.flip_smpl_pose(pose), shape, trans + [shift, 0, 0])
    u0, u1 = project(j0[0, 0], f, (cx, cy)), project(j1[0, 0], f, (cx, cy))
    np.testing.assert_allclose(u1, [W - 1 - u0[0], u0[1]], atol=2e-3)


def test_published_crop_convention_shifts_boxes_that_stick_out_and_warps_float():
    """data.crop_convention=published: 3DCrowdNet's clipping (x2 from the clipped x1) and float32 warping."""
    box = (-20.0, -10.0, 100.0, 50.0)   # sticks out on the left and the top of a 200 x 150 image
    ours = pp.process_bbox(box, 200, 150, aspect=1.0, scale=1.0)
    pub = pp.process_bbox(box, 200, 150, aspect=1.0, scale=1.0, published=True)
    # ours: the intersection [0, 79] x [0, 39]; published: [0, 99] x [0, 49], the whole size moved inwards
    np.testing.assert_allclose(ours, [0.0, -20.0, 79.0, 79.0], atol=1e-4)
    np.testing.assert_allclose(pub, [0.0, -25.0, 99.0, 99.0], atol=1e-4)
    inside = (30.0, 20.0, 60.0, 60.0)   # a box inside the image: the same either way
    np.testing.assert_allclose(pp.process_bbox(inside, 200, 150), pp.process_bbox(inside, 200, 150, published=True))
    img = np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    pose = np.array([[60.0, 50.0, 1.0], [90.0, 80.0, 1.0]])
    a = pp.test_crop(img, inside, pose, 0.1, 64)[0]
    b = pp.test_crop(img, inside, pose, 0.1, 64, published=True)[0]
    assert a.dtype == np.uint8 and b.dtype == np.float32
    diff = np.abs(a.astype(np.float32) - b)
    assert 0 < diff.max() <= 0.5 + 1e-3    # uint8 warping rounds; the published float warp does not
