"""Reading official-style SMPL pkls without chumpy, and tool/convert/convert_smpl.py."""
import importlib.util
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from common.body import procedural_body
from common.body import smpl
from common.body.smpl import BodyModel, load_model_arrays, read_smpl_pickle
from common.errors import UserError
from common.paths import ROOT
from tests import fixtures

TOOL = ROOT / 'tool' / 'convert' / 'convert_smpl.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('convert_smpl_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """Arrays of a body with at least the official vertex count (the official face vertex ids exist),
    through the generator's disk cache so that the test modules share it."""
    arrays, _ = smpl._procedural_arrays(tmp_path_factory.getbasetemp() / 'shared_models', 'neutral', 6500)
    return arrays


@pytest.fixture(scope='module')
def small():
    return procedural_body.generate(800)


def write_official_pkl(path, a, **override):
    """A pkl shaped like the official release: chumpy Ch objects, a sparse J_regressor, latin1-era
    extras. A fake `chumpy` exists only while writing, so reading proves chumpy is never imported."""
    fake = {name: types.ModuleType(name) for name in ('chumpy', 'chumpy.ch')}

    class Ch:  # what chumpy pickles: its state dict holds the array under 'x'
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}

        def __getstate__(self):
            return dict(self.__dict__)

        def __setstate__(self, d):
            self.__dict__.update(d)
    Ch.__module__, Ch.__qualname__ = 'chumpy.ch', 'Ch'
    fake['chumpy.ch'].Ch = Ch
    data = {
        'v_template': Ch(a['v_template']), 'shapedirs': Ch(a['shapedirs']), 'posedirs': Ch(a['posedirs']),
        'weights': Ch(a['weights']), 'J_regressor': sp.csc_matrix(a['J_regressor'].astype(np.float64)),
        'J_regressor_prior': sp.csr_matrix(a['J_regressor'].astype(np.float64)),
        'kintree_table': a['kintree_table'], 'f': a['f'].astype(np.uint32), 'J': a['J'].astype(np.float64),
        'weights_prior': np.asarray(a['weights'], np.float64), 'vert_sym_idxs': np.arange(len(a['v_template'])),
        'bs_type': 'lrotmin', 'bs_style': 'lbs', 'pose_training_info': {'n_subjects': 1},
    }
    data.update(override)
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        with open(path, 'wb') as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m


def test_reads_official_pickle_without_chumpy(tmp_path, source):
    pkl = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
    write_official_pkl(pkl, source)
    assert 'chumpy' not in sys.modules and 'chumpy.ch' not in sys.modules
    arrays = read_smpl_pickle(pkl)
    assert 'chumpy' not in sys.modules
    for k in ('v_template', 'shapedirs', 'posedirs', 'weights', 'J_regressor', 'kintree_table', 'f'):
        assert isinstance(arrays[k], np.ndarray), k
        assert np.array_equal(arrays[k], source[k]), k
    assert arrays['J_regressor'].shape == (24, len(source['v_template']))   # dense, from csc
    # files written by Python 2 name numpy.core and scipy.sparse.csc (GLOBAL opcodes are plain text)
    old = pkl.read_bytes().replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
    old = old.replace(b'scipy.sparse._csc\n', b'scipy.sparse.csc\n')
    assert b'numpy.core.multiarray\n' in old and b'scipy.sparse.csc\n' in old
    pkl.write_bytes(old)
    assert np.array_equal(read_smpl_pickle(pkl)['J_regressor'], arrays['J_regressor'])


def test_convert_then_load_gives_the_same_body(tmp_path, source):
    pkl = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
    write_official_pkl(pkl, source)
    model_dir = tmp_path / 'models'
    npz = model_dir / 'smpl' / 'SMPL_NEUTRAL.npz'
    assert load_tool().main(['--in', str(pkl), '--out', str(npz)]) == 0
    with np.load(npz) as z:
        assert set(z.files) == {'v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights',
                                'kintree_table', 'f', 'J'}
        assert z['J_regressor'].dtype == np.float64 and z['J_regressor'].shape[0] == 24
    fixtures.write_smpl_regressors(model_dir, source)
    converted = BodyModel('neutral', model_dir)
    assert not converted.is_procedural and converted.model_path == npz
    # the same arrays loaded as the procedural model
    ref_dir = tmp_path / 'ref'
    from common.body.smpl import save_npz
    save_npz(ref_dir / 'smpl' / 'SMPL_NEUTRAL.npz', source)
    reference = BodyModel('neutral', ref_dir)
    assert reference.is_procedural
    g = torch.Generator().manual_seed(3)
    pose, shape = 0.4 * torch.randn(2, 72, generator=g), torch.randn(2, 10, generator=g)
    v1, _ = converted(pose, shape)
    v2, _ = reference(pose, shape)
    assert torch.allclose(v1, v2, atol=1e-6)
    # the pkl itself loads the same
    (model_dir / 'smpl' / 'SMPL_NEUTRAL.npz').unlink()
    pkl.rename(model_dir / 'smpl' / pkl.name)
    v3, _ = BodyModel('neutral', model_dir)(pose, shape)
    assert torch.allclose(v3, v2, atol=1e-6)


def test_convert_a_folder(tmp_path, small):
    source = small
    src = tmp_path / 'SMPL_python_v.1.0.0' / 'smpl' / 'models'
    src.mkdir(parents=True)
    write_official_pkl(src / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl', source)
    write_official_pkl(src / 'basicmodel_m_lbs_10_207_0_v1.0.0.pkl', source)
    write_official_pkl(src / 'basicModel_f_lbs_10_207_0_v1.0.0.pkl', source)
    dst = tmp_path / 'out'
    assert load_tool().main([str(tmp_path / 'SMPL_python_v.1.0.0'), str(dst)]) == 0
    assert sorted(p.name for p in dst.iterdir()) == ['SMPL_FEMALE.npz', 'SMPL_MALE.npz', 'SMPL_NEUTRAL.npz']


def test_gender_from_file_names():
    g = load_tool().gender_of
    assert g('basicModel_neutral_lbs_10_207_0_v1.0.0.pkl') == 'neutral'
    assert g('basicmodel_m_lbs_10_207_0_v1.1.0.pkl') == 'male'
    assert g('basicModel_f_lbs_10_207_0_v1.0.0.pkl') == 'female'
    assert g('SMPL_FEMALE.pkl') == 'female' and g('SMPL_MALE.pkl') == 'male'
    assert g('model.pkl') is None


def test_help_runs_from_root_and_from_tool():
    for cwd in (ROOT, ROOT / 'tool'):
        r = subprocess.run([sys.executable, str(TOOL.relative_to(cwd)), '--help'], cwd=cwd,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and '--in' in r.stdout and 'chumpy' in r.stdout


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'weights_shape', 'missing_key', 'not_a_dict'])
def test_bad_pickles_are_user_errors(tmp_path, small, damage, capsys):
    pkl = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
    source = small
    if damage == 'weights_shape':
        write_official_pkl(pkl, small, weights=np.zeros((len(source['v_template']), 23)))
    elif damage == 'missing_key':
        write_official_pkl(pkl, small)
        data = read_smpl_pickle(pkl)
        del data['posedirs']
        pkl.write_bytes(pickle.dumps(data, protocol=2))
    elif damage == 'not_a_dict':
        pkl.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    else:
        write_official_pkl(pkl, small)
        raw = pkl.read_bytes()
        pkl.write_bytes(raw[:len(raw) // 3] if damage == 'truncated' else b'\x80\x02garbage' + raw[:50])
    with pytest.raises(UserError) as e:
        load_model_arrays(pkl) if damage != 'weights_shape' else BodyModel('neutral', _folder_with(pkl))
    msg = str(e.value)
    assert str(pkl.name) in msg and '\n' not in msg
    if damage == 'weights_shape':
        assert 'weights' in msg and '[' in msg
    if damage == 'missing_key':
        assert 'posedirs' in msg
    # the tool reports the same error as one line and a non-zero exit status
    assert load_tool().main(['--in', str(pkl), '--out', str(tmp_path / 'x.npz')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and pkl.name in err and '\n' not in err
    assert not (tmp_path / 'x.npz').exists()


def _folder_with(pkl):
    root = pkl.parent / 'models'
    (root / 'smpl').mkdir(parents=True, exist_ok=True)
    target = root / 'smpl' / pkl.name
    target.write_bytes(pkl.read_bytes())
    return root


def test_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / 'marker'
    marker.write_text('still here')

    class Evil:
        def __reduce__(self):
            import os
            return (os.remove, (str(marker),))
    pkl = tmp_path / 'evil.pkl'
    pkl.write_bytes(pickle.dumps({'v_template': Evil()}, protocol=2))
    with pytest.raises(UserError, match='evil.pkl'):
        read_smpl_pickle(pkl)
    assert marker.exists()
