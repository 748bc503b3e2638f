"""The SMPL body model: official files through `smplx` when installed, else the procedural body.

    model = get_body_model('neutral')            # cached, on CPU
    vertices, joints = model(pose, shape, trans)  # [B,V,3], [B,30,3] (SMPL-30 order), metres

Official files are looked up in `<model_dir>/smpl/` (see human_model_files/README.md for the names
accepted); pkl files are read without chumpy. With no official file, a procedural SMPL-compatible body
(common/body/procedural_body.py) is generated once, cached under `<model_dir>/procedural/` and loaded
through the very same smplx code path; its numbers are not comparable to published ones.

The vertex count differs between the two models (never assume 6890): use `model.num_vertices`.
"""
import contextlib
import functools
import hashlib
import io
import logging
import os
import pickle
import threading
import types
import zipfile
from pathlib import Path

import numpy as np
import torch

from common.body.joint_sets import H36M17, SMPL30
from common.errors import UserError
from common.paths import ROOT

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = ROOT / 'common' / 'utils' / 'human_model_files'   # where 3DCrowdNet keeps them
GENDERS = ('neutral', 'male', 'female')
REQUIRED_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table', 'f')
NUM_BETAS = 10
NUM_SMPL_JOINTS = 24

# Accepted file names in <model_dir>/smpl/, in order of preference (matched case-insensitively).
OFFICIAL_FILE_NAMES = {
    'neutral': ('SMPL_NEUTRAL.npz', 'SMPL_NEUTRAL.pkl', 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl',
                'basicModel_neutral_lbs_10_207_0_v1.1.0.pkl'),
    'male': ('SMPL_MALE.npz', 'SMPL_MALE.pkl', 'basicmodel_m_lbs_10_207_0_v1.0.0.pkl',
             'basicModel_m_lbs_10_207_0_v1.1.0.pkl'),
    'female': ('SMPL_FEMALE.npz', 'SMPL_FEMALE.pkl', 'basicModel_f_lbs_10_207_0_v1.0.0.pkl',
               'basicModel_f_lbs_10_207_0_v1.1.0.pkl'),
}
# Regressors that come with 3DCrowdNet / I2L-MeshNet (their data/ folder), over the official topology.
REGRESSOR_EXTRA = 'J_regressor_extra.npy'        # row 3: head top
REGRESSOR_H36M = 'J_regressor_h36m_correct.npy'  # 17 x V, H36M-17 order
HEAD_TOP_ROW = 3
# One-vertex joints of the official topology (valid only for it): nose, L eye, R eye, L ear, R ear.
OFFICIAL_FACE_VERTEX_IDS = {'Nose': 331, 'L_Eye': 2802, 'R_Eye': 6262, 'L_Ear': 3489, 'R_Ear': 3990}
REGRESSOR_SOURCE = ('download them from the 3DCrowdNet or I2L-MeshNet release (their data/ folder) '
                    'into {dir}; see common/utils/human_model_files/README.md')


def _gender(gender):
    g = str(gender).lower()
    g = {'n': 'neutral', 'm': 'male', 'f': 'female'}.get(g, g)
    if g not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(GENDERS)}, not {gender!r}")
    return g


def _model_dir(model_dir):
    return Path(model_dir).expanduser().resolve() if model_dir is not None else DEFAULT_MODEL_DIR


# ----------------------------------------------------------------------------------------------
# Reading official files without chumpy.

class _ChumpyObject:
    """Stand-in for any chumpy class: keeps the pickled state (a Ch keeps its array under 'x')."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {'state': state}


class _SparseState:
    """Stand-in for a scipy.sparse matrix: rebuilt from its state, whatever scipy wrote it."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _Unknown:
    """Anything else a pickle names: recorded, never executed."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def _stand_in(module, name):
    return type(name, (_Unknown,), {'__module__': f'unpickled.{module}'})


_SAFE_BUILTINS = {'object', 'set', 'frozenset', 'list', 'dict', 'tuple', 'int', 'float', 'complex', 'str',
                  'bytes', 'bytearray', 'bool', 'slice', 'range'}
_SAFE_NUMPY = {'_reconstruct', 'scalar', 'dtype', 'ndarray', '_frombuffer'}


class _SMPLUnpickler(pickle.Unpickler):
    """Unpickler for official SMPL pkls: chumpy and scipy.sparse objects become inert stand-ins, only
    a few numpy/builtin names resolve to real code (so a pkl cannot run anything on load)."""

    def find_class(self, module, name):
        top = module.split('.')[0]
        if top == 'chumpy':
            return _ChumpyObject
        if module.startswith('scipy.sparse'):
            return type(name, (_SparseState,), {})
        if top == 'numpy' and name in _SAFE_NUMPY:
            if module.startswith('numpy.core') and hasattr(np, '_core'):
                module = 'numpy._core' + module[len('numpy.core'):]  # numpy 2 name, no deprecation warning
            return super().find_class(module, name)
        if module in ('builtins', '__builtin__') and name in _SAFE_BUILTINS:
            return super().find_class('builtins', name)
        if module in ('copy_reg', 'copyreg') and name == '_reconstructor':
            return super().find_class('copyreg', name)
        if module == '_codecs' and name == 'encode':  # bytes inside protocol-2 pickles written by Python 3
            return super().find_class(module, name)
        if module == 'collections' and name == 'OrderedDict':
            return super().find_class(module, name)
        return _stand_in(module, name)


def _sparse_to_dense(obj, key, path):
    import scipy.sparse as sp
    st = obj.state if isinstance(getattr(obj, 'state', None), dict) else {}
    fmt = st.get('format') or type(obj).__name__[:3]
    shape = tuple(st.get('_shape') or st.get('shape') or ())
    try:
        if fmt in ('csc', 'csr'):
            cls = sp.csc_matrix if fmt == 'csc' else sp.csr_matrix
            m = cls((st['data'], st['indices'], st['indptr']), shape=shape)
        elif fmt == 'coo':
            row, col = st['coords'] if 'coords' in st else (st['row'], st['col'])
            m = sp.coo_matrix((st['data'], (row, col)), shape=shape)
        else:
            raise KeyError(fmt)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f'{path}: cannot rebuild the sparse matrix {key!r} ({e}); the file is corrupt or '
                        f'not an SMPL model file') from e
    return np.asarray(m.toarray())


def _to_numpy(obj, key, path):
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, _ChumpyObject):
        st = getattr(obj, 'state', {})
        if 'x' in st:
            return _to_numpy(st['x'], key, path)
        raise UserError(f'{path}: {key!r} is a chumpy expression, not a plain array; convert the file once '
                        f'where chumpy works, or use the official SMPL release')
    if isinstance(obj, _SparseState):
        return _sparse_to_dense(obj, key, path)
    if hasattr(obj, 'toarray'):  # a real scipy sparse matrix
        return np.asarray(obj.toarray())
    if isinstance(obj, (list, tuple, int, float)):
        return np.asarray(obj)
    raise UserError(f'{path}: {key!r} holds an unexpected {type(obj).__name__} object; not an SMPL model file')


def read_smpl_pickle(path):
    """The arrays of an official SMPL pkl as a dict of numpy arrays (J_regressor dense), no chumpy."""
    path = Path(path)
    try:
        with open(path, 'rb') as fh:
            data = _SMPLUnpickler(fh, encoding='latin1').load()
    except FileNotFoundError:
        raise UserError(f'{path}: no such file') from None
    except Exception as e:  # any unpickling failure means a damaged or foreign file
        raise UserError(f'{path}: cannot read it as an SMPL pkl ({type(e).__name__}: {e}); '
                        f're-download it from https://smpl.is.tue.mpg.de') from e
    if not isinstance(data, dict):
        raise UserError(f'{path}: holds a {type(data).__name__}, not the dict of an SMPL model file')
    out = {}
    for key, val in data.items():
        key = key.decode('latin1') if isinstance(key, bytes) else str(key)
        if key in REQUIRED_KEYS or key == 'J':
            out[key] = _to_numpy(val, key, path)
    return out


def _read_npz(path):
    from common.io import check_archive
    if os.path.isfile(path):
        check_archive(path, 'SMPL model file')   # an npz is a zip: a compressed one could expand without bound
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError:  # an object array; none of ours, never needed
                    if k in REQUIRED_KEYS:
                        raise
            return out
    except FileNotFoundError:
        raise UserError(f'{path}: no such file') from None
    except Exception as e:
        raise UserError(f'{path}: cannot read it as an npz model file ({type(e).__name__}: {e}); '
                        f'regenerate it (python tool/convert/convert_smpl.py) or delete it') from e


def validate_model_arrays(arrays, path):
    """Raise UserError (naming path) unless arrays hold a well-formed SMPL model; returns V."""
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise UserError(f'{path}: missing key(s) {", ".join(missing)}; not an SMPL model file')
    v = arrays['v_template']
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 4:
        raise UserError(f'{path}: v_template has shape {list(v.shape)}, expected [V,3]')
    n = v.shape[0]
    expect = {'shapedirs': (n, 3, None), 'posedirs': (n, 3, 207), 'J_regressor': (NUM_SMPL_JOINTS, n),
              'weights': (n, NUM_SMPL_JOINTS), 'kintree_table': (2, NUM_SMPL_JOINTS), 'f': (None, 3)}
    for key, shape in expect.items():
        a = arrays[key]
        if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
            want = '[' + ','.join('K' if s is None else str(s) for s in shape) + ']'
            raise UserError(f'{path}: {key} has shape {list(a.shape)}, expected {want} (V={n})')
    if arrays['shapedirs'].shape[2] < NUM_BETAS:
        raise UserError(f'{path}: shapedirs has {arrays["shapedirs"].shape[2]} shape directions, need {NUM_BETAS}')
    f = arrays['f']
    if not np.issubdtype(f.dtype, np.integer) or f.min() < 0 or f.max() >= n:
        raise UserError(f'{path}: faces (f) must be vertex indices in [0,{n})')
    for key in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights'):
        if not np.isfinite(arrays[key]).all():
            raise UserError(f'{path}: {key} contains NaN or inf; the file is corrupt')
    return n


def load_model_arrays(path):
    """Arrays of an SMPL model file (.npz, or official .pkl), validated, J_regressor dense."""
    path = Path(path)
    arrays = _read_npz(path) if path.suffix.lower() == '.npz' else read_smpl_pickle(path)
    if 'J_regressor' in arrays and hasattr(arrays['J_regressor'], 'toarray'):
        arrays['J_regressor'] = arrays['J_regressor'].toarray()
    validate_model_arrays(arrays, path)
    return arrays


def save_npz(path, arrays):
    """Write an uncompressed npz atomically (common/io: temporary file + rename, a failed write named by its path) and
    byte-reproducibly (fixed zip timestamps), so concurrent processes never see half a file and the same arrays give
    the same bytes."""
    from common.io import atomic_write

    def write(fh):
        with zipfile.ZipFile(fh, 'w', zipfile.ZIP_STORED) as zf:
            for key in sorted(arrays):
                info = zipfile.ZipInfo(key + '.npy', date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                with zf.open(info, 'w', force_zip64=True) as out:
                    np.lib.format.write_array(out, np.asarray(arrays[key]), allow_pickle=False)
    atomic_write(path, write)
    os.chmod(path, 0o644)   # the cache is for every user of the checkout, whatever the umask


def convert_smpl_file(src, dst):
    """Official SMPL pkl (or npz) -> npz with the official keys, J_regressor dense, no chumpy needed."""
    arrays = load_model_arrays(src)
    keep = {k: arrays[k] for k in REQUIRED_KEYS}
    if 'J' in arrays and np.shape(arrays['J']) == (NUM_SMPL_JOINTS, 3):
        keep['J'] = arrays['J']
    keep = {k: np.asarray(v) for k, v in keep.items()}
    save_npz(dst, keep)
    return Path(dst)


# ----------------------------------------------------------------------------------------------
# Finding / generating model files.

def find_official_model(model_dir, gender):
    """Path of the official SMPL file for gender under <model_dir>/smpl/ (or model_dir itself), or None."""
    gender = _gender(gender)
    model_dir = _model_dir(model_dir)
    for folder in (model_dir / 'smpl', model_dir):
        if not folder.is_dir():
            continue
        present = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
        for name in OFFICIAL_FILE_NAMES[gender]:
            if name.lower() in present:
                return present[name.lower()]
    return None


@functools.lru_cache(maxsize=None)
def _generator_digest():
    """Short hash of the generator's source: any change to it invalidates the cached models."""
    from common.body import procedural_body
    return hashlib.sha1(Path(procedural_body.__file__).read_bytes()).hexdigest()[:8]


def procedural_model_path(model_dir, gender, n_vertices):
    from common.body.procedural_body import GENERATOR_VERSION
    return (_model_dir(model_dir) / 'procedural' / f'SMPL_{_gender(gender).upper()}_n{int(n_vertices)}'
            f'_v{GENERATOR_VERSION}-{_generator_digest()}.npz')


_warned_procedural = False
_lock = threading.RLock()


def _procedural_arrays(model_dir, gender, n_vertices):
    """Load the cached procedural model, generating (and caching) it when absent or unreadable."""
    from common.body import procedural_body
    path = procedural_model_path(model_dir, gender, n_vertices)
    if path.is_file():
        try:
            arrays = load_model_arrays(path)
            if int(arrays.get('procedural_version', -1)) == procedural_body.GENERATOR_VERSION:
                return arrays, path
        except UserError as e:
            logger.warning('%s; regenerating it', e)
    arrays = procedural_body.generate(n_vertices, gender)
    try:
        save_npz(path, arrays)
    except OSError as e:  # read-only install: still usable, just not cached
        logger.warning('cannot cache the procedural body model at %s (%s); using it from memory', path, e)
    return arrays, path


def _warn_procedural(model_dir):
    global _warned_procedural
    if not _warned_procedural:
        _warned_procedural = True
        logger.warning('procedural body model in use (no official SMPL files under %s): metrics are not '
                       'comparable to published numbers', _model_dir(model_dir) / 'smpl')


def _official_regressors(model_dir, num_vertices, model_path):
    regs = {}
    for name, rows in ((REGRESSOR_EXTRA, None), (REGRESSOR_H36M, len(H36M17))):
        p = model_dir / name
        if not p.is_file():
            raise UserError(f'missing {p}: the official SMPL model ({model_path.name}) needs {REGRESSOR_EXTRA} '
                            f'and {REGRESSOR_H36M}; ' + REGRESSOR_SOURCE.format(dir=model_dir))
        try:
            r = np.load(p, allow_pickle=False)
        except Exception as e:
            raise UserError(f'{p}: cannot read it ({type(e).__name__}: {e}); re-download it') from e
        if hasattr(r, 'toarray'):
            r = r.toarray()
        if r.ndim != 2 or r.shape[1] != num_vertices or (rows and r.shape[0] != rows) or \
                (rows is None and r.shape[0] <= HEAD_TOP_ROW):
            raise UserError(f'{p}: shape {list(r.shape)} does not fit the SMPL model {model_path.name} '
                            f'({num_vertices} vertices); use the regressors of the same release')
        regs[name] = r
    return regs[REGRESSOR_EXTRA], regs[REGRESSOR_H36M]


# ----------------------------------------------------------------------------------------------
# The model.

def _flush_denormals(a):
    a = np.array(a, dtype=np.float32)
    a[np.abs(a) < 1e-30] = 0  # denormals slow CPU matmuls several-fold
    return a


class BodyModel(torch.nn.Module):
    """SMPL (official or procedural) with the SMPL-30 and H36M-17 joint regressors.

    Attributes: faces (np.int64 [F,3]), num_vertices, num_joints (=30), is_procedural, gender,
    model_path, landmark_vertex_ids ({'Nose',..,'Head_top': vertex}), part_ids (np.int64 [V], the
    SMPL joint each vertex is mostly skinned to). Buffers: joint_regressor [30,V], h36m_regressor [17,V],
    faces_tensor [F,3]. It has no parameters and no persistent buffers (nothing of it enters a
    checkpoint), and works on any device after `.to(device)`.

    procedural_vertices (about how many vertices the procedural body has) only matters when no official
    file is found.
    """

    def __init__(self, gender='neutral', model_dir=None, procedural_vertices=3000):
        super().__init__()
        import smplx

        self.gender = _gender(gender)
        model_dir = _model_dir(model_dir)
        path = find_official_model(model_dir, self.gender)
        if path is None:
            others = [g for g in GENDERS if find_official_model(model_dir, g) is not None]
            if others:  # never mix the official topology with the procedural one
                raise UserError(f'{model_dir / "smpl"} has the official SMPL model for {", ".join(others)} but '
                                f'not for {self.gender}; add one of: {", ".join(OFFICIAL_FILE_NAMES[self.gender])}')
            with _lock:
                arrays, path = _procedural_arrays(model_dir, self.gender, procedural_vertices)
            _warn_procedural(model_dir)
        else:
            arrays = load_model_arrays(path)
        self.model_path = Path(path)
        self.is_procedural = 'procedural_version' in arrays
        v = arrays['v_template']
        self.num_vertices = int(v.shape[0])
        self.num_joints = len(SMPL30)

        if 'joint_regressor_30' in arrays and 'J_regressor_h36m' in arrays:
            reg30 = np.asarray(arrays['joint_regressor_30'], dtype=np.float64)
            reg_h36m = np.asarray(arrays['J_regressor_h36m'], dtype=np.float64)
            marks = dict(zip([str(n) for n in arrays['landmark_names']],
                             [int(i) for i in arrays['landmark_vertex_ids']]))
        else:
            extra, reg_h36m = _official_regressors(model_dir, self.num_vertices, self.model_path)
            ids = OFFICIAL_FACE_VERTEX_IDS
            if max(ids.values()) >= self.num_vertices:
                raise UserError(f'{self.model_path}: {self.num_vertices} vertices is not the official SMPL '
                                f'topology, and the file has no joint_regressor_30/J_regressor_h36m of its own')
            onehot = np.zeros((len(ids), self.num_vertices))
            onehot[np.arange(len(ids)), [ids[n] for n in ('Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear')]] = 1
            reg30 = np.concatenate([np.asarray(arrays['J_regressor'], np.float64), onehot,
                                    extra[HEAD_TOP_ROW:HEAD_TOP_ROW + 1]])
            marks = dict(ids, Head_top=int(np.argmax(extra[HEAD_TOP_ROW])))
        if reg30.shape != (len(SMPL30), self.num_vertices) or reg_h36m.shape != (len(H36M17), self.num_vertices):
            raise UserError(f'{self.model_path}: joint regressors have shapes {list(reg30.shape)} and '
                            f'{list(reg_h36m.shape)}, expected [30,{self.num_vertices}] and [17,{self.num_vertices}]')
        self.landmark_vertex_ids = marks

        struct = types.SimpleNamespace(
            v_template=_flush_denormals(v), shapedirs=_flush_denormals(arrays['shapedirs'][:, :, :NUM_BETAS]),
            posedirs=_flush_denormals(arrays['posedirs']), J_regressor=_flush_denormals(arrays['J_regressor']),
            weights=_flush_denormals(arrays['weights']), kintree_table=np.asarray(arrays['kintree_table']),
            f=np.asarray(arrays['f'], dtype=np.int64))
        vertex_ids = {'nose': marks['Nose'], 'leye': marks['L_Eye'], 'reye': marks['R_Eye'],
                      'lear': marks['L_Ear'], 'rear': marks['R_Ear']}
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning about 10 betas
            self.smpl = smplx.SMPL(model_path=str(self.model_path), data_struct=struct, gender=self.gender,
                                   vertex_ids=vertex_ids, use_feet_keypoints=False, use_hands=False,
                                   create_global_orient=False, create_body_pose=False, create_betas=False,
                                   create_transl=False, num_betas=NUM_BETAS, batch_size=1)
        self.faces = np.asarray(arrays['f'], dtype=np.int64)
        self.part_ids = np.asarray(arrays['weights']).argmax(1).astype(np.int64)
        self.register_buffer('joint_regressor', torch.from_numpy(_flush_denormals(reg30)), persistent=False)
        self.register_buffer('h36m_regressor', torch.from_numpy(_flush_denormals(reg_h36m)), persistent=False)
        self.register_buffer('faces_tensor', torch.from_numpy(self.faces), persistent=False)
        for m in self.smpl.modules():  # the body model is data, not state: keep it out of checkpoints
            m._non_persistent_buffers_set.update(m._buffers.keys())

    def forward(self, pose, shape, trans=None):
        """pose [B,72] axis-angle (root first), shape [B,10] (or [1,10]), trans [B,3] or None ->
        vertices [B,V,3], joints [B,30,3] (SMPL-30, = joint_regressor @ vertices), metres."""
        dtype = self.joint_regressor.dtype
        if pose.dim() == 3:
            pose = pose.reshape(pose.shape[0], -1)
        if pose.dim() != 2 or pose.shape[1] != 3 * NUM_SMPL_JOINTS:
            raise ValueError(f'pose must be [B,72] axis-angle, got {list(pose.shape)}')
        if shape.dim() != 2 or shape.shape[1] != NUM_BETAS:
            raise ValueError(f'shape must be [B,{NUM_BETAS}], got {list(shape.shape)}')
        pose, shape = pose.to(dtype), shape.to(dtype)
        if shape.shape[0] != pose.shape[0]:
            shape = shape.expand(pose.shape[0], -1)
        out = self.smpl(betas=shape, body_pose=pose[:, 3:], global_orient=pose[:, :3])
        vertices = out.vertices
        if trans is not None:
            vertices = vertices + trans.to(dtype)[:, None, :]
        joints = self.regress_joints(vertices)
        return vertices, joints

    def regress_joints(self, vertices):
        """SMPL-30 joints [B,30,3] of vertices [B,V,3]."""
        return torch.einsum('jv,bvc->bjc', self.joint_regressor.to(vertices.dtype), vertices)

    def regress_h36m(self, vertices):
        """H36M-17 joints [B,17,3] (the 3DPW/H36M evaluation joints) of vertices [B,V,3]."""
        return torch.einsum('jv,bvc->bjc', self.h36m_regressor.to(vertices.dtype), vertices)

    @property
    def template_vertices(self):
        """[V,3] T-pose, zero shape."""
        return self.smpl.v_template

    @property
    def lbs_weights(self):
        return self.smpl.lbs_weights

    def extra_repr(self):
        kind = 'procedural' if self.is_procedural else 'official'
        return f'{kind} SMPL, gender={self.gender}, vertices={self.num_vertices}, file={self.model_path}'


_loaded = {}   # (gender, model_dir, vertices) -> a BodyModel never handed out: the file read / generation done once


def get_body_model(gender='neutral', model_dir=None, procedural_vertices=3000, device=None):
    """A BodyModel of its own for each call (on `device`, default CPU): moving or changing it affects no other
    caller. Reading or generating the model happens once per (gender, model_dir, procedural_vertices); each call
    copies its tensors (a few MB), so a caller that needs one per sample keeps the one it got.
    """
    import copy
    gender = _gender(gender)
    official = find_official_model(model_dir, gender) is not None
    key = (gender, str(_model_dir(model_dir)), 0 if official else int(procedural_vertices))
    with _lock:
        if key not in _loaded:
            _loaded[key] = BodyModel(gender, model_dir, procedural_vertices)
        model = copy.deepcopy(_loaded[key])
    return model if device is None else model.to(device)


def body_model(model_cfg, gender='neutral'):
    """A BodyModel of the caller's own as a config asks for (model.smpl_dir: official files there, else the procedural
    stand-in with model.procedural_vertices vertices)."""
    return get_body_model(gender, model_cfg.smpl_dir or None, model_cfg.procedural_vertices)
