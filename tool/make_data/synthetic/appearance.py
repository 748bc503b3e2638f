"""How the synthetic scenes look: clothing per body part, backgrounds, occluders, lighting.

The renderer colours faces from a palette indexed by a per-vertex id (`part_colors`), so clothing is a
per-vertex *material* id: skin, hair, two colours of the top, two of the bottoms, shoes. Patterns
(stripes, checks) alternate the two colours of a garment by the vertex's rest-pose (template)
position, so they follow the body when it moves. Person k uses palette entries k*MATERIALS_PER_PERSON
and up. Lighting is the renderer's fixed three-light rig, varied after rendering by a per-image gain
and colour temperature, a per-person gain, fabric noise, camera blur and sensor noise.

Backgrounds are real photographs (scikit-image's bundled sample images, never downloaded) or made
here: a perspective-correct floor and back wall seen from the scene's camera, an outdoor floor under
a sky, or an abstract gradient with noise.
"""
import functools

import cv2
import numpy as np

SKIN, HAIR, TOP_A, TOP_B, BOTTOM_A, BOTTOM_B, SHOES = range(7)
MATERIALS_PER_PERSON = 8

# SMPL joint index of the vertices' part (BodyModel.part_ids) -> body region
_HEAD, _NECK = (15,), (12,)
_TORSO = (3, 6, 9, 13, 14)
_UPPER_ARM, _FOREARM, _HAND = (16, 17), (18, 19), (20, 21, 22, 23)
_PELVIS, _THIGH, _SHIN, _FOOT = (0,), (1, 2), (4, 5), (7, 8, 10, 11)

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 128], [198, 134, 96], [160, 102, 66],
                       [120, 74, 48], [90, 56, 38]], np.float64)
HAIR_COLOURS = np.array([[20, 16, 14], [50, 34, 24], [92, 60, 36], [150, 110, 60], [210, 180, 120],
                         [160, 160, 160], [130, 50, 30]], np.float64)

# scikit-image sample images that ship inside its wheel (no download) and show no person
# (not astronaut/camera: they show people, who would be unannotated; not the microscopy/space images)
PHOTO_NAMES = ('coffee', 'chelsea', 'rocket', 'brick', 'grass', 'gravel', 'stereo_motorcycle', 'clock', 'coins',
               'page', 'text')


def _hsv_to_rgb(h, s, v):
    """h in [0, 1), s, v in [0, 1] -> RGB 0..255."""
    hsv = np.array([[[h * 180.0, s * 255.0, v * 255.0]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def random_cloth_colour(rng):
    if rng.random() < 0.3:  # greys, black, white
        return np.full(3, rng.uniform(25, 235)) + rng.normal(0, 6, 3)
    return _hsv_to_rgb(rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.25, 0.95))


def _second_colour(rng, c):
    """The other colour of a patterned garment: a strong contrast, or a lighter/darker shade."""
    if rng.random() < 0.5:
        return random_cloth_colour(rng)
    k = rng.choice([0.45, 0.6, 1.5, 1.8])
    return np.clip(c * k + (25 if k > 1 else 0), 0, 255)


def _pattern(rng, tv, kind):
    """0/1 per vertex from template positions tv [V, 3] (metres, y up)."""
    w = rng.uniform(0.04, 0.09)
    ph = rng.uniform(0, 2 * w, 3)
    x, y, z = (tv + ph).T
    if kind == 'hstripes':
        return (np.floor(y / w) % 2).astype(bool)
    if kind == 'vstripes':
        return (np.floor(x / w) % 2).astype(bool)
    if kind == 'checks':
        return ((np.floor(x / w) + np.floor(y / w) + np.floor(z / w)) % 2).astype(bool)
    return np.zeros(len(tv), bool)


def person_materials(rng, part_ids, template_vertices):
    """(material id per vertex [V] in [0, MATERIALS_PER_PERSON), colours [MATERIALS_PER_PERSON, 3])."""
    p = np.asarray(part_ids)
    tv = np.asarray(template_vertices, np.float64)
    isin = lambda parts: np.isin(p, parts)  # noqa: E731
    mat = np.full(len(p), SKIN, np.int64)
    long_sleeves = rng.random() < 0.5
    long_pants = rng.random() < 0.75
    top = isin(_TORSO + _UPPER_ARM + (_FOREARM if long_sleeves else ()))
    bottom = isin(_PELVIS + _THIGH + (_SHIN if long_pants else ()))
    top_kind = rng.choice(['plain', 'plain', 'hstripes', 'vstripes', 'checks'])
    bottom_kind = rng.choice(['plain', 'plain', 'plain', 'hstripes', 'checks'])
    mat[top] = np.where(_pattern(rng, tv, top_kind)[top], TOP_B, TOP_A)
    mat[bottom] = np.where(_pattern(rng, tv, bottom_kind)[bottom], BOTTOM_B, BOTTOM_A)
    mat[isin(_FOOT)] = SHOES
    # hair: the top and back of the head, never the face
    head = isin(_HEAD + _NECK)
    if rng.random() > 0.08:
        y, z = tv[:, 1], tv[:, 2]
        top_y = tv[head, 1].max()
        cut = top_y - rng.uniform(0.06, 0.12)         # hairline on the forehead
        back = top_y - rng.uniform(0.11, 0.2)          # how far it falls at the back
        face = z > 0.03
        mat[head & (((y > cut) & ~(face & (y < cut + 0.03))) | ((z < 0.0) & (y > back)))] = HAIR

    colours = np.zeros((MATERIALS_PER_PERSON, 3))
    colours[SKIN] = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.05)
    colours[HAIR] = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15)
    colours[TOP_A] = random_cloth_colour(rng)
    colours[TOP_B] = _second_colour(rng, colours[TOP_A])
    if rng.random() < 0.35:  # denim
        colours[BOTTOM_A] = _hsv_to_rgb(0.6 + rng.normal(0, 0.01), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.6))
    else:
        colours[BOTTOM_A] = random_cloth_colour(rng) * rng.uniform(0.5, 1.0)
    colours[BOTTOM_B] = _second_colour(rng, colours[BOTTOM_A])
    colours[SHOES] = random_cloth_colour(rng) * rng.uniform(0.2, 0.9)
    colours[7] = colours[TOP_A]
    return mat, np.clip(colours, 0, 255)


def scene_palette(person_colours):
    """[256, 3] palette: person k's materials at k*MATERIALS_PER_PERSON.."""
    pal = np.zeros((256, 3))
    for k, c in enumerate(person_colours):
        pal[k * MATERIALS_PER_PERSON:(k + 1) * MATERIALS_PER_PERSON] = c
    return pal


# --------------------------------------------------------------------------------------------------
# Backgrounds

def smooth_noise(rng, h, w, scale, channels=1):
    """Value noise in [0, 1]: random values on a grid `scale` pixels apart, cubic-upsampled."""
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    g = rng.random((gh, gw, channels)).astype(np.float32)
    up = cv2.resize(g, (int(gw * scale), int(gh * scale)), interpolation=cv2.INTER_CUBIC)
    up = up.reshape(up.shape[0], up.shape[1], channels)[:h, :w]
    return np.clip(up, 0, 1)


def fractal_noise(rng, h, w, base=64.0, octaves=4, channels=1):
    out = np.zeros((h, w, channels), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * smooth_noise(rng, h, w, max(base / 2 ** o, 1.5), channels)
        total += amp
        amp *= 0.5
    return out / total


@functools.lru_cache(maxsize=None)
def _photo(name):
    try:
        import skimage.data as skd
    except ImportError:  # scikit-image missing: the other backgrounds
        return None
    load = getattr(skd, name, None)
    if load is None:     # an image this version lacks
        return None
    try:
        img = load()
    except (ImportError, KeyError, OSError):  # not in this installation's registry, or needs pooch / a download
        return None
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return np.ascontiguousarray(img[..., :3])


def available_photos():
    return tuple(n for n in PHOTO_NAMES if _photo(n) is not None)


def photo_background(rng, w, h, name):
    img = _photo(name).astype(np.float32)
    ih, iw = img.shape[:2]
    # a random crop with the output's aspect ratio, 45-100% of the largest that fits
    s = rng.uniform(0.45, 1.0) * min(iw / w, ih / h)
    cw, ch = max(8, int(w * s)), max(8, int(h * s))
    x0, y0 = rng.integers(0, iw - cw + 1), rng.integers(0, ih - ch + 1)
    crop = img[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_LINEAR)
    if np.ptp(img[..., 0] - img[..., 1]) < 1:  # greyscale photo: tint it
        out = out * (np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.08, 3))
    out = out * rng.uniform(0.75, 1.15) + rng.normal(0, 8, 3)
    return np.clip(out, 0, 255).astype(np.float32)


def _floor_texture(rng, X, Z, kind, base, other):
    if kind == 'tiles':
        s = rng.uniform(0.4, 1.0)
        cell = (np.floor(X / s) + np.floor(Z / s)) % 2
        gx, gz = np.abs((X / s) % 1 - 0.5), np.abs((Z / s) % 1 - 0.5)
        grout = np.maximum(gx, gz) > 0.47
        tex = np.where(cell[..., None] > 0, base, other)
        return np.where(grout[..., None], base * 0.55, tex)
    if kind == 'planks':
        s = rng.uniform(0.12, 0.25)
        idx = np.floor(X / s)
        shade = 0.8 + 0.4 * ((np.sin(idx * 12.9898) * 43758.5453) % 1)[..., None]
        seam = (np.abs((X / s) % 1 - 0.5) > 0.47)[..., None]
        return np.where(seam, base * 0.5, base * shade)
    return np.broadcast_to(base, X.shape + (3,))


def floor_background(rng, w, h, cam, outdoor):
    """Floor (+ back wall, or sky) as seen by `cam` (a scene.SceneCamera): ray-cast per pixel."""
    # pixel centres at integers (OpenCV, as the renderer): the ray of pixel (u, v) goes through (u, v)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    d = np.stack([(u - cam.princpt[0]) / cam.focal[0], (v - cam.princpt[1]) / cam.focal[1], np.ones_like(u)], -1)
    dw = d @ cam.R  # world directions (rows): R is world->camera, so d_w = R^T d_c
    with np.errstate(divide='ignore', invalid='ignore'):
        t_floor = np.where(dw[..., 1] > 1e-6, cam.height_m / dw[..., 1], np.inf)
        wall_z = rng.uniform(9, 25)
        t_wall = np.where(dw[..., 2] > 1e-6, wall_z / dw[..., 2], np.inf) if not outdoor else np.full_like(u, np.inf)
    floor = t_floor < t_wall
    P = dw * np.where(floor, t_floor, np.where(np.isfinite(t_wall), t_wall, 0))[..., None]
    X, Y, Z = P[..., 0], P[..., 1], P[..., 2]
    noise = fractal_noise(rng, h, w, base=rng.uniform(20, 80))[..., 0]

    floor_base = random_cloth_colour(rng) * rng.uniform(0.5, 0.9)
    if outdoor:
        floor_base = np.array([[90, 120, 60], [110, 110, 105], [150, 130, 100]])[rng.integers(3)] * rng.uniform(0.7, 1.1)
    floor_kind = rng.choice(['plain', 'tiles', 'planks']) if not outdoor else 'plain'
    img = _floor_texture(rng, X, Z, floor_kind, floor_base, _second_colour(rng, floor_base) * 0.8 + floor_base * 0.2)
    img = img * (0.8 + 0.4 * noise[..., None])
    fog = np.clip(np.where(floor, t_floor, 30) / 40.0, 0, 0.6)[..., None]
    if outdoor:
        sky_t = np.clip((v / h)[..., None], 0, 1)
        top, bottom = np.array([70, 130, 210.0]) * rng.uniform(0.8, 1.1), np.array([200, 220, 240.0])
        sky = top * (1 - sky_t) + bottom * sky_t
        clouds = fractal_noise(rng, h, w, base=rng.uniform(60, 160))[..., 0:1]
        sky = sky + (255 - sky) * np.clip((clouds - 0.45) * 2.5, 0, 1)
        img = np.where(floor[..., None], img * (1 - fog) + bottom * fog, sky)
    else:
        wall_base = random_cloth_colour(rng) * 0.4 + 140
        wall = np.broadcast_to(wall_base, img.shape).copy()
        if rng.random() < 0.4:  # bricks
            bh = 0.09
            row = np.floor(Y / bh)
            bx = (X / 0.22 + 0.5 * (row % 2)) % 1
            mortar = (np.abs((Y / bh) % 1 - 0.5) > 0.44) | (np.abs(bx - 0.5) > 0.46)
            wall = np.where(mortar[..., None], wall * 1.15, wall * (0.8 + 0.3 * noise[..., None]))
        else:
            wall = wall * (0.9 + 0.2 * noise[..., None])
        img = np.where(floor[..., None], img * (1 - 0.5 * fog) + 0.5 * fog * wall_base, wall)
    return np.clip(img, 0, 255).astype(np.float32)


def abstract_background(rng, w, h):
    c0, c1 = random_cloth_colour(rng), random_cloth_colour(rng)
    ang = rng.uniform(0, np.pi)
    u, v = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
    t = np.clip((np.cos(ang) * u + np.sin(ang) * v + 1) / 2, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    blobs = fractal_noise(rng, h, w, base=rng.uniform(30, 120), channels=3)
    img = img * 0.7 + blobs * 255 * 0.3
    return np.clip(img, 0, 255).astype(np.float32)


def choose_background(rng, photos):
    """'photo:<name>' (when photos are available), 'room', 'outdoor' or 'abstract'."""
    r = rng.random()
    if photos and r < 0.45:
        return 'photo:' + photos[rng.integers(len(photos))]
    r = rng.random()
    return 'room' if r < 0.55 else 'outdoor' if r < 0.85 else 'abstract'


def render_background(rng, cam, kind):
    w, h = cam.width, cam.height
    if kind.startswith('photo:'):
        return photo_background(rng, w, h, kind[6:])
    if kind in ('room', 'outdoor'):
        return floor_background(rng, w, h, cam, outdoor=kind == 'outdoor')
    return abstract_background(rng, w, h)


def draw_contact_shadows(img, rng, cam, ground_points, radii):
    """Darken the floor under each person: a blurred disc on the ground plane, projected."""
    h, w = img.shape[:2]
    shadow = np.zeros((h, w), np.float32)
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for g, r in zip(ground_points, radii):
        circle = g[None] + np.stack([np.cos(ang) * r, np.zeros_like(ang), np.sin(ang) * r * 0.8], 1)
        pc = circle @ cam.R.T
        if (pc[:, 2] < 0.1).any():
            continue
        uv = np.stack([cam.focal[0] * pc[:, 0] / pc[:, 2] + cam.princpt[0],
                       cam.focal[1] * pc[:, 1] / pc[:, 2] + cam.princpt[1]], 1)
        cv2.fillPoly(shadow, [np.round(uv * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=2)
    k = max(3, int(0.01 * max(w, h)) | 1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), k)
    return img * (1 - rng.uniform(0.3, 0.5) * shadow[..., None])


# --------------------------------------------------------------------------------------------------
# Occluders (drawn in front of everything)

def draw_occluders(img, rng, specs):
    """Paint the occluders `specs` (scene.Occluder) onto img (float32 [H, W, 3], in place); returns
    the union mask [H, W] bool of what they cover."""
    h, w = img.shape[:2]
    total = np.zeros((h, w), bool)
    for occ in specs:
        m = np.zeros((h, w), np.uint8)
        pts = np.round(np.asarray(occ.polygon) * 4).astype(np.int32)
        cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=2)
        mask = m.astype(bool)
        if not mask.any():
            continue
        base = np.asarray(occ.colour, np.float32)
        if occ.kind == 'blob':  # foliage: mottled greens/browns
            tex = fractal_noise(rng, h, w, base=rng.uniform(3, 10), octaves=3)[..., 0]
            col = base[None, None] * (0.55 + 0.9 * tex[..., None])
        elif occ.kind == 'box':
            tex = fractal_noise(rng, h, w, base=rng.uniform(8, 30), octaves=2)[..., 0]
            col = base[None, None] * (0.85 + 0.3 * tex[..., None])
            if rng.random() < 0.5:  # panels/planks
                ys = np.arange(h)[:, None] % max(4, int(rng.uniform(8, 24))) == 0
                col = np.where(ys[..., None], col * 0.6, col)
        else:  # pole / rail: cylinder shading across its width
            x0, x1 = pts[:, 0].min() / 4, pts[:, 0].max() / 4
            y0, y1 = pts[:, 1].min() / 4, pts[:, 1].max() / 4
            if occ.kind == 'pole':
                t = (np.arange(w)[None, :] - x0) / max(x1 - x0, 1)
            else:
                t = (np.arange(h)[:, None] - y0) / max(y1 - y0, 1)
            shade = 0.55 + 0.6 * np.clip(np.sin(np.clip(t, 0, 1) * np.pi), 0, 1)
            col = base[None, None] * shade[..., None]
        col = np.broadcast_to(col, img.shape)
        img[mask] = col[mask]
        total |= mask
    return total


# --------------------------------------------------------------------------------------------------
# Compositing and the camera

def composite(rng, background, render_rgb, person_id, num_people):
    """People over the background, with a per-person gain, fabric noise and colour-tinted light."""
    img = background.copy()
    people = render_rgb.astype(np.float32)
    h, w = person_id.shape
    gain = np.ones((h, w), np.float32)
    for k in range(num_people):
        gain[person_id == k] = rng.uniform(0.85, 1.35)
    fabric = 1.0 + 0.08 * (fractal_noise(rng, h, w, base=6.0, octaves=2)[..., 0] - 0.5) \
        + rng.normal(0, 0.02, (h, w)).astype(np.float32)
    people = people * (gain * fabric)[..., None]
    fg = person_id >= 0
    img[fg] = people[fg]
    return img


def camera_effects(rng, img):
    """Global light (gain, colour temperature, a soft gradient), lens blur, sensor noise -> uint8."""
    h, w = img.shape[:2]
    temp = rng.normal(0, 0.06)
    tint = np.array([1 + temp, 1.0, 1 - temp], np.float32) * rng.uniform(0.8, 1.15)
    ang = rng.uniform(0, 2 * np.pi)
    u, v = np.meshgrid(np.linspace(-1, 1, w, dtype=np.float32), np.linspace(-1, 1, h, dtype=np.float32))
    grad = 1 + rng.uniform(0, 0.25) * (np.cos(ang) * u + np.sin(ang) * v)
    img = img * tint * grad[..., None]
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 0.9))
    img = img + rng.normal(0, rng.uniform(1, 4), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
