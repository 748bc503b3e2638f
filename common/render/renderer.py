"""The project's one renderer: depth, face id, person id, part id and a shaded RGB in one OpenGL pass.

OpenGL through `moderngl` on a headless EGL context: Mesa llvmpipe on a CPU machine, the NVIDIA
driver's EGL on a GPU machine. Ids are written to integer attachments with no multisampling, so they
are exact (never blended at silhouettes).

Conventions (pinned by tests/common/test_render.py)
- Vertices are in CAMERA coordinates, metres, OpenCV axes: x right, y down, z forward.
- Projection is the pinhole x_pix = fx*X/Z + cx, y_pix = fy*Y/Z + cy in the OpenCV pixel convention
  of every camera and cv2 warp in the data pipeline (common/pipeline/preprocessing.py): pixel CENTRES sit
  at INTEGER coordinates, pixel (u, v) (column u, row v, row 0 at the top of the image) covers
  [u-0.5, u+0.5) x [v-0.5, v+0.5), and it belongs to a triangle iff its centre (u, v) is inside the
  projected triangle. So a point projecting to x_pix = 10.0 lies at the centre of pixel column 10, and
  a mirror of a W-wide render maps column u to W-1-u. (GL puts pixel centres at +0.5: the shift is
  applied once, to the principal point, in `Renderer.render`.)
- depth is the camera z of the visible surface (not an NDC value), 0 on background. Geometry with
  z outside [znear, zfar] (default 0.05 .. 1000 m) is clipped.
- Back-face culling is off and lighting is two-sided: meshes may be open, faces may wind either way.
- Per-face part id: the majority of the face's three vertex part ids, the first vertex's when all
  three differ (see `face_part_ids`).

One GL context per process, created on first use and reused by every Renderer, from any thread (a
lock serialises renders). A process forked from one that has rendered cannot render (Mesa's threads
do not survive fork): DataLoader workers that render must be forked before the parent renders, or
be started with 'spawn'/'forkserver'; each then creates its own context. Framebuffers are cached
per image size (a few sizes, least recently used dropped first).
"""
import ctypes
import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from common.errors import UserError

# glcontext finds libEGL.so.1 and libGL.so.1 (glvnd), Mesa's EGL vendor, and llvmpipe in the DRI package
APT_PACKAGES = 'libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgbm1'
OUTPUTS = ('depth', 'face_id', 'person_id', 'part_id', 'rgb')
DEFAULT_COLOR = (180, 180, 180)  # the reference renders overlap edges from an opaque grey material
PALETTE_SIZE = 256

# Directions from the surface towards each light, in OpenCV camera axes: the reference's three
# pyrender lights (0,-1,1), (0,1,1), (1,1,2) given in GL axes (y up, z backwards), converted.
_LIGHTS = ((0.0, 1.0, -1.0), (0.0, -1.0, -1.0), (1.0, -1.0, -2.0))
_LIGHT_INTENSITY = (0.3, 0.3, 0.45)
_AMBIENT = 0.2

_GL_COLOR = 0x1800
_GL_DEPTH = 0x1801
_MAX_CACHED_SIZES = 4


@dataclass
class RenderOutput:
    """Arrays are [H, W] (rgb [H, W, 3]); an output that was not asked for is None."""
    depth: Optional[np.ndarray] = None      # float32 camera z in metres, 0 on background
    face_id: Optional[np.ndarray] = None    # int32 face index within its mesh, -1 on background
    person_id: Optional[np.ndarray] = None  # int32 index into `meshes`, -1 on background
    part_id: Optional[np.ndarray] = None    # int32 per-face part id, -1 on background
    rgb: Optional[np.ndarray] = None        # uint8 shaded colours, background colour elsewhere

    @property
    def mask(self):
        """[H, W] bool foreground, from whichever output was rendered."""
        if self.person_id is not None:
            return self.person_id >= 0
        if self.face_id is not None:
            return self.face_id >= 0
        if self.depth is not None:
            return self.depth > 0
        if self.part_id is not None:
            return self.part_id >= 0
        raise ValueError('no geometry output was rendered (only rgb)')


def face_part_ids(faces, part_ids):
    """Per-face part id from per-vertex ids: the majority of the three, the first vertex's if all differ."""
    p = np.asarray(part_ids)[np.asarray(faces)]
    return np.where((p[:, 1] == p[:, 2]) & (p[:, 0] != p[:, 1]), p[:, 1], p[:, 0])


# --------------------------------------------------------------------------------------------------
# Process-wide GL state

_LOCK = threading.RLock()
_STATE = None


class _EGL:
    """The few EGL/GL entry points moderngl does not expose, through ctypes."""

    def __init__(self):
        for name in ('libEGL.so.1', 'libEGL.so'):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise OSError('libEGL.so.1 not found')
        lib.eglGetProcAddress.restype = ctypes.c_void_p
        lib.eglGetProcAddress.argtypes = [ctypes.c_char_p]
        lib.eglGetCurrentDisplay.restype = ctypes.c_void_p
        lib.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
        self.lib = lib
        # moderngl clears integer attachments with float values (leaving the bit pattern of -1.0);
        # glClearBuffer{iv,fv} clear each attachment with a value of its own type
        self.clear_iv = self._gl('glClearBufferiv', ctypes.c_int)
        self.clear_fv = self._gl('glClearBufferfv', ctypes.c_float)

    def _gl(self, name, ctype):
        ptr = self.lib.eglGetProcAddress(name.encode())
        if not ptr:
            raise OSError(f'eglGetProcAddress({name}) failed')
        return ctypes.CFUNCTYPE(None, ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctype))(ptr)

    def release_current(self):
        # the creating thread keeps a new context current; EGL lets only one thread hold it, so hand it
        # back and make it current per render (`with ctx:`), from whichever thread renders
        dpy = self.lib.eglGetCurrentDisplay()
        if dpy:
            self.lib.eglMakeCurrent(dpy, None, None, None)


class _GLState:
    def __init__(self):
        try:
            import moderngl
        except ImportError as e:
            raise UserError(f'the renderer needs moderngl ({e}); install it with: pip install moderngl') from e
        try:
            self.ctx = moderngl.create_standalone_context(backend='egl')
            self.egl = _EGL()
        except Exception as e:  # glcontext raises bare Exceptions whose text names the missing piece
            msg = ' '.join(str(e).split()) or type(e).__name__
            raise UserError(f'no headless OpenGL (EGL) context could be created ({msg}); install the EGL '
                            f'and Mesa drivers: apt-get install -y {APT_PACKAGES} (on an NVIDIA machine '
                            f'the driver must expose EGL, e.g. NVIDIA_DRIVER_CAPABILITIES=all in Docker)') from e
        self.moderngl = moderngl
        self.pid = os.getpid()
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.disable(moderngl.CULL_FACE)
        self.ctx.provoking_vertex = moderngl.LAST_VERTEX_CONVENTION  # GL's default; the part ids rely on it
        self.egl.release_current()
        self.programs = {}
        self.vaos = {}
        self.fbos = OrderedDict()   # (w, h) -> {'depth_rb': rb, name: rb, 'fbos': {outputs: fbo}}
        self.buffers = {}
        self.layers = OrderedDict()  # (w, h) -> [R32F renderbuffers], and (w, h, n) -> fbo (render_depth_layers)
        self.max_layers = None        # attachments per layered pass (set on first use, context current)

    def layer_framebuffer(self, width, height, n):
        """A frame buffer of n single-float colour attachments (no depth buffer) of the given size."""
        size = (width, height)
        entry = self.layers.get(size)
        if entry is None:
            while len(self.layers) >= _MAX_CACHED_SIZES:
                _, old = self.layers.popitem(last=False)
                for fbo in old['fbos'].values():
                    fbo.release()
                for rb in old['rbs']:
                    rb.release()
            entry = self.layers[size] = {'rbs': [self.ctx.renderbuffer(size, components=1, dtype='f4')
                                                 for _ in range(self.max_layers)], 'fbos': {}}
        else:
            self.layers.move_to_end(size)
        fbo = entry['fbos'].get(n)
        if fbo is None:
            fbo = entry['fbos'][n] = self.ctx.framebuffer(entry['rbs'][:n])
        return fbo

    # buffers grow geometrically and keep their GL name (orphan), so cached VAOs stay valid
    def buffer(self, name, data=None):
        buf = self.buffers.get(name)
        if data is None:  # only make sure it exists (a VAO needs every buffer its program reads)
            if buf is None:
                buf = self.buffers[name] = self.ctx.buffer(reserve=1 << 16, dynamic=True)
            return buf
        data = np.ascontiguousarray(data)
        if buf is None:
            buf = self.buffers[name] = self.ctx.buffer(reserve=max(data.nbytes, 1 << 16), dynamic=True)
        elif buf.size < data.nbytes:
            buf.orphan(max(data.nbytes, 2 * buf.size))
        buf.write(data)
        return buf

    def program(self, variant):
        if variant not in self.programs:
            self.programs[variant] = self.ctx.program(vertex_shader=_vertex_shader(*variant),
                                                      fragment_shader=_fragment_shader(*variant))
        return self.programs[variant]

    def vao(self, variant):
        if variant not in self.vaos:
            prog = self.program(variant)
            # the compiler drops attributes a variant does not use
            content = [(self.buffer(b), fmt, name) for b, fmt, name in
                       (('pos', '3f', 'in_pos'), ('part', 'i', 'in_part'), ('nrm', '3f', 'in_nrm'))
                       if prog.get(name, None) is not None]
            self.vaos[variant] = self.ctx.vertex_array(prog, content, index_buffer=self.buffer('idx'),
                                                       index_element_size=4)
        return self.vaos[variant]

    def framebuffer(self, width, height, outputs):
        size = (width, height)
        entry = self.fbos.get(size)
        if entry is None:
            while len(self.fbos) >= _MAX_CACHED_SIZES:
                _, old = self.fbos.popitem(last=False)
                for fbo in old.pop('fbos').values():
                    fbo.release()
                for rb in old.values():
                    rb.release()
            entry = self.fbos[size] = {'depth_rb': self.ctx.depth_renderbuffer(size), 'fbos': {}}
        else:
            self.fbos.move_to_end(size)
        fbo = entry['fbos'].get(outputs)
        if fbo is None:
            for name in outputs:
                if name not in entry:
                    comps, dtype = _ATTACHMENT_FORMAT[name]
                    entry[name] = self.ctx.renderbuffer(size, components=comps, dtype=dtype)
            fbo = entry['fbos'][outputs] = self.ctx.framebuffer([entry[n] for n in outputs], entry['depth_rb'])
        return fbo


# name -> (components, moderngl dtype); rgb is RGBA8 because 3-component colour renderbuffers are
# not required to be renderable
_ATTACHMENT_FORMAT = {'depth': (1, 'f4'), 'face_id': (1, 'i4'), 'person_id': (1, 'i4'),
                      'part_id': (1, 'i4'), 'rgb': (4, 'f1')}


def _state():
    global _STATE
    with _LOCK:
        if _STATE is not None and _STATE.pid != os.getpid():
            # Mesa's rasteriser threads do not survive fork, and a new context in the child shares the
            # dead ones: rendering would hang, so say what to do instead
            raise UserError(f'the renderer was first used in process {_STATE.pid}, which then forked this '
                            f'process ({os.getpid()}); a forked child cannot render. Render only in the '
                            f'worker processes (not in the parent before they start), or start them with '
                            f"the 'spawn' or 'forkserver' method (e.g. DataLoader(multiprocessing_context="
                            f"'forkserver'))")
        if _STATE is None:
            _STATE = _GLState()
        return _STATE


def get_context():
    """This process's moderngl context (created on first call); not current: use it inside `with ctx:`."""
    return _state().ctx


# --------------------------------------------------------------------------------------------------
# Shaders, generated per variant (outputs, lit, per-part data) so a render writes only what is read.
# One draw call per mesh: gl_PrimitiveID restarts at 0 with each draw, so it is the face index within
# the mesh, and the person id is a uniform.

def _vertex_shader(outputs, lit, use_part):
    return f"""
#version 330
uniform vec4 proj;   // (2fx/W, 2fy/H, 2cx/W - 1, 2cy/H - 1)
uniform vec2 zmap;   // clip z = zmap.x * z + zmap.y maps [znear, zfar] to [-1, 1]
in vec3 in_pos;
out float v_z;
{'in int in_part; flat out int v_part;' if use_part else ''}
{'in vec3 in_nrm; out vec3 v_nrm;' if lit else ''}
void main() {{
    float z = in_pos.z;
    // y is NOT flipped: GL's bottom row (window y = 0) is read back first, so image row 0 is the top
    gl_Position = vec4(proj.x * in_pos.x + proj.z * z, proj.y * in_pos.y + proj.w * z, zmap.x * z + zmap.y, z);
    v_z = z;  // perspective-correct interpolation of camera z is exact on a planar triangle
    {'v_part = in_part;' if use_part else ''}
    {'v_nrm = in_nrm;' if lit else ''}
}}
"""


def _fragment_shader(outputs, lit, use_part):
    decl = {'depth': 'float', 'face_id': 'int', 'person_id': 'int', 'part_id': 'int', 'rgb': 'vec4'}
    outs = '\n'.join(f'layout(location = {i}) out {decl[n]} o_{n};' for i, n in enumerate(outputs))
    body = {
        'depth': 'o_depth = v_z;',
        'face_id': 'o_face_id = gl_PrimitiveID;',
        'person_id': 'o_person_id = person;',
        'part_id': 'o_part_id = v_part;',
        'rgb': 'o_rgb = vec4(color(), 1.0);',
    }
    lights = ''.join(f'    light += {k:.6f} * max(dot(n, normalize(vec3({x}, {y}, {z}))), 0.0);\n'
                     for k, (x, y, z) in zip(_LIGHT_INTENSITY, _LIGHTS))
    if lit:
        # the viewing ray through this pixel comes from gl_FragCoord (window y is image y here), which
        # spares interpolating the 3D position
        shading = f"""
    vec3 ray = vec3((gl_FragCoord.xy - princpt) / focal, 1.0);
    float len = length(v_nrm);
    vec3 n = len > 0.0 ? v_nrm / len : vec3(0.0, 0.0, -1.0);
    if (dot(n, ray) > 0.0) n = -n;  // two-sided: light the side that faces the camera
    float light = {_AMBIENT:.6f};
{lights}    return albedo * light;"""
    else:
        shading = '\n    return albedo;'
    key = 'color_by_part ? v_part : person' if use_part else 'person'
    return f"""
#version 330
uniform int person;
uniform vec2 focal;
uniform vec2 princpt;
uniform vec3 palette[{PALETTE_SIZE}];
uniform bool color_by_part;
in float v_z;
{'flat in int v_part;' if use_part else ''}
{'in vec3 v_nrm;' if lit else ''}
{outs}
vec3 color() {{
    int k = {key};
    vec3 albedo = palette[((k % {PALETTE_SIZE}) + {PALETTE_SIZE}) % {PALETTE_SIZE}];{shading}
}}
void main() {{
    {' '.join(body[n] for n in outputs)}
}}
"""


# --------------------------------------------------------------------------------------------------
# Input handling

def _np(x, dtype=None):
    if hasattr(x, 'detach'):  # torch tensor, possibly on a GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _per_mesh(x, n, what, ndim):
    """A shared array, or a list of n arrays (one per mesh, each `ndim`-dimensional), -> list of n."""
    if isinstance(x, (list, tuple)) and len(x) and np.ndim(x[0]) == ndim:
        if len(x) != n:
            raise ValueError(f'{what}: got {len(x)} entries for {n} meshes')
        return list(x)
    return [x] * n


def _rgb_table(colors, what):
    c = _np(colors, np.float32)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[1] != 3 or len(c) == 0:
        raise ValueError(f'{what} must be one RGB triple or a [K, 3] table (0..255), got shape {c.shape}')
    return c


def _palette(colors, part_colors, by_part):
    pal = np.empty((PALETTE_SIZE, 3), np.float32)
    if by_part:
        table = _rgb_table(part_colors, 'part_colors')
    elif colors is not None:
        table = _rgb_table(colors, 'colors')
    else:
        table = np.asarray([DEFAULT_COLOR], np.float32)
    pal[:] = table[np.arange(PALETTE_SIZE) % len(table)]
    return pal / 255.0


def _vertex_normals(pos, faces):
    """Area-weighted smooth vertex normals (unnormalised; the shader normalises)."""
    # coordinate-major gathers and bincount: ~5x faster than np.cross + np.add.at on [F, 3] rows
    x, y, z = pos.T
    f = np.ascontiguousarray(faces.T).astype(np.intp)
    px, py, pz = x[f], y[f], z[f]
    ax, ay, az = px[1] - px[0], py[1] - py[0], pz[1] - pz[0]
    bx, by, bz = px[2] - px[0], py[2] - py[0], pz[2] - pz[0]
    flat = f.ravel()
    out = np.empty((len(pos), 3), np.float32)
    for c, fc in enumerate((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)):
        out[:, c] = np.bincount(flat, weights=np.tile(fc, 3), minlength=len(pos))
    return out


class Renderer:
    """Renders meshes given in OpenCV camera coordinates with a pinhole camera (see module docstring).

    Lightweight: every Renderer in a process shares the process's one GL context and caches.
    """

    def __init__(self, znear=0.05, zfar=1000.0, bg_color=(255, 255, 255)):
        if not 0 < znear < zfar:
            raise ValueError(f'need 0 < znear < zfar, got {znear}, {zfar}')
        self.znear, self.zfar = float(znear), float(zfar)
        self.bg_color = tuple(bg_color)

    @property
    def ctx(self):
        return get_context()

    def render(self, meshes, faces, camera, *, part_ids=None, colors=None, shade=True, part_colors=None,
               bg_color=None, outputs=None):
        """Render all meshes together (nearest surface wins) in one pass.

        meshes: list of [V_i, 3] vertex arrays (numpy or torch), or an [N, V, 3] array.
        faces: [F, 3] int shared by all meshes, or a list with one [F_i, 3] per mesh.
        camera: the image's common.camera.Camera (module docstring convention).
        part_ids: optional per-vertex part ids [V] (shared) or a list per mesh; gives `part_id`.
        colors: RGB 0..255 per mesh [N, 3] or one triple for all (default grey).
        part_colors: RGB 0..255 palette [P, 3] indexed by part id; with part_ids it overrides `colors`.
        shade: lit (ambient + three directional lights, smooth normals) or flat colours in `rgb`.
        bg_color: RGB 0..255 of the rgb background (default: the Renderer's, white).
        outputs: names among OUTPUTS to render and read back; default all (part_id only with part_ids).
        """
        if isinstance(meshes, np.ndarray) or hasattr(meshes, 'detach'):
            arr = _np(meshes)
            meshes = [arr] if arr.ndim == 2 else list(arr)
        meshes = [_np(m, np.float32).reshape(-1, 3) for m in meshes]
        n = len(meshes)
        (fx, fy), (cx, cy), width, height = camera.focal, camera.princpt, camera.width, camera.height
        # the one place of the pixel convention: OpenCV's pixel centres are at integers, GL's at +0.5;
        # from here on (footprint, projection, shading rays) coordinates are GL window coordinates
        cx, cy = cx + 0.5, cy + 0.5

        if outputs is None:
            outputs = tuple(o for o in OUTPUTS if o != 'part_id' or part_ids is not None)
        else:
            outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
            bad = [o for o in outputs if o not in OUTPUTS]
            if bad:
                raise ValueError(f'unknown outputs {bad}; choose among {OUTPUTS}')
            if 'part_id' in outputs and part_ids is None:
                raise ValueError("output 'part_id' needs part_ids")
            outputs = tuple(o for o in OUTPUTS if o in outputs)  # canonical order: fewer cached programs
        if not outputs:
            raise ValueError('outputs is empty')
        by_part = part_ids is not None and part_colors is not None
        lit = 'rgb' in outputs and shade

        use_part = part_ids is not None and ('part_id' in outputs or (by_part and 'rgb' in outputs))
        variant = (outputs, lit, use_part)

        faces_l = [_np(f).reshape(-1, 3) for f in _per_mesh(faces, n, 'faces', 2)]
        parts_l = _per_mesh(part_ids, n, 'part_ids', 1) if use_part else [None] * n

        # all meshes in one vertex/index buffer (indices offset into it), drawn one range at a time
        idx_l, part_l, ranges = [], [], []
        v_off = f_off = 0
        for i, (v, f, p) in enumerate(zip(meshes, faces_l, parts_l)):
            if len(f) and (f.min() < 0 or f.max() >= len(v)):
                raise ValueError(f'mesh {i}: face indices outside [0, {len(v)})')
            if p is not None:
                p = _np(p).astype(np.int32, copy=False).ravel()
                if len(p) != len(v):
                    raise ValueError(f'mesh {i}: {len(p)} part ids for {len(v)} vertices')
                part_l.append(p)
                if len(f):
                    # put the vertex carrying the face's part id last (the provoking vertex of the flat
                    # varying); a cyclic shift keeps the winding
                    pf = p[f]
                    chosen = np.where((pf[:, 1] == pf[:, 2]) & (pf[:, 0] != pf[:, 1]), pf[:, 1], pf[:, 0])
                    rot = pf[:, 2] != chosen
                    if rot.any():
                        f = f.copy()
                        f[rot] = f[rot][:, [1, 2, 0]]
            idx_l.append(f.astype(np.uint32) + np.uint32(v_off))
            if len(f):
                ranges.append((i, f_off, len(f)))
            v_off += len(v)
            f_off += len(f)

        bg = np.asarray(self.bg_color if bg_color is None else bg_color, np.float64).ravel()[:3]
        pos = (np.concatenate(meshes) if n > 1 else meshes[0]) if ranges else np.zeros((0, 3), np.float32)
        box = self._footprint(pos, fx, fy, cx, cy, width, height)
        if not ranges or box is None:  # nothing can reach a pixel: no GL work at all
            return self._background(outputs, width, height, bg)

        st = _state()
        with _LOCK, st.ctx:
            fbo = st.framebuffer(width, height, outputs)
            # clear, draw and read back only the meshes' on-screen box: at 1080x1920 clearing and
            # reading the full attachments costs more than drawing a few people
            fbo.scissor = box
            fbo.use()
            self._clear(st.egl, outputs, bg)
            idx = np.concatenate(idx_l) if n > 1 else idx_l[0]
            st.buffer('pos', pos)
            st.buffer('idx', idx)
            if use_part:
                st.buffer('part', np.concatenate(part_l) if n > 1 else part_l[0])
            if lit:
                st.buffer('nrm', _vertex_normals(pos, idx.reshape(-1, 3)))
            prog = st.program(variant)
            prog['proj'].value = (2 * fx / width, 2 * fy / height, 2 * cx / width - 1, 2 * cy / height - 1)
            zn, zf = self.znear, self.zfar
            prog['zmap'].value = ((zf + zn) / (zf - zn), -2 * zf * zn / (zf - zn))
            if lit:
                prog['focal'].value = (fx, fy)
                prog['princpt'].value = (cx, cy)
            if 'rgb' in outputs:
                prog['palette'].write(_palette(colors, part_colors, by_part).tobytes())
                if use_part:
                    prog['color_by_part'].value = by_part
            vao = st.vao(variant)
            has_person = prog.get('person', None) is not None
            for i, first_face, n_faces in ranges:
                if has_person:
                    prog['person'].value = i
                vao.render(st.moderngl.TRIANGLES, vertices=3 * n_faces, first=3 * first_face)
            return self._read(fbo, outputs, width, height, box, bg)

    def render_depth_layers(self, meshes, faces, camera, windows):
        """Depth (camera z, 0 = background) of each mesh rendered ALONE, over its own window.

        windows: one box (x0, y0, x1, y1) per mesh, pixel indices, end exclusive, inside the frame.
        Returns a list of [y1 - y0, x1 - x0] float32 arrays. Equal to rendering each mesh alone with
        render(outputs=('depth',)) and cropping: instead of a depth test, each mesh goes to its own
        float attachment (up to 8 per pass, multiple render targets) with MIN blending, so the nearest
        surface's interpolated z is kept; no depth buffer to clear, and only the windows are cleared,
        drawn (scissor) and read back.
        """
        n = len(meshes)
        meshes = [_np(m, np.float32).reshape(-1, 3) for m in meshes]
        faces = [_np(f).reshape(-1, 3) for f in faces]
        if len(faces) != n or len(windows) != n:
            raise ValueError(f'got {n} meshes, {len(faces)} face arrays and {len(windows)} windows')
        (fx, fy), (cx, cy), width, height = camera.focal, camera.princpt, camera.width, camera.height
        cx, cy = cx + 0.5, cy + 0.5   # GL window coordinates (render's convention)
        wins = [tuple(int(c) for c in w) for w in windows]
        for w in wins:
            if not (0 <= w[0] < w[2] <= width and 0 <= w[1] < w[3] <= height):
                raise ValueError(f'window {w} is empty or outside the {width}x{height} frame')
        out = [np.zeros((w[3] - w[1], w[2] - w[0]), np.float32) for w in wins]
        todo = [i for i in range(n) if len(faces[i]) and len(meshes[i])]
        for i in todo:
            if len(faces[i]) and (faces[i].min() < 0 or faces[i].max() >= len(meshes[i])):
                raise ValueError(f'mesh {i}: face indices outside [0, {len(meshes[i])})')
        if not todo:
            return out
        st = _state()
        big = np.float32(3e38)   # cleared value: farther than anything (zfar), 0 after read-back
        mgl = st.moderngl
        with _LOCK, st.ctx:
            ctx = st.ctx
            if st.max_layers is None:
                st.max_layers = max(1, min(8, int(ctx.info.get('GL_MAX_DRAW_BUFFERS', 8)),
                                           int(ctx.info.get('GL_MAX_COLOR_ATTACHMENTS', 8))))
            for start in range(0, len(todo), st.max_layers):
                group = todo[start:start + st.max_layers]
                k = len(group)
                fbo = st.layer_framebuffer(width, height, k)
                variant = ('layers', k)
                if variant not in st.programs:
                    outs = '\n'.join(f'layout(location = {a}) out float o{a};' for a in range(k))
                    body = ' '.join(f'o{a} = v_z;' for a in range(k))
                    st.programs[variant] = ctx.program(
                        vertex_shader=_vertex_shader(('depth',), False, False),
                        fragment_shader=f'#version 330\nin float v_z;\n{outs}\nvoid main() {{ {body} }}\n')
                prog = st.programs[variant]
                if variant not in st.vaos:
                    st.vaos[variant] = ctx.vertex_array(prog, [(st.buffer('pos'), '3f', 'in_pos')],
                                                        index_buffer=st.buffer('idx'), index_element_size=4)
                vao = st.vaos[variant]
                idx, first, v_off, f_off = [], [], 0, 0
                for i in group:
                    idx.append(faces[i].astype(np.uint32) + np.uint32(v_off))
                    first.append(f_off)
                    v_off += len(meshes[i])
                    f_off += len(faces[i])
                st.buffer('pos', np.concatenate([meshes[i] for i in group]))
                st.buffer('idx', np.concatenate(idx))
                prog['proj'].value = (2 * fx / width, 2 * fy / height, 2 * cx / width - 1, 2 * cy / height - 1)
                zn, zf = self.znear, self.zfar
                prog['zmap'].value = ((zf + zn) / (zf - zn), -2 * zf * zn / (zf - zn))
                fbo.use()
                ctx.disable(mgl.DEPTH_TEST)
                ctx.enable(mgl.BLEND)
                ctx.blend_equation = mgl.MIN
                try:
                    for a, i in enumerate(group):
                        w = wins[i]
                        fbo.scissor = (w[0], w[1], w[2] - w[0], w[3] - w[1])
                        st.egl.clear_fv(_GL_COLOR, a, (ctypes.c_float * 4)(big, 0, 0, 0))
                    for a, i in enumerate(group):
                        w = wins[i]
                        fbo.scissor = (w[0], w[1], w[2] - w[0], w[3] - w[1])
                        if k > 1:   # moderngl takes one 4-tuple for a single attachment
                            fbo.color_mask = tuple((b == a,) * 4 for b in range(k))
                        vao.render(mgl.TRIANGLES, vertices=3 * len(faces[i]), first=3 * first[a])
                finally:
                    if k > 1:
                        fbo.color_mask = ((True,) * 4,) * k
                    fbo.scissor = None
                    ctx.blend_equation = mgl.FUNC_ADD
                    ctx.disable(mgl.BLEND)
                    ctx.enable(mgl.DEPTH_TEST)
                for a, i in enumerate(group):
                    w = wins[i]
                    arr = out[i]
                    fbo.read_into(arr, viewport=(w[0], w[1], w[2] - w[0], w[3] - w[1]), components=1,
                                  attachment=a, dtype='f4')
                    arr[arr == big] = 0
        return out

    def _footprint(self, pos, fx, fy, cx, cy, width, height):
        """Pixel box (x, y, w, h) that holds every pixel the meshes can cover, None if none."""
        if not len(pos):
            return None
        z = pos[:, 2]
        if z.max() < self.znear or z.min() > self.zfar:
            return None
        if z.min() < self.znear:  # near-plane clipping: projected vertices no longer bound the image
            return (0, 0, width, height)
        p = pos.astype(np.float64)   # float32 vertices, box bounds in float64
        u = fx * p[:, 0] / z + cx
        v = fy * p[:, 1] / z + cy
        # one pixel of margin against float error at the box edges
        x0, x1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 1, width)
        y0, y1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 1, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return (x0, y0, x1 - x0, y1 - y0)

    @staticmethod
    def _clear(egl, outputs, bg):
        egl.clear_fv(_GL_DEPTH, 0, (ctypes.c_float * 1)(1.0))
        for i, name in enumerate(outputs):
            if name == 'rgb':
                egl.clear_fv(_GL_COLOR, i, (ctypes.c_float * 4)(*(bg / 255.0), 1.0))
            elif name == 'depth':
                egl.clear_fv(_GL_COLOR, i, (ctypes.c_float * 4)(0, 0, 0, 0))
            else:
                egl.clear_iv(_GL_COLOR, i, (ctypes.c_int * 4)(-1, -1, -1, -1))

    @staticmethod
    def _background(outputs, width, height, bg):
        out = RenderOutput()
        for name in outputs:
            if name == 'rgb':
                arr = np.empty((height, width, 3), np.uint8)
                # whole-row copies: broadcasting a 3-vector over [H, W, 3] is ~100x slower
                arr.reshape(height, width * 3)[:] = np.tile(np.clip(np.rint(bg), 0, 255).astype(np.uint8), width)
            elif name == 'depth':
                arr = np.zeros((height, width), np.float32)
            else:
                arr = np.full((height, width), -1, np.int32)
            setattr(out, name, arr)
        return out

    @staticmethod
    def _read(fbo, outputs, width, height, box, bg):
        x, y, w, h = box
        full = (w, h) == (width, height)
        out = Renderer._background(outputs, width, height, bg) if not full else RenderOutput()
        for i, name in enumerate(outputs):
            if name == 'rgb':
                comps, dtype, npt = 3, 'f1', np.uint8
            else:
                comps, dtype, npt = 1, _ATTACHMENT_FORMAT[name][1], (np.float32 if name == 'depth' else np.int32)
            shape = (h, w, 3) if comps == 3 else (h, w)
            arr = np.empty(shape, npt)
            fbo.read_into(arr, viewport=box, components=comps, attachment=i, dtype=dtype)
            if full:
                setattr(out, name, arr)
            else:
                getattr(out, name)[y:y + h, x:x + w] = arr
        return out


@functools.lru_cache(maxsize=None)
def default_renderer():
    """The process's Renderer with the default settings (cheap: every Renderer shares the process's GL context)."""
    return Renderer()
