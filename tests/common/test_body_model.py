"""The body model: the procedural body's geometry, skinning, shape space and regressors against
independent checks (mesh topology, winding numbers, mirror symmetry), and the official-file code path
on a stand-in with the official vertex count."""
import logging

import numpy as np
import pytest
import torch

from common.body import procedural_body
from common.body import smpl
from common.body.joint_sets import H36M17, SMPL30, SMPL_24, SMPL_PARENTS
from common.body.smpl import BodyModel, find_official_model, get_body_model, save_npz
from common.errors import UserError
from tests import fixtures

N = 1000


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('human_model_files')


@pytest.fixture(scope='module')
def body(model_dir):
    return BodyModel('neutral', model_dir, N)


@pytest.fixture(scope='module')
def arrays(body):
    with np.load(body.model_path) as z:
        return {k: z[k] for k in z.files}


def winding_number(points, v, f):
    """Generalised winding number of a closed triangle mesh at each point (1 inside, 0 outside)."""
    out = []
    for p in np.atleast_2d(points):
        a, b, c = v[f[:, 0]] - p, v[f[:, 1]] - p, v[f[:, 2]] - p
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum('ij,ij->i', a, np.cross(b, c))
        den = la * lb * lc + (a * b).sum(1) * lc + (b * c).sum(1) * la + (c * a).sum(1) * lb
        out.append(2 * np.arctan2(num, den).sum() / (4 * np.pi))
    return np.array(out)


def template(body):
    return body.template_vertices.double().numpy()


def mirror_index(v, tol=1e-5):
    d = np.linalg.norm(v[None, :, :] * [-1, 1, 1] - v[:, None, :], axis=2)
    idx = d.argmin(1)
    assert d[np.arange(len(v)), idx].max() < tol, 'vertex set is not mirror symmetric'
    return idx


def flip24():
    return np.array([SMPL_24.index('R_' + n[2:]) if n.startswith('L_') else
                     SMPL_24.index('L_' + n[2:]) if n.startswith('R_') else i for i, n in enumerate(SMPL_24)])


# ---------------------------------------------------------------------------------------- geometry

def test_closed_oriented_two_manifold(body):
    f = body.faces
    v = template(body)
    assert abs(body.num_vertices - N) < 0.1 * N
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    # consistent orientation: every directed edge once, and its reverse exactly once
    assert len(np.unique(directed, axis=0)) == len(directed)
    und, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert (counts == 2).all()
    assert body.num_vertices - len(und) + len(f) == 2           # Euler characteristic of a sphere
    assert len(np.unique(f)) == body.num_vertices                # no stray vertices
    tri = v[f]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) / 2
    assert area.min() > 1e-7
    volume = np.einsum('ij,ij->i', tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert 0.04 < volume < 0.09                                   # m^3, outward normals, an adult's body
    # no folds: faces sharing an edge never turn back onto each other
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    face_of = {tuple(e): i % len(f) for i, e in enumerate(directed.tolist())}
    opposite = np.array([face_of[(b, a)] for a, b in directed.tolist()])
    assert (n[np.arange(len(directed)) % len(f)] * n[opposite]).sum(1).min() > -0.5


def test_one_connected_piece(body):
    f = body.faces
    parent = np.arange(body.num_vertices)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for a, b in np.concatenate([f[:, [0, 1]], f[:, [1, 2]]]):
        parent[root(a)] = root(b)
    assert len({root(i) for i in range(body.num_vertices)}) == 1


def test_human_proportions_and_axes(body):
    v = template(body)
    j = body.regress_joints(body.template_vertices[None])[0].double().numpy()
    idx = SMPL30.index
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.6 < height < 1.8
    assert 1.5 < v[:, 0].max() - v[:, 0].min() < 1.9                 # T-pose arm span ~ height
    assert -0.3 < j[idx('Pelvis'), 1] < -0.1                         # centred like SMPL, not feet at 0
    assert j[idx('L_Hip'), 0] > 0.04 and j[idx('L_Shoulder'), 0] > 0.1  # x = the body's left
    assert j[idx('Nose'), 2] > j[idx('Head'), 2] + 0.03               # z forward: the face looks +z
    assert j[idx('L_Toe'), 2] > j[idx('L_Ankle'), 2] + 0.05           # feet point forward
    assert j[idx('Head_top'), 1] == pytest.approx(v[:, 1].max(), abs=0.01)
    # T-pose: arms horizontal along x
    arm = j[idx('L_Wrist')] - j[idx('L_Shoulder')]
    assert abs(arm[1]) < 0.05 * np.linalg.norm(arm) and arm[0] > 0.4
    for c, p in enumerate(SMPL_PARENTS):                              # a joint is not on top of its parent
        if p >= 0:
            assert np.linalg.norm(j[c] - j[p]) > 0.04


def test_joints_inside_the_body(body):
    v, f = template(body), body.faces
    j = body.regress_joints(body.template_vertices[None])[0].double().numpy()
    w = winding_number(j[:24], v, f)
    assert np.allclose(w, 1.0, atol=1e-3), dict(zip(SMPL_24, np.round(w, 3)))
    # the face joints and the head top are surface points (single vertices)
    reg = body.joint_regressor.numpy()
    for name in ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear', 'Head_top'):
        row = reg[SMPL30.index(name)]
        assert row.max() == 1.0 and np.count_nonzero(row) == 1
        assert body.landmark_vertex_ids[name] == int(row.argmax())
    assert j[SMPL30.index('L_Eye'), 0] > 0 > j[SMPL30.index('R_Eye'), 0]
    assert j[SMPL30.index('L_Ear'), 0] > j[SMPL30.index('L_Eye'), 0]


def test_left_right_symmetry(body):
    v = template(body)
    m = mirror_index(v)
    j = body.regress_joints(body.template_vertices[None])[0].double().numpy()
    perm = SMPL30.flip_permutation()
    assert np.allclose(j[perm] * [-1, 1, 1], j, atol=1e-5)
    w = body.lbs_weights.double().numpy()
    assert np.allclose(w[m][:, flip24()], w, atol=1e-5)


def test_skinning_weights(body):
    w = body.lbs_weights.double().numpy()
    assert w.shape == (body.num_vertices, 24)
    assert w.min() >= 0 and np.allclose(w.sum(1), 1, atol=1e-5)
    # every bone drives some skin, and each vertex follows a few bones at most
    assert (w.max(0) > 0.4).all() and (w > 0).sum(1).max() <= 6


# ---------------------------------------------------------------------------------------- posing

def test_zero_pose_and_shape_give_the_template(body, arrays):
    v, j = body(torch.zeros(1, 72), torch.zeros(1, 10))
    assert torch.allclose(v[0], torch.from_numpy(arrays['v_template']), atol=1e-6)
    assert torch.allclose(j, body.regress_joints(v), atol=1e-7)


def test_bending_left_elbow_moves_only_left_forearm(body):
    v0 = template(body)
    pose = torch.zeros(1, 72)
    pose[0, 3 * SMPL_24.index('L_Elbow') + 1] = -1.5   # about y: the forearm swings forward
    v, _ = body(pose, torch.zeros(1, 10))
    moved = np.linalg.norm(v[0].double().numpy() - v0, axis=1)
    elbow_x = template_joint(body, 'L_Elbow')[0]
    hand = v0[:, 0] > elbow_x + 0.1
    assert moved[hand].min() > 0.05                                   # the whole forearm and hand swing
    still = 1e-6                                                      # float32 round-off of identity transforms
    assert moved[v0[:, 0] < -0.15].max() < still                      # right arm (and right torso side)
    assert moved[v0[:, 1] < -0.45].max() < still                      # legs
    assert moved[v0[:, 1] > 0.33].max() < still                       # head
    # the forearm swings forward (+z), a rigid rotation about the elbow keeps its distance to it
    e = template_joint(body, 'L_Elbow')
    tip = np.argmax(v0[:, 0])
    assert v[0, tip, 2].item() > e[2] + 0.2
    assert np.linalg.norm(v[0, tip].numpy() - e) == pytest.approx(np.linalg.norm(v0[tip] - e), rel=1e-3)


def template_joint(body, name):
    return body.regress_joints(body.template_vertices[None])[0, SMPL30.index(name)].double().numpy()


def test_joints_are_the_regressor_applied_to_vertices(body):
    g = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(3, 72, generator=g)
    shape = torch.randn(3, 10, generator=g)
    trans = torch.randn(3, 3, generator=g)
    v, j = body(pose, shape, trans)
    assert v.shape == (3, body.num_vertices, 3) and j.shape == (3, 30, 3)
    assert torch.allclose(j, torch.einsum('jv,bvc->bjc', body.joint_regressor, v), atol=1e-5)
    v_nt, j_nt = body(pose, shape)
    assert torch.allclose(v, v_nt + trans[:, None], atol=1e-6)
    assert torch.allclose(j, j_nt + trans[:, None], atol=1e-6)
    # smplx's 24 joints at zero pose are J_regressor applied to the shaped vertices
    zero = torch.zeros(3, 72)
    out = body.smpl(betas=shape, body_pose=zero[:, 3:], global_orient=zero[:, :3])
    assert torch.allclose(out.joints[:, :24], torch.einsum('jv,bvc->bjc', body.smpl.J_regressor, out.vertices),
                          atol=1e-5)
    assert torch.allclose(body.joint_regressor[:24], body.smpl.J_regressor)


def test_regressors(body, arrays):
    v = template(body)
    reg = body.joint_regressor.double().numpy()
    assert reg.shape == (30, body.num_vertices) and reg.min() >= 0
    assert np.allclose(reg.sum(1), 1, atol=1e-5)
    # the J_regressor reproduces the designed skeleton exactly (weights solved for it)
    designed = procedural_body._points()[:24]
    assert np.allclose(arrays['J_regressor'].astype(np.float64) @ v, designed, atol=2e-5)
    h = body.h36m_regressor.double().numpy()
    assert h.shape == (17, body.num_vertices) and np.allclose(h.sum(1), 1, atol=1e-5)
    hj, sj = h @ v, reg @ v
    for name in ('L_Hip', 'R_Knee', 'L_Ankle', 'L_Shoulder', 'R_Elbow', 'L_Wrist', 'Head_top'):
        assert np.allclose(hj[H36M17.index(name)], sj[SMPL30.index(name)], atol=1e-6)
    pelvis = hj[H36M17.index('Pelvis')]
    assert np.allclose(pelvis, (sj[SMPL30.index('L_Hip')] + sj[SMPL30.index('R_Hip')]) / 2, atol=1e-6)
    order = [hj[H36M17.index(n), 1] for n in ('Pelvis', 'Torso', 'Neck', 'Head_top')]
    assert order == sorted(order)                                     # bottom to top
    assert winding_number(hj, v, body.faces).min() > 0.2              # all in or on the body


# ---------------------------------------------------------------------------------------- shape space

def test_shape_direction_0_is_height(body):
    heights = []
    for b in np.linspace(-2, 2, 9):
        shape = torch.zeros(1, 10)
        shape[0, 0] = float(b)
        v, _ = body(torch.zeros(1, 72), shape)
        heights.append((v[0, :, 1].max() - v[0, :, 1].min()).item())
    assert np.all(np.diff(heights) > 0.02)
    assert 1.45 < heights[0] and heights[-1] < 2.0


def test_shape_directions_are_distinct_smooth_and_symmetric(body):
    sd = body.smpl.shapedirs.double().numpy()                         # [V,3,10]
    v, f = template(body), body.faces
    m = mirror_index(v)
    flat = sd.reshape(-1, 10)
    norms = np.linalg.norm(flat, axis=0)
    assert (norms > 0).all()
    cos = (flat / norms).T @ (flat / norms)
    assert np.abs(cos - np.eye(10)).max() < 0.95                      # no two directions alike
    assert np.allclose(sd[m] * np.array([-1, 1, 1])[None, :, None], sd, atol=1e-6)
    # smooth: neighbouring vertices move alike (edge stretch small against edge length)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    stretch = np.linalg.norm(sd[e[:, 0]] - sd[e[:, 1]], axis=1).max(1)
    length = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)
    assert (stretch / length).max() < 0.5
    # a shaped body is still a body: joints inside it
    shape = torch.tensor([[1.5, 1.5, -1.5, 1.5, -1.5, 1.5, 1.5, -1.5, 1.5, 1.5]])
    vs, js = body(torch.zeros(1, 72), shape)
    assert np.allclose(winding_number(js[0, :24].double().numpy(), vs[0].double().numpy(), f), 1, atol=1e-3)


# ---------------------------------------------------------------------------------------- files

def test_generation_is_deterministic_and_denormal_free(tmp_path, arrays):
    a, b = procedural_body.generate(N), procedural_body.generate(N)
    save_npz(tmp_path / 'a.npz', a)
    save_npz(tmp_path / 'b.npz', b)
    assert (tmp_path / 'a.npz').read_bytes() == (tmp_path / 'b.npz').read_bytes()
    assert set(a) == set(arrays) and all(np.array_equal(a[k], arrays[k]) for k in a)
    tiny = np.finfo(np.float32).tiny
    for k, x in a.items():
        if np.issubdtype(x.dtype, np.floating):
            assert x.dtype == np.float32
            nz = np.abs(x[x != 0])
            assert nz.size == 0 or nz.min() >= tiny, k
    assert a['posedirs'].shape == (len(a['v_template']), 3, 207) and not a['posedirs'].any()
    assert a['kintree_table'].shape == (2, 24) and list(a['kintree_table'][0, 1:]) == list(SMPL_PARENTS[1:])


def test_genders_share_topology_with_other_proportions(model_dir, body):
    male, female = BodyModel('male', model_dir, N), BodyModel('female', model_dir, N)
    assert male.is_procedural and np.array_equal(male.faces, body.faces)
    assert np.array_equal(female.faces, body.faces)
    hv = {k: (m.template_vertices[:, 1].max() - m.template_vertices[:, 1].min()).item()
          for k, m in (('m', male), ('n', body), ('f', female))}
    assert hv['f'] < hv['n'] < hv['m']
    assert not torch.equal(male.template_vertices, female.template_vertices)


def test_cache_file_reused_and_model_read_once(model_dir, body, caplog, monkeypatch):
    path = smpl.procedural_model_path(model_dir, 'neutral', N)
    assert body.model_path == path and path.is_file() and body.is_procedural
    assert not list(path.parent.glob('*.tmp'))                        # atomic write left nothing behind
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(smpl, '_warned_procedural', False)
    monkeypatch.setattr(smpl, '_loaded', {})
    reads, load = [], smpl.load_model_arrays
    monkeypatch.setattr(smpl, 'load_model_arrays', lambda p: reads.append(p) or load(p))
    with caplog.at_level(logging.WARNING, logger='common.body.smpl'):
        a = get_body_model('neutral', model_dir, N)
        b = get_body_model('neutral', model_dir, N)
        BodyModel('neutral', model_dir, N)
    assert reads == [path, path]                                      # once for both calls, once for BodyModel
    assert a is not b and path.stat().st_mtime_ns == stamp
    msgs = [r.getMessage() for r in caplog.records if 'procedural body model in use' in r.getMessage()]
    assert len(msgs) == 1 and 'not comparable to published numbers' in msgs[0]
    assert find_official_model(model_dir, 'neutral') is None
    # nothing of the body model goes into a checkpoint, and it has nothing to train
    assert not a.state_dict() and not list(a.parameters())


def test_each_caller_gets_its_own_body_model(model_dir):
    a, b = get_body_model('neutral', model_dir, N), get_body_model('neutral', model_dir, N, device='cpu')
    assert a is not b
    g = torch.Generator().manual_seed(0)
    pose, shape = 0.3 * torch.randn(3, 72, generator=g), torch.randn(3, 10, generator=g)
    with torch.no_grad():
        va, ja = a(pose, shape)
        vb, jb = b(pose, shape)
    assert torch.equal(va, vb) and torch.equal(ja, jb)
    faces = b.faces.copy()
    # changing one in place, then converting it, leaves the other as it was
    a.smpl.v_template.add_(1.0)
    a.joint_regressor.mul_(2.0)
    a.faces[:] = 0
    a.double()
    assert a.joint_regressor.dtype == torch.float64 and b.joint_regressor.dtype == torch.float32
    with torch.no_grad():
        v2, j2 = b(pose, shape)
        va2, _ = a(pose, shape)
    assert torch.equal(v2, vb) and torch.equal(j2, jb) and np.array_equal(b.faces, faces)
    assert (va2 - va.double()).norm(dim=-1).min() > 0.5            # a's change took effect, in a only
    c = get_body_model('neutral', model_dir, N)                      # later callers get the original
    with torch.no_grad():
        assert torch.equal(c(pose, shape)[0], vb)


def test_corrupt_cache_is_regenerated(tmp_path):
    path = smpl.procedural_model_path(tmp_path, 'neutral', 800)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'not a zip file')
    m = BodyModel('neutral', tmp_path, 800)
    assert m.is_procedural and np.load(path)['v_template'].shape == (m.num_vertices, 3)


def test_read_only_model_dir_still_works(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError('read-only file system')
    monkeypatch.setattr(smpl, 'save_npz', refuse)
    m = BodyModel('neutral', tmp_path, 800)
    assert m.is_procedural and not m.model_path.exists()
    v, j = m(torch.zeros(1, 72), torch.zeros(1, 10))
    assert torch.isfinite(v).all() and j.shape == (1, 30, 3)


def test_bad_gender_and_inputs(body):
    with pytest.raises(ValueError, match='gender'):
        BodyModel('robot')
    with pytest.raises(ValueError, match=r'\[B,72\]'):
        body(torch.zeros(1, 69), torch.zeros(1, 10))
    with pytest.raises(ValueError, match=r'\[B,10\]'):
        body(torch.zeros(1, 72), torch.zeros(1, 300))


# ---------------------------------------------------------------------------------------- official path

@pytest.fixture(scope='module')
def official_sized(tmp_path_factory):
    """A procedural body with at least the official vertex count, stripped of our extras: it goes
    through the official-file code path (official face vertex ids, external regressor files)."""
    a, _ = smpl._procedural_arrays(tmp_path_factory.getbasetemp() / 'shared_models', 'neutral', 6500)
    assert len(a['v_template']) > 6262
    return a


def write_official(root, a, regressors=True):
    keys = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table', 'f')
    save_npz(root / 'smpl' / 'SMPL_NEUTRAL.npz', {k: a[k] for k in keys})
    if regressors:
        fixtures.write_smpl_regressors(root, a)


def test_official_code_path(tmp_path, official_sized):
    a = official_sized
    write_official(tmp_path, a)
    assert find_official_model(tmp_path, 'neutral') == tmp_path / 'smpl' / 'SMPL_NEUTRAL.npz'
    m = BodyModel('neutral', tmp_path)
    assert not m.is_procedural and m.num_vertices == len(a['v_template'])
    reg = m.joint_regressor.numpy()
    ids = [331, 2802, 6262, 3489, 3990]
    assert np.array_equal(reg[24:29].argmax(1), ids) and np.allclose(reg[24:29].max(1), 1)
    assert reg[29].argmax() == a['landmark_vertex_ids'][-1]
    assert np.allclose(reg[:24], a['J_regressor'])
    pose = 0.2 * torch.randn(2, 72, generator=torch.Generator().manual_seed(1))
    v, j = m(pose, torch.zeros(2, 10))
    assert torch.allclose(j, torch.einsum('jv,bvc->bjc', m.joint_regressor, v), atol=1e-5)
    # official neutral present, male requested: never silently fall back to the procedural mesh
    with pytest.raises(UserError, match='SMPL_MALE'):
        BodyModel('male', tmp_path)


def test_missing_or_wrong_regressor_files(tmp_path, official_sized):
    write_official(tmp_path, official_sized, regressors=False)
    with pytest.raises(UserError, match='J_regressor_extra.npy') as e:
        BodyModel('neutral', tmp_path)
    assert '3DCrowdNet' in str(e.value) and '\n' not in str(e.value)
    write_official(tmp_path, official_sized)
    np.save(tmp_path / 'J_regressor_h36m_correct.npy', np.zeros((17, 10)))
    with pytest.raises(UserError, match='J_regressor_h36m_correct.npy'):
        BodyModel('neutral', tmp_path)


def test_official_ids_need_the_official_topology(tmp_path, arrays):
    write_official(tmp_path, arrays)                   # 1000 vertices: vertex 6262 does not exist
    with pytest.raises(UserError, match='SMPL_NEUTRAL.npz'):
        BodyModel('neutral', tmp_path)


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'v_template', 'J_regressor', 'weights', 'missing'])
def test_damaged_model_file(tmp_path, arrays, damage):
    keys = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table', 'f')
    a = {k: arrays[k] for k in keys}
    path = tmp_path / 'smpl' / 'SMPL_NEUTRAL.npz'
    if damage == 'v_template':
        a['v_template'] = a['v_template'][:, :2]
    elif damage == 'J_regressor':
        a['J_regressor'] = a['J_regressor'][:23]
    elif damage == 'weights':
        a['weights'] = a['weights'][:, :23]
    elif damage == 'missing':
        del a['weights']
    save_npz(path, a)
    if damage == 'garbage':
        path.write_bytes(b'\x00' * 100)
    elif damage == 'truncated':
        path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError) as e:
        BodyModel('neutral', tmp_path)
    msg = str(e.value)
    assert str(path) in msg and '\n' not in msg
    if damage not in ('garbage', 'truncated'):
        assert (damage if damage != 'missing' else 'weights') in msg
