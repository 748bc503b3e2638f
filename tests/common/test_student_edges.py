"""The student's Canny edge: the two implementations (kornia in the model, OpenCV in the loader) and where each
is computed."""
import cv2
import numpy as np
import pytest
import torch

from common.edges.base import build_edge
from common.edges.canny import canny_edge_map, opencv_canny, to_grayscale
from main.config import EdgeConfig, load_config
from tests import fixtures


@pytest.fixture(scope='module')
def photo():
    """A real photograph (scikit-image's astronaut), 128x128 RGB uint8."""
    from skimage import data
    return cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)


def test_opencv_canny_reproduces_kornias_hysteresis_edges(photo):
    """Same grayscale, blur, Sobel and thresholds: the binary edges agree except for NMS tie-breaking."""
    import kornia
    img = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    k = kornia.filters.canny(to_grayscale(img), 0.1, 0.2)[1][0, 0].numpy() > 0
    o = opencv_canny(photo, dilation=1) > 0
    assert k.sum() > 300 and o.sum() > 300
    both = (k & o).sum()
    assert both / o.sum() > 0.95 and both / k.sum() > 0.95


def test_step_edge_closed_form():
    """A vertical step from 0 to 1: the Canny magnitude (unnormalised Sobel of the Gaussian-blurred step) peaks on
    the two columns at the step, and both implementations mark them (dilated to 5 columns)."""
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = 255
    o = opencv_canny(img, dilation=5)
    cols = np.nonzero(o[16])[0]
    assert set(cols) >= {15, 16} and cols.min() >= 13 and cols.max() <= 18
    k = canny_edge_map(torch.from_numpy(img / 255).permute(2, 0, 1)[None], dilation=1)[0, 0, 16]
    peak = k[14:18].max().item()
    # Gaussian 5x5 sigma 1 of a unit step, then [-1, 0, 1] x [1, 2, 1]: at the step 4 * (g(0)+g(1)) / sum(g)
    g = np.exp(-np.arange(-2, 3) ** 2 / 2.0)
    g /= g.sum()
    expected = 4 * (g[2] + g[3])
    assert peak == pytest.approx(expected, rel=1e-3)
    assert k[:12].abs().max() == 0 and k[21:].abs().max() == 0


def test_where_each_edge_is_computed(tmp_path):
    """kornia: in the model, from the crop; opencv: in the loader, from the crop the model sees."""
    root = tmp_path
    fixtures.write_pw3d(root / 'Synthetic', num_images=1, split='train', image_root=root / 'Synthetic' / 'imageFiles')
    from data.dataset import get_dataset_class
    base = ['model.backbone=resnet18', 'model.procedural_vertices=800', 'model.input_size=64', f'data.root={root}',
            'mode=student', 'edge.type=canny']
    assert not build_edge(EdgeConfig(type='canny')).in_loader
    assert build_edge(EdgeConfig(type='canny', canny_impl='opencv')).in_loader
    kornia_ds = get_dataset_class('Synthetic')(load_config(None, base), 'train')
    inputs, _, _ = kornia_ds[0]
    assert 'edge' not in inputs and 'teacher_edge' not in inputs  # edge-only student: nothing rendered
    ds = get_dataset_class('Synthetic')(load_config(None, base + ['edge.canny_impl=opencv']), 'train')
    torch.manual_seed(3)
    inputs, _, _ = ds[0]
    patch = (inputs['img'].permute(1, 2, 0).numpy() * 255)
    expected = opencv_canny(patch)
    # the loader used the float crop before the /255: equal up to the float rounding of that division
    assert (inputs['edge'][0].numpy() != expected).mean() < 1e-3
    assert set(np.unique(inputs['edge'].numpy())) <= {0.0, 1.0}
