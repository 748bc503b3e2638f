"""All drawing of images: mesh overlays, edge maps as images, 2D poses, image grids, labelled montages (the reports'
charts are tool/runs/charts.py).

Images are HxWx3 uint8 RGB numpy arrays. Meshes are drawn with the one renderer (common/render/renderer.py),
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


def render_meshes(img, meshes, faces, camera, colors=None, alpha=0.85):
    """The meshes (camera frame, m) drawn over img together, nearest surface in front (depth order), shaded;
    camera: img's common.camera.Camera. Returns (overlay HxWx3 uint8, mask HxW bool of the pixels any mesh
    covers)."""
    blended, person_id = render_scene(img, meshes, faces, camera, colors, alpha)
    return blended, person_id >= 0


def render_scene(img, meshes, faces, camera, colors=None, alpha=0.85):
    """render_meshes, returning (overlay, person id map HxW int32: the index of the mesh seen at each pixel,
    -1 where none)."""
    from common.render.renderer import Renderer
    img = to_uint8_image(img)
    if (camera.width, camera.height) != (img.shape[1], img.shape[0]):
        raise ValueError(f'the camera is {camera.width}x{camera.height}, the image {img.shape[1]}x{img.shape[0]}')
    meshes = [np.asarray(m.detach().cpu() if hasattr(m, 'detach') else m, np.float32) for m in meshes]
    if not meshes:
        return img.copy(), np.full(img.shape[:2], -1, np.int32)
    colors = colors if colors is not None else [PALETTE[i % len(PALETTE)] for i in range(len(meshes))]
    faces = np.asarray(faces.cpu() if hasattr(faces, 'cpu') else faces, np.int64)
    out = Renderer().render(meshes, faces, camera, colors=colors, outputs=('rgb', 'person_id'))
    mask = out.person_id >= 0
    blended = img.copy()
    blended[mask] = (alpha * out.rgb[mask] + (1 - alpha) * img[mask]).astype(np.uint8)
    return blended, out.person_id.astype(np.int32)


def draw_pose(img, joints, skeleton, conf=None, thr=0.1, color=(255, 60, 60), radius=2, thickness=1):
    """2D joints [J,2] (+ optional confidences) and their skeleton lines on a copy of img."""
    out = to_uint8_image(img).copy()
    joints = np.asarray(joints, np.float32)
    ok = np.ones(len(joints), bool) if conf is None else np.asarray(conf) > thr
    for a, b in skeleton:
        if ok[a] and ok[b]:
            cv2.line(out, tuple(int(round(v)) for v in joints[a]), tuple(int(round(v)) for v in joints[b]), color,
                     thickness, cv2.LINE_AA)
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


# ---------------------------------------------------------------------------------------------- montages
def fit_tile(img, size):
    """img resized to size x size (aspect kept, padded with black), uint8 RGB."""
    img = to_uint8_image(img)
    h, w = img.shape[:2]
    k = size / max(h, w)
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_NEAREST if k >= 2 else cv2.INTER_LINEAR
    small = cv2.resize(img, (nw, nh), interpolation=interp)
    out = np.zeros((size, size, 3), np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    out[y:y + nh, x:x + nw] = small
    return out


def _text_strip(width, height, text, scale=0.45, bg=255, fg=(0, 0, 0)):
    strip = np.full((height, width, 3), bg, np.uint8)
    lines = str(text).split('\n')
    for i, line in enumerate(lines):
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y = int((i + 1) * height / (len(lines) + 1) + th / 2)
        cv2.putText(strip, line, (max(2, (width - tw) // 2), y), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, 1, cv2.LINE_AA)
    return strip


def montage(rows, col_titles=None, row_titles=None, tile=128, pad=3, title=None):
    """A labelled table of images: rows[r][c] (any sizes, each fitted into a tile x tile square), column titles
    above, row titles at the left, an optional title on top. Returns HxWx3 uint8."""
    n_cols = max(len(r) for r in rows)
    head = 30 if col_titles else 0
    left = 90 if row_titles else 0
    top = 28 if title else 0
    H = top + head + len(rows) * (tile + pad) + pad
    W = left + n_cols * (tile + pad) + pad
    out = np.full((H, W, 3), 255, np.uint8)
    if title:
        out[:top] = _text_strip(W, top, title, 0.55)
    for c, t in enumerate(col_titles or []):
        x = left + pad + c * (tile + pad)
        out[top:top + head, x:x + tile] = _text_strip(tile, head, t, 0.4)
    for r, row in enumerate(rows):
        y = top + head + pad + r * (tile + pad)
        if row_titles:
            out[y:y + tile, :left] = _text_strip(left, tile, row_titles[r], 0.38)
        for c, img in enumerate(row):
            if img is None:
                continue
            x = left + pad + c * (tile + pad)
            out[y:y + tile, x:x + tile] = fit_tile(img, tile)
    return out


def crop_map_to_image(crop_map, bb2img, width, height):
    """A map of a crop ([S,S], any float) warped back into the image (HxW float32) with the crop's inverse affine
    (preprocessing.generate_patch_image's bb2img): zero outside the crop."""
    m = crop_map.detach().float().cpu().numpy() if hasattr(crop_map, 'detach') else np.asarray(crop_map, np.float32)
    m = m.reshape(m.shape[-2:]).astype(np.float32)
    return cv2.warpAffine(m, np.asarray(bb2img, np.float64)[:2], (int(width), int(height)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def draw_box(img, box, color=(255, 60, 60), thickness=1, text=None):
    """A box (x, y, w, h) (+ a label) on a copy of img."""
    out = to_uint8_image(img).copy()
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(out, (x, y), (x + w, y + h), color, thickness, cv2.LINE_AA)
    if text:
        cv2.putText(out, str(text), (x + 2, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return out


def save_image(path, img, quality=92):
    """An RGB image to .png or .jpg, written atomically (folders made)."""
    from pathlib import Path

    from common.io import atomic_write_bytes
    path = Path(path)
    ext = path.suffix.lower() if path.suffix else '.png'
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in ('.jpg', '.jpeg') else []
    ok, buf = cv2.imencode(ext, to_uint8_image(img)[:, :, ::-1], params)
    if not ok:
        raise ValueError(f'cannot encode an image as {ext} ({path})')
    return atomic_write_bytes(path, buf.tobytes())
