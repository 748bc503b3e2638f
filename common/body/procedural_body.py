"""A deterministic procedural body model in the official SMPL file format.

Used when no official SMPL file is installed, so that everything runs (and is tested) on a fresh
machine. It has SMPL's 24-joint tree, joint names, axes and rough proportions (metres; y up, x = the
body's left, z forward; T-pose), one closed genus-0 triangle mesh with a head, arms, hands, legs and
feet, linear-blend-skinning weights, 10 shape directions, a J_regressor, an H36M-17 regressor and
landmark vertices (nose, eyes, ears, head top). `generate()` returns the arrays under the official
keys plus extras; `common.body.smpl` writes them to an npz and loads them through `smplx`.

How the surface is made: a quad cage (a subdivided box for the torso, from which the legs, arms, the
neck/head and then the feet are extruded, so the mesh is a closed 2-manifold by construction) is
projected onto an implicit body (smooth union of ellipsoids and tapered capsules) and relaxed
tangentially. Nothing is random: the same vertex budget gives the same bytes.
"""
import numpy as np

from common.body.joint_sets import SMPL_24, SMPL_PARENTS, SMPL30, H36M17

GENERATOR_VERSION = 1
NUM_BETAS = 10
NUM_POSE_BASIS = 207
FACE_LANDMARKS = ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear', 'Head_top')
SHAPE_DIRECTIONS = ('height', 'weight', 'leg_length', 'arm_length', 'shoulder_width', 'hip_width',
                    'head_size', 'torso_length', 'torso_depth', 'limb_girth')
PART_NAMES = ('torso', 'head', 'left_arm', 'right_arm', 'left_leg', 'right_leg', 'left_foot', 'right_foot')
_TORSO, _HEAD, _LARM, _RARM, _LLEG, _RLEG, _LFOOT, _RFOOT = range(8)

_MIRROR = np.array([-1.0, 1.0, 1.0])

# ----------------------------------------------------------------------------------------------
# Skeleton: neutral T-pose joints, close to the official neutral template's.
_MID_JOINTS = {0: (0.0, -0.225, 0.020), 3: (0.0, -0.110, -0.005), 6: (0.0, 0.025, 0.000),
               9: (0.0, 0.085, 0.020), 12: (0.0, 0.290, -0.015), 15: (0.0, 0.365, 0.030)}
_LEFT_JOINTS = {1: (0.085, -0.310, 0.010), 4: (0.100, -0.690, 0.005), 7: (0.105, -1.080, -0.035),
                10: (0.110, -1.150, 0.095), 13: (0.075, 0.200, -0.005), 16: (0.175, 0.230, -0.015),
                18: (0.430, 0.215, -0.030), 20: (0.680, 0.215, -0.030), 22: (0.765, 0.212, -0.028)}
# Virtual bone ends for the leaf joints (left side; points 24.. of _points()): head top, L/R finger
# tip, L/R toe tip.
_HEAD_TOP, _L_FINGER_TIP, _L_TOE_TIP = (0.0, 0.530, 0.000), (0.855, 0.212, -0.026), (0.110, -1.155, 0.160)
_TIP_INDEX = {'Head_top': 24, 'L_Tip': 25, 'R_Tip': 26, 'L_ToeTip': 27, 'R_ToeTip': 28}


def _flip_index_24():
    perm = np.arange(24)
    for i, n in enumerate(SMPL_24):
        if n.startswith('L_'):
            j = SMPL_24.index('R_' + n[2:])
            perm[i], perm[j] = j, i
    return perm


FLIP_24 = _flip_index_24()
_FLIP_POINTS = np.concatenate([FLIP_24, [24, 26, 25, 28, 27]])


def _points():
    """[29,3]: the 24 joints, then the tips (head top, L/R finger tip, L/R toe tip)."""
    p = np.zeros((29, 3))
    for j, v in _MID_JOINTS.items():
        p[j] = v
    for j, v in _LEFT_JOINTS.items():
        p[j] = v
        p[FLIP_24[j]] = np.array(v) * _MIRROR
    p[24] = _HEAD_TOP
    p[25] = _L_FINGER_TIP
    p[26] = p[25] * _MIRROR
    p[27] = _L_TOE_TIP
    p[28] = p[27] * _MIRROR
    return p


def _bone_segments():
    """(joint, start point, end point) for every bone a vertex can be skinned to; a joint's bone runs
    to its child (or children), leaves to their tip."""
    children = {j: [c for c in range(24) if SMPL_PARENTS[c] == j] for j in range(24)}
    tips = {10: 27, 11: 28, 15: 24, 22: 25, 23: 26}
    segs = []
    for j in range(24):
        for c in children[j] or [tips[j]]:
            segs.append((j, j, c))
    return np.array(segs, dtype=np.int64)


# Bones each body part may be skinned to, so that e.g. the inner left thigh never follows the right leg.
def _allowed_joints():
    name = {n: i for i, n in enumerate(SMPL_24)}
    side = lambda s, names: [name[s + n] for n in names]  # noqa: E731
    allowed = {
        _TORSO: [name[n] for n in ('Pelvis', 'Torso', 'Spine', 'Chest', 'Neck', 'L_Thorax', 'R_Thorax',
                                   'L_Hip', 'R_Hip', 'L_Shoulder', 'R_Shoulder')],
        _HEAD: [name[n] for n in ('Chest', 'Neck', 'Head')],
    }
    for s, arm, leg, foot in (('L_', _LARM, _LLEG, _LFOOT), ('R_', _RARM, _RLEG, _RFOOT)):
        allowed[arm] = [name['Chest']] + side(s, ('Thorax', 'Shoulder', 'Elbow', 'Wrist', 'Hand'))
        allowed[leg] = [name['Pelvis']] + side(s, ('Hip', 'Knee', 'Ankle', 'Toe'))
        allowed[foot] = side(s, ('Knee', 'Ankle', 'Toe'))
    mask = np.zeros((len(PART_NAMES), 24), dtype=bool)
    for part, joints in allowed.items():
        mask[part, joints] = True
    return mask


# ----------------------------------------------------------------------------------------------
# Implicit body: signed distance (approximately), negative inside.

def _ellipsoid(c, r):
    return ('e', np.array(c, float), np.array(r, float))


def _cone(a, b, ra, rb):
    return ('c', np.array(a, float), np.array(b, float), float(ra), float(rb))


def _mirror_prim(p):
    if p[0] == 'e':
        return ('e', p[1] * _MIRROR, p[2])
    return ('c', p[1] * _MIRROR, p[2] * _MIRROR, p[3], p[4])


def _pair(p):
    return ('pair', p, _mirror_prim(p))


def _body_primitives():
    j = _points()
    # left/right pairs are blended with each other first: smooth-min is not associative, and a fixed
    # fold order would make the body slightly asymmetric
    torso = [_ellipsoid((0, 0.120, 0.010), (0.158, 0.160, 0.110)),      # chest
             _ellipsoid((0, -0.060, 0.012), (0.138, 0.170, 0.105)),     # abdomen
             _ellipsoid((0, -0.235, -0.005), (0.162, 0.125, 0.105)),    # pelvis
             _pair(_ellipsoid((0.065, -0.275, -0.050), (0.075, 0.085, 0.065))),        # buttocks
             _pair(_cone((0.04, 0.245, -0.015), (0.185, 0.232, -0.015), 0.050, 0.052)),  # shoulders
             _cone((0, 0.220, -0.015), (0, 0.380, 0.000), 0.058, 0.050)]  # neck
    head = [_ellipsoid((0, 0.420, 0.000), (0.078, 0.110, 0.095)),     # cranium
            _ellipsoid((0, 0.375, 0.030), (0.060, 0.060, 0.070)),     # jaw
            _ellipsoid((0, 0.405, 0.092), (0.012, 0.022, 0.018))]     # nose
    larm = [_cone(j[16], j[18], 0.050, 0.037), _cone(j[18], j[20], 0.037, 0.026),
            _ellipsoid((0.770, 0.212, -0.028), (0.085, 0.022, 0.045))]
    lleg = [_cone(j[1], j[4], 0.080, 0.053), _cone(j[4], j[7] + (0, 0.01, 0), 0.050, 0.033),
            _ellipsoid((0.102, -0.820, -0.025), (0.050, 0.110, 0.052)),  # calf muscle
            _ellipsoid((0.108, -1.128, 0.040), (0.046, 0.045, 0.125))]   # foot
    groups = [(torso, 0.06, None), (head, 0.03, 0.04), (larm, 0.02, 0.035),
              ([_mirror_prim(p) for p in larm], 0.02, 0.035), (lleg, 0.02, 0.04),
              ([_mirror_prim(p) for p in lleg], 0.02, 0.04)]
    return groups


def _smin(a, b, k):
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


class _Field:
    """Body = union over limbs of smooth-union(torso, limb): limbs blend into the torso, barely into each
    other (the thighs and the arms stay apart). All primitives are evaluated in one batch."""

    def __init__(self):
        ells, cones, self.groups = [], [], []

        def leaf(p):
            lst = ells if p[0] == 'e' else cones
            lst.append(p)
            return (p[0], len(lst) - 1)

        for prims, k_in, k_torso in _body_primitives():
            items = [('pair', leaf(p[1]), leaf(p[2])) if p[0] == 'pair' else leaf(p) for p in prims]
            self.groups.append((items, k_in, k_torso))
        self.ec = np.array([p[1] for p in ells])
        self.er = np.array([p[2] for p in ells])
        self.ca = np.array([p[1] for p in cones])
        ab = np.array([p[2] - p[1] for p in cones])
        self.cab = ab
        self.cab2 = (ab * ab).sum(1)
        self.cra = np.array([p[3] for p in cones])
        self.crd = np.array([p[4] - p[3] for p in cones])

    def _leaves(self, x):
        # per coordinate: reductions over a trailing axis of length 3 are slow in numpy
        xs = [x[:, k, None] for k in range(3)]
        q = [xs[k] - self.ec[:, k] for k in range(3)]
        k0 = np.sqrt(sum((q[k] / self.er[:, k]) ** 2 for k in range(3)))
        k1 = np.sqrt(sum((q[k] / self.er[:, k] ** 2) ** 2 for k in range(3)))
        de = k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)
        q = [xs[k] - self.ca[:, k] for k in range(3)]
        t = np.clip(sum(q[k] * self.cab[:, k] for k in range(3)) / self.cab2, 0.0, 1.0)
        dc = np.sqrt(sum((q[k] - t * self.cab[:, k]) ** 2 for k in range(3))) - (self.cra + t * self.crd)
        return {'e': de, 'c': dc}

    def __call__(self, x):
        leaves = self._leaves(x)

        def value(item, k):
            if item[0] == 'pair':
                return _smin(value(item[1], k), value(item[2], k), k)
            return leaves[item[0]][:, item[1]]

        vals = []
        for items, k_in, _ in self.groups:
            d = value(items[0], k_in)
            for it in items[1:]:
                d = _smin(d, value(it, k_in), k_in)
            vals.append(d)
        torso = vals[0]
        out = torso
        for d, (_, _, k_torso) in zip(vals[1:], self.groups[1:]):
            # a slight blend, not min(): a crease at the crotch would collapse the vertices there
            out = _smin(out, _smin(torso, d, k_torso), 0.015)
        return out

    def value_and_grad(self, x, eps=1e-6):
        n = len(x)
        offs = np.concatenate([np.zeros((1, 3)), np.eye(3) * eps])
        f = self((x[None] + offs[:, None]).reshape(-1, 3)).reshape(4, n)
        return f[0], (f[1:] - f[0]).T / eps

    def grad(self, x):
        return self.value_and_grad(x)[1]

    def project(self, x, iters=8, max_step=0.05):
        """Newton steps onto the zero level set along the gradient."""
        for _ in range(iters):
            f, g = self.value_and_grad(x)
            step = (f / np.maximum((g * g).sum(-1), 1e-12))[:, None] * g
            n = np.sqrt((step * step).sum(-1))[:, None]
            x = x - step * np.minimum(1.0, max_step / np.maximum(n, 1e-12))
        return x


# ----------------------------------------------------------------------------------------------
# Quad cage with extrusion (keeps the surface a closed, consistently oriented 2-manifold).

def _square_to_disk(u, v):
    return u * np.sqrt(1.0 - 0.5 * v * v), v * np.sqrt(1.0 - 0.5 * u * u)


class _Cage:
    def __init__(self):
        self.pos, self.part = [], []
        self.faces = {}
        self.edge_face = {}
        self._fid = 0

    def add_vertices(self, pts, part):
        start = len(self.pos)
        self.pos.extend(np.asarray(pts, float).reshape(-1, 3))
        self.part.extend([part] * (len(self.pos) - start))
        return np.arange(start, len(self.pos))

    def add_face(self, q):
        q = tuple(int(v) for v in q)
        for k in range(4):
            e = (q[k], q[(k + 1) % 4])
            if e in self.edge_face:
                raise RuntimeError(f'procedural cage: directed edge {e} used twice')
            self.edge_face[e] = self._fid
        self.faces[self._fid] = q
        self._fid += 1

    def remove_face(self, fid):
        q = self.faces.pop(fid)
        for k in range(4):
            del self.edge_face[(q[k], q[(k + 1) % 4])]

    def oriented(self, g):
        """The grid (or its transpose) whose cells (g[i,j], g[i+1,j], g[i+1,j+1], g[i,j+1]) follow the
        orientation of the existing faces."""
        e = (int(g[0, 0]), int(g[1, 0]))
        if e in self.edge_face and set(self.faces[self.edge_face[e]]) == {int(g[0, 0]), int(g[1, 0]),
                                                                          int(g[1, 1]), int(g[0, 1])}:
            return g
        return g.T

    @staticmethod
    def perimeter(g):
        a, b = g.shape[0] - 1, g.shape[1] - 1
        loop = [(i, 0) for i in range(a)] + [(a, j) for j in range(b)]
        loop += [(i, b) for i in range(a, 0, -1)] + [(0, j) for j in range(b, 0, -1)]
        return loop

    def extrude(self, g, rings, cap_interior, part):
        """Replace the patch g (oriented) by a tube through `rings` (each [L,3] in perimeter order)
        closed by a copy of the patch (interior vertices at cap_interior)."""
        a, b = g.shape[0] - 1, g.shape[1] - 1
        loop = self.perimeter(g)
        for i in range(a):
            for j in range(b):
                self.remove_face(self.edge_face[(int(g[i, j]), int(g[i + 1, j]))])
        prev = np.array([g[ij] for ij in loop])
        ids = [prev]
        for ring in rings:
            new = self.add_vertices(ring, part)
            n = len(loop)
            for k in range(n):
                self.add_face((prev[k], prev[(k + 1) % n], new[(k + 1) % n], new[k]))
            prev = new
            ids.append(new)
        cap = np.zeros_like(g)
        for k, ij in enumerate(loop):
            cap[ij] = prev[k]
        if a > 1 and b > 1:  # the patch's inner vertices move out to become the cap's
            inner = g[1:a, 1:b].reshape(-1)
            for v, x in zip(inner, np.asarray(cap_interior).reshape(-1, 3)):
                self.pos[v] = x
                self.part[v] = part
            cap[1:a, 1:b] = g[1:a, 1:b]
        for i in range(a):
            for j in range(b):
                self.add_face((cap[i, j], cap[i + 1, j], cap[i + 1, j + 1], cap[i, j + 1]))
        return cap, ids, loop

    def quads(self):
        return np.array([self.faces[k] for k in sorted(self.faces)], dtype=np.int64)


def _grid_uv(g):
    a, b = g.shape[0] - 1, g.shape[1] - 1
    u = (2.0 * np.arange(a + 1) / a - 1.0)[:, None] * np.ones((1, b + 1))
    v = np.ones((a + 1, 1)) * (2.0 * np.arange(b + 1) / b - 1.0)[None, :]
    return u, v


def _grid_frame(cage, g):
    pos = np.asarray(cage.pos)
    e1 = pos[g[-1, :]].mean(0) - pos[g[0, :]].mean(0)
    e2 = pos[g[:, -1]].mean(0) - pos[g[:, 0]].mean(0)
    e1 = _axis(e1)
    e2 = _axis(e2)
    return e1, e2


def _axis(v):
    """The signed world axis closest to v (all tubes of the T-pose run along world axes)."""
    k = int(np.argmax(np.abs(v)))
    out = np.zeros(3)
    out[k] = np.sign(v[k])
    return out


def _tube(cage, g, stations, cap_center, part, shrink=0.75):
    """Extrude patch g through ellipses at stations [(center, radii xyz)], cap at cap_center."""
    g = cage.oriented(g)
    e1, e2 = _grid_frame(cage, g)
    u, v = _grid_uv(g)
    X, Y = _square_to_disk(u, v)
    loop = cage.perimeter(g)
    lu = np.array([X[ij] for ij in loop])
    lv = np.array([Y[ij] for ij in loop])
    rings = []
    for c, r in stations:
        r1, r2 = abs(np.dot(r, np.abs(e1))), abs(np.dot(r, np.abs(e2)))
        rings.append(c + shrink * (r1 * lu[:, None] * e1 + r2 * lv[:, None] * e2))
    c_last, r_last = stations[-1]
    r1, r2 = abs(np.dot(r_last, np.abs(e1))), abs(np.dot(r_last, np.abs(e2)))
    interior = (X[1:-1, 1:-1].reshape(-1, 1) * r1 * e1 + Y[1:-1, 1:-1].reshape(-1, 1) * r2 * e2)
    cap_pts = np.asarray(cap_center) + 0.5 * shrink * interior
    cap, ids, loop = cage.extrude(g, rings, cap_pts, part)
    return cap, ids, loop, (e1, e2)


def _stations(keys, n):
    """n stations evenly spaced in arc length along a polyline of (center, radii) keys."""
    c = np.array([k[0] for k in keys], float)
    r = np.array([k[1] for k in keys], float)
    seg = np.linalg.norm(np.diff(c, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)]) / seg.sum()
    t = np.linspace(0.0, 1.0, n)
    return [(np.array([np.interp(ti, s, c[:, k]) for k in range(3)]),
             np.array([np.interp(ti, s, r[:, k]) for k in range(3)])) for ti in t]


# ----------------------------------------------------------------------------------------------
# Resolution plan: one integer a (cells across a leg) and a ring-spacing stretch s.

_TORSO_X, _TORSO_Z, _TORSO_Y = 0.125, 0.070, (-0.350, 0.262)


def _plan(a, s):
    p = max(2, int(round(0.5 * a)))
    c, d = 2 * max(1, int(round(a / 2))), 2 * max(1, int(round(a / 3)))
    d = min(max(d, c), a)  # a square-ish neck patch: the head ring is long enough for a face
    nx, nz = 2 * a + 2, a
    h_torso = s * 0.80 / (2 * (nx + nz))
    ny = max(p + 3, int(round((_TORSO_Y[1] - _TORSO_Y[0]) / h_torso)))
    plan = dict(a=a, s=s, p=p, c=c, d=d, nx=nx, ny=ny, nz=nz,
                n_leg=max(3, int(round(0.66 / (s * 0.30 / (4 * a))))),
                n_arm=max(4, int(round(0.62 / (s * 0.24 / (2 * (p + nz)))))),
                n_head=max(3, int(round(0.22 / (s * 0.45 / (2 * (c + d)))))),
                n_foot=max(2, int(round(0.11 / (s * 0.22 / (2 * (a + 2)))))))
    box = 2 * (nx * ny + ny * nz + nz * nx) + 2
    legs = 2 * ((plan['n_leg'] + 2) * 4 * a + plan['n_foot'] * 2 * (a + 2))
    arms = 2 * plan['n_arm'] * 2 * (p + nz)
    head = plan['n_head'] * 2 * (c + d)
    plan['num_vertices'] = box + legs + arms + head
    return plan


def choose_plan(n_vertices):
    """The plan whose vertex count is closest to n_vertices (ties: square-ish quads)."""
    best = None
    for a in range(2, 64):
        for s in np.linspace(0.7, 1.4, 29):
            pl = _plan(a, float(s))
            key = (abs(pl['num_vertices'] - n_vertices), abs(np.log(s)))
            if best is None or key < best[0]:
                best = (key, pl)
        if _plan(a, 1.4)['num_vertices'] > 2 * n_vertices:
            break
    return best[1]


def _build_cage(plan):
    a, p, c, d = plan['a'], plan['p'], plan['c'], plan['d']
    nx, ny, nz = plan['nx'], plan['ny'], plan['nz']
    cage = _Cage()
    # torso: the surface of an (nx, ny, nz) lattice box, laid out on an elliptic cylinder
    ids = -np.ones((nx + 1, ny + 1, nz + 1), dtype=np.int64)
    pts = []
    for i in range(nx + 1):
        for j in range(ny + 1):
            for k in range(nz + 1):
                if i in (0, nx) or j in (0, ny) or k in (0, nz):
                    ids[i, j, k] = len(pts)
                    X, Z = _square_to_disk(2.0 * i / nx - 1.0, 2.0 * k / nz - 1.0)
                    y = _TORSO_Y[0] + (_TORSO_Y[1] - _TORSO_Y[0]) * j / ny
                    pts.append((_TORSO_X * X, y, _TORSO_Z * Z))
    cage.add_vertices(pts, _TORSO)
    centre = np.array([0.0, 0.5 * sum(_TORSO_Y), 0.0])
    pos = np.asarray(cage.pos)

    def quad(q):  # orient outward (away from the box centre)
        q = list(q)
        n = np.cross(pos[q[1]] - pos[q[0]], pos[q[3]] - pos[q[0]])
        if np.dot(n, pos[q].mean(0) - centre) < 0:
            q = q[::-1]
        cage.add_face(q)

    for i in range(nx):
        for j in range(ny):
            for k in (0, nz):
                quad((ids[i, j, k], ids[i + 1, j, k], ids[i + 1, j + 1, k], ids[i, j + 1, k]))
    for j in range(ny):
        for k in range(nz):
            for i in (0, nx):
                quad((ids[i, j, k], ids[i, j + 1, k], ids[i, j + 1, k + 1], ids[i, j, k + 1]))
    for i in range(nx):
        for k in range(nz):
            for j in (0, ny):
                quad((ids[i, j, k], ids[i + 1, j, k], ids[i + 1, j, k + 1], ids[i, j, k + 1]))

    J = _points()
    for side, (leg_part, foot_part, arm_part) in ((1, (_LLEG, _LFOOT, _LARM)), (-1, (_RLEG, _RFOOT, _RARM))):
        m = np.array([side, 1.0, 1.0])
        hip, knee, ankle = (J[1], J[4], J[7]) if side > 0 else (J[2], J[5], J[8])
        # leg from the bottom face, a gap of 2 columns between the legs
        cols = np.arange(a + 2, 2 * a + 3) if side > 0 else np.arange(0, a + 1)
        g = ids[cols][:, 0, :]
        top = hip + (0.003 * side, -0.110, 0.0)
        keys = [(top, (0.070, 0, 0.070)), (knee, (0.050, 0, 0.052)), (ankle + (0, 0.005, 0), (0.036, 0, 0.040))]
        st = _stations(keys, plan['n_leg'])
        st += [(np.array([ankle[0], -1.115, -0.030]), np.array([0.040, 0, 0.060])),
               (np.array([ankle[0], -1.148, -0.030]), np.array([0.040, 0, 0.055]))]
        cap, rings, loop, (e1, e2) = _tube(cage, g, st, (ankle[0], -1.172, -0.030), leg_part)
        # foot: extrude the front wall of the last two leg segments forward (+z)
        front_axis = 0 if abs(e1[2]) > 0.5 else 1
        sign = e1[2] if front_axis == 0 else e2[2]
        coord = np.array([ij[front_axis] for ij in loop])
        extreme = coord.max() if sign > 0 else coord.min()
        on_front = np.nonzero(coord == extreme)[0]
        n_loop = len(loop)
        # the front side is one run of the perimeter; find its start (it may wrap around 0)
        start = next(k for k in on_front if (k - 1) % n_loop not in set(on_front))
        run = [(start + t) % n_loop for t in range(len(on_front))]
        gf = np.stack([rings[-3][run], rings[-2][run], rings[-1][run]], axis=1)
        foot_keys = [((ankle[0] + 0.002 * side, -1.132, 0.030), (0.040, 0.030, 0)),
                     ((ankle[0] + 0.004 * side, -1.142, 0.130), (0.038, 0.022, 0))]
        _tube(cage, gf, _stations(foot_keys, plan['n_foot']), (ankle[0] + 0.004 * side, -1.148, 0.160),
              foot_part)
        # arm from the side face, a margin row kept above it for the shoulder top
        i_side = nx if side > 0 else 0
        j0 = ny - 1 - p
        g = ids[i_side, j0:j0 + p + 1, :]
        sh, el, wr = (J[16], J[18], J[20]) if side > 0 else (J[17], J[19], J[21])
        keys = [(m * (0.195, 0.220, -0.015), (0, 0.050, 0.052)), (sh + m * (0.05, 0, 0), (0, 0.046, 0.048)),
                (el, (0, 0.036, 0.038)), (wr, (0, 0.025, 0.030)),
                (m * (0.745, 0.212, -0.028), (0, 0.020, 0.042)), (m * (0.825, 0.212, -0.028), (0, 0.016, 0.036))]
        _tube(cage, g, _stations(keys, plan['n_arm']), m * (0.850, 0.212, -0.027), arm_part)
    # neck and head from the top face
    i0, k0 = (nx - c) // 2, (nz - d) // 2
    g = ids[i0:i0 + c + 1, ny, k0:k0 + d + 1]
    keys = [((0, 0.300, -0.012), (0.048, 0, 0.048)), ((0, 0.350, 0.000), (0.050, 0, 0.055)),
            ((0, 0.395, 0.010), (0.070, 0, 0.085)), ((0, 0.455, 0.000), (0.072, 0, 0.085)),
            ((0, 0.505, 0.000), (0.045, 0, 0.055))]
    _tube(cage, g, _stations(keys, plan['n_head']), (0, 0.520, 0.0), _HEAD)
    return cage


# ----------------------------------------------------------------------------------------------
# Surface fitting and triangulation.

def _neighbours(quads, n):
    edges = np.concatenate([quads[:, [0, 1]], quads[:, [1, 2]], quads[:, [2, 3]], quads[:, [3, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges = edges[order]
    deg = np.bincount(edges[:, 0], minlength=n)
    return edges, deg


def _fit(pos, quads, field, mirror, relax_iters=20):
    edges, deg = _neighbours(quads, len(pos))
    # symmetrised at every step: the crotch and the body midline sit on creases of the field where
    # round-off picks a side, and the relaxation would amplify that
    sym = lambda x: 0.5 * (x + x[mirror] * _MIRROR)  # noqa: E731
    pos = sym(field.project(pos, iters=12))
    for _ in range(relax_iters):
        mean = np.zeros_like(pos)
        np.add.at(mean, edges[:, 0], pos[edges[:, 1]])
        lap = mean / deg[:, None] - pos
        n = field.grad(pos)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        lap -= (lap * n).sum(1, keepdims=True) * n
        pos = sym(field.project(pos + 0.5 * lap, iters=2))
    return sym(field.project(pos, iters=6))


def _triangulate(quads, pos):
    d02 = np.linalg.norm(pos[quads[:, 0]] - pos[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(pos[quads[:, 1]] - pos[quads[:, 3]], axis=1)
    use02 = d02 <= d13
    t02 = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], axis=1).reshape(-1, 2, 3)
    t13 = np.concatenate([quads[:, [0, 1, 3]], quads[:, [1, 2, 3]]], axis=1).reshape(-1, 2, 3)
    return np.where(use02[:, None, None], t02, t13).reshape(-1, 3)


def _mirror_map(pos, tol=1e-9):
    """Index of each vertex's left/right mirror image (the cage is built symmetric up to round-off)."""
    keys = np.round(pos / tol).astype(np.int64)
    index = {tuple(k): i for i, k in enumerate(keys.tolist())}
    near = [(a, b, c) for a in (0, -1, 1) for b in (0, -1, 1) for c in (0, -1, 1)]
    idx = np.empty(len(pos), dtype=np.int64)
    for i, k in enumerate(np.round(pos * _MIRROR / tol).astype(np.int64).tolist()):
        for d in near:  # a coordinate may round to the neighbouring grid step
            j = index.get((k[0] + d[0], k[1] + d[1], k[2] + d[2]))
            if j is not None:
                idx[i] = j
                break
        else:
            raise RuntimeError('procedural body cage is not left/right symmetric')
    if not np.array_equal(idx[idx], np.arange(len(pos))):
        raise RuntimeError('procedural body cage: mirror map is not an involution')
    return idx


# ----------------------------------------------------------------------------------------------
# Skinning, regressors, shape space, landmarks.

def _segment_params(pos, pts, segs):
    a, b = pts[segs[:, 1]], pts[segs[:, 2]]
    ab = b - a
    t = np.clip(np.einsum('vsk,sk->vs', pos[:, None, :] - a[None], ab) / (ab * ab).sum(1), 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return t, closest, np.linalg.norm(pos[:, None, :] - closest, axis=-1)


def _skinning(pos, part, pts, tau=0.015, floor=0.01):
    """Per-vertex weights from the distance to each allowed bone (a soft-min: smooth near joints,
    one bone far from them); also each vertex's position along and closest point on each joint's bone."""
    segs = _bone_segments()
    t, closest, dist = _segment_params(pos, pts, segs)
    n = len(pos)
    d_joint = np.full((n, 24), np.inf)
    t_joint = np.zeros((n, 24))
    end_joint = np.zeros((n, 24), dtype=np.int64)
    close_joint = np.zeros((n, 24, 3))
    for s, (j, _, e) in enumerate(segs):
        better = dist[:, s] < d_joint[:, j]
        d_joint[better, j] = dist[better, s]
        t_joint[better, j] = t[better, s]
        end_joint[better, j] = e
        close_joint[better, j] = closest[better, s]
    d_joint[~_allowed_joints()[part]] = np.inf
    w = np.exp(-(d_joint - d_joint.min(1, keepdims=True)) / tau)
    w /= w.sum(1, keepdims=True)
    w[w < floor] = 0.0
    w /= w.sum(1, keepdims=True)
    return w, t_joint, end_joint, close_joint


def _regressor_row(pos, cand, target, k0=12):
    """Non-negative weights over vertices near `target` summing to 1 whose weighted mean is exactly
    `target` (least change from uniform weights over the k nearest; k grows until the target lies
    inside their hull)."""
    d = np.linalg.norm(pos[cand] - target, axis=1)
    order = cand[np.lexsort((cand, d))]
    k = k0
    while k <= len(order):
        sel = order[:k]
        active = np.ones(k, dtype=bool)
        w = np.zeros(k)
        for _ in range(k):
            A = np.concatenate([pos[sel[active]].T, np.ones((1, active.sum()))])
            b = np.concatenate([target, [1.0]])
            w0 = np.full(active.sum(), 1.0 / active.sum())
            try:
                wa = w0 + A.T @ np.linalg.solve(A @ A.T, b - A @ w0)
            except np.linalg.LinAlgError:
                break
            if np.abs(A @ wa - b).max() > 1e-9:  # (nearly) coplanar vertices: no exact solution
                break
            if wa.min() >= 0:
                w[:] = 0
                w[active] = wa
                row = np.zeros(len(pos))
                row[sel] = w
                return row
            idx = np.nonzero(active)[0]
            active[idx[wa < 0]] = False
            if active.sum() < 4:
                break
        k *= 2
    raise RuntimeError(f'procedural body: cannot regress joint at {target}')


def _joint_regressor(pos, part, pts, mirror):
    allowed = _allowed_joints()
    rows = np.zeros((24, len(pos)))
    for j in range(24):
        if SMPL_24[j].startswith('R_'):
            continue
        cand = np.nonzero(allowed[part, j])[0]
        if j in (12, 15):  # neck and head sit where the head part meets the torso
            cand = np.nonzero(allowed[part, j] | (part == _HEAD))[0]
        rows[j] = _regressor_row(pos, cand, pts[j])
    for j in range(24):
        if SMPL_24[j].startswith('L_'):
            rows[FLIP_24[j]] = rows[j][mirror]
        elif not SMPL_24[j].startswith('R_'):
            rows[j] = 0.5 * (rows[j] + rows[j][mirror])
    return rows


def _landmarks(pos, mirror):
    """Vertices for nose, eyes, ears and head top: the nearest to where they sit on a head of these
    proportions, restricted to the midline (nose, head top), or to the left side and front (eyes)."""
    x = pos[:, 0]

    def nearest(target, ok):
        d = np.linalg.norm(pos - target, axis=1)
        d[~ok] = np.inf
        return int(np.argmin(d))
    head = pos[:, 1] > 0.33
    midline = mirror == np.arange(len(pos))
    nose = nearest((0.0, 0.405, 0.12), head & midline)
    leye = nearest((0.034, 0.432, 0.10), head & (x > 0.01) & (pos[:, 2] > 0.02))
    lear = nearest((0.085, 0.410, -0.005), head & (x > 0.04))
    top = nearest((0.0, 0.60, 0.0), head & midline)
    return np.array([nose, leye, mirror[leye], lear, mirror[lear], top], dtype=np.int64)


def _shape_dirs(pos, part, pts, w, t_joint, end_joint, close_joint):
    """Ten displacement fields [V,3,10]. Skeleton edits (a displacement of every joint and tip) are
    carried to the skin by the skinning weights, interpolated along each bone so that limbs stretch
    smoothly; girth directions scale the offset of each vertex from its (weighted) bone."""
    n = len(pos)
    name = {nm: i for i, nm in enumerate(SMPL_24)}
    bone_point = np.einsum('vj,vjk->vk', w, close_joint)
    radial = pos - bone_point

    def from_skeleton(D):
        start = D[:24][None]                      # [1,24,3]
        end = D[end_joint]                        # [V,24,3]
        per_joint = (1 - t_joint[..., None]) * start + t_joint[..., None] * end
        return np.einsum('vj,vjk->vk', w, per_joint)

    def chain(names, tips=()):
        idx = [name['L_' + nm] for nm in names] + [_TIP_INDEX['L_' + t] for t in tips]
        return idx

    def symmetric_D(left_idx, disp):
        D = np.zeros((29, 3))
        for i, dv in zip(left_idx, disp):
            D[i] = dv
            D[_FLIP_POINTS[i]] = np.asarray(dv) * _MIRROR
        return D

    dirs = np.zeros((n, 3, NUM_BETAS))
    # 0 height: scale about the pelvis, mostly vertically
    dirs[:, :, 0] = (pos - pts[0]) * np.array([0.015, 0.040, 0.015])
    # 1 weight: thicker everywhere, the trunk most
    g = np.select([part == _TORSO, part == _HEAD], [0.14, 0.03], 0.08)
    dirs[:, :, 1] = g[:, None] * radial
    # 2 leg length / 3 arm length: bones below the hip / beyond the shoulder 5% longer
    idx = chain(('Knee', 'Ankle', 'Toe'), ('ToeTip',))
    dirs[:, :, 2] = from_skeleton(symmetric_D(idx, 0.05 * (_points()[idx] - pts[name['L_Hip']])))
    idx = chain(('Elbow', 'Wrist', 'Hand'), ('Tip',))
    dirs[:, :, 3] = from_skeleton(symmetric_D(idx, 0.05 * (_points()[idx] - pts[name['L_Shoulder']])))
    # 4 shoulder width: collars and arms move out
    idx = chain(('Thorax',)) + chain(('Shoulder', 'Elbow', 'Wrist', 'Hand'), ('Tip',))
    dirs[:, :, 4] = from_skeleton(symmetric_D(idx, [(0.008, 0, 0)] + [(0.02, 0, 0)] * 5))
    # 5 hip width: the pelvis widens and the legs move out (a smooth function of x, so the crotch,
    # where the two legs' skinning meets, does not tear)
    below_waist = np.clip((-0.08 - pos[:, 1]) / 0.17, 0.0, 1.0)
    dirs[:, 0, 5] = 0.015 * np.clip(pos[:, 0] / pts[name['L_Hip'], 0], -1.0, 1.0) * below_waist
    # 6 head size: the head grows about its centre (weighted by its skinning, so the neck blends)
    head_c = np.array([0.0, 0.42, 0.0])
    dirs[:, :, 6] = 0.08 * w[:, [name['Head']]] * (pos - head_c)
    # 7 torso length: the spine stretches, everything above the chest rises
    D = np.zeros((29, 3))
    D[name['Spine']] = (0, 0.010, 0)
    upper = [name[nm] for nm in ('Chest', 'Neck', 'Head')] + [24] + \
        [i for i in range(24) if SMPL_24[i][2:] in ('Thorax', 'Shoulder', 'Elbow', 'Wrist', 'Hand')] + [25, 26]
    D[upper] = (0, 0.025, 0)
    dirs[:, :, 7] = from_skeleton(D)
    # 8 torso depth: chest and belly deeper (front/back offsets of the trunk)
    trunk = w[:, [name[nm] for nm in ('Pelvis', 'Torso', 'Spine', 'Chest')]].sum(1) * (part == _TORSO)
    dirs[:, 2, 8] = 0.15 * trunk * radial[:, 2]
    # 9 limb girth: arms and legs thicker, trunk unchanged
    limb = np.isin(part, (_LARM, _RARM, _LLEG, _RLEG)).astype(float)
    dirs[:, :, 9] = 0.12 * limb[:, None] * radial
    # girth must not push the inner thighs across the midline: damp the sideways part at the crotch
    crotch = np.clip((-0.28 - pos[:, 1]) / 0.05, 0.0, 1.0) * (1.0 - np.minimum(1.0, np.abs(pos[:, 0]) / 0.05))
    dirs[:, 0, [1, 9]] *= (1.0 - crotch)[:, None]
    return dirs


def _smooth_fields(fields, quads, n, iters=2):
    """A few uniform Laplacian passes (removes the kinks that skinning-based edits have where bones meet)."""
    edges, deg = _neighbours(quads, n)
    for _ in range(iters):
        mean = np.zeros_like(fields)
        np.add.at(mean, edges[:, 0], fields[edges[:, 1]])
        fields = 0.5 * fields + 0.5 * mean / deg.reshape((-1,) + (1,) * (fields.ndim - 1))
    return fields


def _flush(x, tiny=1e-30):
    """Exact zeros instead of denormal-range floats (they make CPU matmuls several times slower)."""
    x = np.array(x)
    if np.issubdtype(x.dtype, np.floating):
        x[np.abs(x) < tiny] = 0
    return x


_GENDER_BETAS = {'neutral': np.zeros(NUM_BETAS),
                 'male': np.array([0.7, 0.2, 0.2, 0.2, 0.8, -0.4, 0.1, 0.2, 0.0, 0.5]),
                 'female': np.array([-0.8, -0.2, 0.0, -0.2, -0.8, 0.9, -0.2, -0.2, 0.2, -0.3])}


def generate(n_vertices=3000, gender='neutral'):
    """All arrays of one procedural model (official SMPL keys plus extras), deterministic."""
    gender = gender.lower()
    if gender not in _GENDER_BETAS:
        raise ValueError(f"gender must be neutral, male or female, not {gender!r}")
    plan = choose_plan(int(n_vertices))
    cage = _build_cage(plan)
    quads = cage.quads()
    part = np.array(cage.part, dtype=np.int64)
    field = _Field()
    mirror = _mirror_map(np.asarray(cage.pos))
    pos = _fit(np.asarray(cage.pos), quads, field, mirror)
    faces = _triangulate(quads, pos)
    pts = _points()

    w, t_joint, end_joint, close_joint = _skinning(pos, part, pts)
    w = 0.5 * (w + w[mirror][:, FLIP_24])
    w /= w.sum(1, keepdims=True)
    J_reg = _joint_regressor(pos, part, pts, mirror)
    if np.abs(J_reg @ pos - pts[:24]).max() > 1e-6:
        raise RuntimeError('procedural body: the joint regressor misses the skeleton')
    shapedirs = _shape_dirs(pos, part, pts, w, t_joint, end_joint, close_joint)
    shapedirs[:, :, 1:] = _smooth_fields(shapedirs[:, :, 1:], quads, len(pos))  # 0 (height) is exactly linear
    shapedirs = 0.5 * (shapedirs + shapedirs[mirror] * _MIRROR[None, :, None])
    marks = _landmarks(pos, mirror)

    # regressors over the 30 / H36M-17 joint sets
    onehot = np.zeros((len(marks), len(pos)))
    onehot[np.arange(len(marks)), marks] = 1.0
    reg30 = np.concatenate([J_reg, onehot])
    rows = {n: reg30[SMPL30.index(n)] for n in SMPL30.joints}
    h36m = {n: rows[n] for n in ('R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Head_top',
                                'L_Shoulder', 'L_Elbow', 'L_Wrist', 'R_Shoulder', 'R_Elbow', 'R_Wrist')}
    h36m['Pelvis'] = 0.5 * (rows['L_Hip'] + rows['R_Hip'])            # H36M root: between the hips
    h36m['Neck'] = 0.5 * rows['Neck'] + 0.25 * (rows['L_Shoulder'] + rows['R_Shoulder'])  # thorax
    h36m['Torso'] = 0.5 * (h36m['Pelvis'] + h36m['Neck'])             # H36M spine: mid pelvis-thorax
    h36m['Nose'] = 0.5 * (rows['Nose'] + rows['Head'])                # inside the face, like H36M's
    reg_h36m = np.stack([h36m[n] for n in H36M17.joints])

    v_template = pos + shapedirs @ _GENDER_BETAS[gender]
    kintree = np.array([[4294967295] + list(SMPL_PARENTS[1:]), list(range(24))], dtype=np.int64)
    f32 = lambda x: _flush(np.asarray(x, dtype=np.float32))  # noqa: E731
    return {
        'v_template': f32(v_template),
        'shapedirs': f32(shapedirs),
        'posedirs': np.zeros((len(pos), 3, NUM_POSE_BASIS), dtype=np.float32),
        'J_regressor': f32(J_reg),
        'J': f32(J_reg @ v_template),
        'weights': f32(w),
        'kintree_table': kintree,
        'f': faces.astype(np.uint32),
        # extras (not in official files)
        'joint_regressor_30': f32(reg30),
        'J_regressor_h36m': f32(reg_h36m),
        'landmark_vertex_ids': marks,
        'landmark_names': np.array(FACE_LANDMARKS),
        'part_labels': part.astype(np.int8),
        'part_names': np.array(PART_NAMES),
        'joint_names': np.array(SMPL_24),
        'shape_direction_names': np.array(SHAPE_DIRECTIONS),
        'procedural_version': np.array(GENERATOR_VERSION, dtype=np.int64),
        'gender': np.array(gender),
    }
