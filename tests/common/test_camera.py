"""common/camera.py: the pinhole camera of one image and the camera of a crop of it."""
import math

import cv2
import numpy as np
import pytest

from common.camera import Camera


def test_fields_normalised_and_checked():
    cam = Camera(64.0, 48, 100, np.array([31.5, 23.5], np.float32))
    assert (cam.width, cam.height, cam.focal, cam.princpt) == (64, 48, (100.0, 100.0), (31.5, 23.5))
    assert Camera.centred((90.0, 110.0), 64, 48).princpt == (31.5, 23.5)
    with pytest.raises(ValueError, match='focal'):
        Camera(64, 48, (100.0, 0.0), (32, 24))
    with pytest.raises(ValueError, match='principal point'):
        Camera(64, 48, 100.0, (np.nan, 24))
    with pytest.raises(ValueError, match='image size'):
        Camera(0, 48, 100.0, (32, 24))


def test_project_and_outside():
    cam = Camera(64, 48, (100.0, 200.0), (32.0, 24.0))
    pts = np.array([[0.0, 0.0, 2.0], [0.2, -0.1, 1.0], [1.0, 0.0, 2.0]])
    np.testing.assert_allclose(cam.project(pts), [[32.0, 24.0], [52.0, 4.0], [82.0, 24.0]])
    assert cam.outside(pts).tolist() == [False, False, True]


def test_crop_camera_factorisation():
    # fx != fy with a rotation: the affine times diag(fx, fy) = [[fx', skew], [0, fy']] @ rotation
    a = cv2.getRotationMatrix2D((100.0, 80.0), 30.0, 0.7)
    crop = Camera(640, 480, (500.0, 520.0), (320.0, 240.0)).crop(a, 256)
    (fx2, fy2), rot, skew = crop.camera.focal, crop.rot, crop.skew
    b = a[:, :2] @ np.diag([500.0, 520.0])
    recon = np.array([[fx2, skew * fx2], [0, fy2]]) @ rot[:2, :2]
    assert not crop.flip and 0 < skew < 0.05 and (crop.camera.width, crop.camera.height) == (256, 256)
    np.testing.assert_allclose(np.abs(recon), np.abs(b), rtol=1e-9, atol=1e-9)
    assert math.isclose(crop.area_scale, 0.7 ** 2)
    crop = Camera(640, 480, 500.0, (320.0, 240.0)).crop(a, (256, 192))
    assert crop.skew < 1e-12 and np.allclose(crop.camera.focal, 0.7 * 500.0) and crop.camera.height == 192
    # a point lands on the same crop position (pixel coordinates, centres at integers) through the factorised camera
    p = np.array([0.3, -0.2, 2.5])
    img = np.array([500.0 * p[0] / p[2] + 320.0, 500.0 * p[1] / p[2] + 240.0])
    crop_c = a[:, :2] @ img + a[:, 2]   # cv2's affine acts on pixel indices, which are pixel centres
    np.testing.assert_allclose(crop.camera.project(crop.rot @ p), crop_c, atol=1e-9)


def test_mirrored_crop_is_rendered_unflipped_then_mirrored():
    a = np.array([[-0.5, 0.0, 150.0], [0.0, 0.5, -10.0]])    # u -> 150 - u/2: a mirror
    crop = Camera(320, 240, 400.0, (150.0, 125.0)).crop(a, 128)
    p = np.array([0.1, 0.2, 3.0])
    u, v = Camera(320, 240, 400.0, (150.0, 125.0)).project(p)
    want = a[:, :2] @ [u, v] + a[:, 2]
    got = crop.camera.project(crop.rot @ p)
    assert crop.flip and math.isclose(crop.area_scale, 0.25)
    np.testing.assert_allclose([127 - got[0], got[1]], want, atol=1e-9)
    with pytest.raises(ValueError, match='singular'):
        Camera(320, 240, 400.0, (150.0, 125.0)).crop(np.zeros((2, 3)), 128)
