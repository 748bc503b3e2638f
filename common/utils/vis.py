"""All drawing of the project: mesh overlays, edge maps as images, 2D poses, image grids.

Images are HxWx3 uint8 RGB numpy arrays. Meshes are drawn with the one renderer (common/utils/render.py),
in camera coordinates with a pinhole camera, in the OpenCV pixel convention of the data pipeline.
"""
import cv2
import numpy as np

# one colour per model / person (RGB), distinguishable on photos
PALETTE = ((90, 160, 255), (255, 140, 60), (120, 220, 120), (230, 90, 200), (250, 220, 80), (100, 230, 230),
           (200, 120, 90), (160, 160, 255))


def to_uint8_image(img):
    """[3,H,W] or [H,W,3] float in [0,1] (torch or numpy) -> HxWx3 uint8."""
    a = img.detach().float().cpu().numpy() if hasattr(img, 'detach') else np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.clip(a * 255 if a.max() <= 1.0 + 1e-6 else a, 0, 255).astype(np.uint8)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def edge_image(edge, vmax=None):
    """An edge map ([1,H,W] or [H,W], any scale) -> HxWx3 uint8, white edges on black, scaled to vmax
    (default: its maximum, at least 1, so a [0,1] map keeps its values)."""
    a = edge.detach().float().cpu().numpy() if hasattr(edge, 'detach') else np.asarray(edge, np.float32)
    a = a.reshape(a.shape[-2:])
    vmax = vmax or max(1.0, float(a.max()))
    g = np.clip(a / vmax * 255, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def render_meshes(img, meshes, faces, focal, princpt, colors=None, alpha=0.85):
    """The meshes (camera frame, m) drawn over img together, nearest surface in front (depth order), shaded.
    Returns (overlay HxWx3 uint8, mask HxW bool of the pixels any mesh covers)."""
    from common.utils.render import Renderer
    img = to_uint8_image(img)
    meshes = [np.asarray(m.detach().cpu() if hasattr(m, 'detach') else m, np.float32) for m in meshes]
    if not meshes:
        return img.copy(), np.zeros(img.shape[:2], bool)
    colors = colors if colors is not None else [PALETTE[i % len(PALETTE)] for i in range(len(meshes))]
    faces = np.asarray(faces.cpu() if hasattr(faces, 'cpu') else faces, np.int64)
    out = Renderer().render(meshes, faces, focal, princpt, img.shape[1], img.shape[0], colors=colors,
                            outputs=('rgb', 'person_id'))
    mask = out.person_id >= 0
    blended = img.copy()
    blended[mask] = (alpha * out.rgb[mask] + (1 - alpha) * img[mask]).astype(np.uint8)
    return blended, mask


def draw_pose(img, joints, skeleton, conf=None, thr=0.1, color=(255, 60, 60), radius=2):
    """2D joints [J,2] (+ optional confidences) and their skeleton lines on a copy of img."""
    out = to_uint8_image(img).copy()
    joints = np.asarray(joints, np.float32)
    ok = np.ones(len(joints), bool) if conf is None else np.asarray(conf) > thr
    for a, b in skeleton:
        if ok[a] and ok[b]:
            cv2.line(out, tuple(int(round(v)) for v in joints[a]), tuple(int(round(v)) for v in joints[b]), color, 1,
                     cv2.LINE_AA)
    for j, p in enumerate(joints):
        if ok[j]:
            cv2.circle(out, (int(round(p[0])), int(round(p[1]))), radius, color, -1, cv2.LINE_AA)
    return out


def label(img, text, scale=0.4):
    """A copy of img with a text banner at the top."""
    out = to_uint8_image(img).copy()
    h = int(18 * scale / 0.4)
    cv2.rectangle(out, (0, 0), (out.shape[1], h), (0, 0, 0), -1)
    cv2.putText(out, text, (3, h - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grid(images, cols, pad=2, bg=255):
    """Images of one size tiled row by row into one image (short last row padded)."""
    images = [to_uint8_image(i) for i in images]
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), bg, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = cv2.resize(im, (w, h)) if im.shape[:2] != (h, w) else im
    return out
