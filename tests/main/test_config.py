import datetime

import pytest
import yaml

from common.errors import UserError
from common.paths import ROOT
from main.config import load_config, make_exp_dir, parse_overrides


def test_defaults_and_yaml_files_load():
    for path in sorted((ROOT / 'assets' / 'yaml').glob('*.yml')):
        student = ['distill.teacher_ckpt=output/teacher'] if path.name == 'student.yml' else []
        cfg = load_config(path.relative_to(ROOT), student)
        assert cfg.mode in ('baseline', 'teacher', 'student')


def test_overrides_are_typed():
    cfg = load_config(None, ['train.lr=1e-3', 'train.lr_dec_epochs=[4,6]', 'train.amp=true',
                             'model.backbone=resnet18', 'model.input_size=128', 'model.focal=[100,200]'])
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.train.lr_dec_epochs == [4, 6]
    assert cfg.train.amp is True
    assert cfg.model.input_size == 128
    assert cfg.model.focal == (100.0, 200.0)


def test_unknown_key_names_closest(tmp_path):
    with pytest.raises(UserError, match=r"unknown config key 'train.lrr'.*did you mean 'train.lr'"):
        load_config(None, ['train.lrr=1'])
    bad = tmp_path / 'bad.yml'
    bad.write_text(yaml.safe_dump({'model': {'backbon': 'resnet18'}}))
    with pytest.raises(UserError, match=r"bad.yml.*did you mean 'model.backbone'"):
        load_config(bad)


@pytest.mark.parametrize('override, msg', [
    (['train.lr=abc'], 'expects float'),
    (['train.amp=3'], 'expects true/false'),
    (['model.input_size=100'], 'multiple of 32'),
    (['mode=teacher'], 'edge.type=smpl_overlap'),
    (['mode=student', 'edge.type=canny', 'distill.loss=log_softmax_l1'], 'teacher_ckpt'),
    (['edge.type=canny'], 'baseline takes no edge'),
    (['mode=studnt'], "did you mean 'student'"),
    (['trainlr'], 'key=value'),
    (['train.batch_size=0'], 'train.batch_size must be >= 1, got 0'),
    (['test.batch_size=-2'], 'test.batch_size must be >= 1'),
    (['data.num_workers=-1'], 'data.num_workers must be >= 0, got -1'),
    (['train.end_epoch=-1'], 'train.end_epoch must be >= 1'),
    (['train.lr=-1'], 'train.lr must be >= 0'),
])
def test_invalid_values_are_one_line_errors(override, msg):
    with pytest.raises(UserError, match=msg) as e:
        load_config(None, override)
    assert '\n' not in str(e.value)


def test_missing_file_is_user_error():
    with pytest.raises(UserError, match='not found'):
        load_config('assets/yaml/nope.yml')


@pytest.mark.parametrize('content, msg', [(b'', 'is empty'), (b'# only a comment\n', 'is empty'),
                                          (b'\x89PNG\r\n\x1a\n\xff\xfe\x00', 'not valid YAML'),
                                          (b'- a\n- b\n', 'holds a YAML list, not a mapping')])
def test_empty_binary_or_non_mapping_yaml_is_one_line(content, msg, tmp_path):
    path = tmp_path / 'exp.yml'
    path.write_bytes(content)
    with pytest.raises(UserError, match=msg) as e:
        load_config(path)
    assert '\n' not in str(e.value) and str(path) in str(e.value)


def test_exp_dir_unique_safe_and_holds_config(tmp_path):
    cfg = load_config(None, [f'output_dir={tmp_path}', 'exp_name=run', 'train.lr=0.5'])
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    a, b = make_exp_dir(cfg, now), make_exp_dir(cfg, now)
    assert a != b and a.name == 'run_20260102-030405' and b.name == 'run_20260102-030405_2'
    assert all(c.isalnum() or c in '_-' for c in a.name)
    saved = yaml.safe_load((a / 'config.yaml').read_text())
    assert saved['train']['lr'] == 0.5
    assert load_config(a / 'config.yaml').train.lr == 0.5  # the saved config loads back
    assert (a / 'checkpoint').is_dir()


def test_import_creates_nothing(tmp_path):
    import subprocess, sys
    before = set((ROOT / 'output').iterdir()) if (ROOT / 'output').exists() else set()
    subprocess.run([sys.executable, '-c', 'import main.config'], cwd=ROOT, check=True)
    after = set((ROOT / 'output').iterdir()) if (ROOT / 'output').exists() else set()
    assert before == after


def test_parse_overrides_values():
    assert parse_overrides(['a.b=1e-4', 'c=[x,y]', 'd=']) == {'a.b': 1e-4, 'c': ['x', 'y'], 'd': ''}


def test_configs_saved_before_a_key_existed_mean_the_published_behaviour(tmp_path):
    """A config.yaml / checkpoint config without the keys added later reads as it was trained (ADDED_KEYS); a new
    config has the defaults; a published experiment file means the published choices too."""
    import yaml
    from main.config import Config, fill_added_keys, load_saved_config, update_config
    from main.published_config import ADDED_KEYS
    old = Config().to_dict()
    del old['model']['pose_to_head'], old['model']['camera'], old['data']['input_pose'], old['train']['loss_weights']
    path = tmp_path / 'config.yaml'
    path.write_text(yaml.safe_dump(old))
    cfg = load_saved_config(path, ['train.lr=0.01'])
    assert (cfg.model.pose_to_head, cfg.model.camera, cfg.data.input_pose) == (False, 'published', 'published')
    assert cfg.train.loss_weights.smpl_root == 1.0 and cfg.train.loss_weights.cam_prior == 0.0
    assert cfg.train.loss_weights.smpl_pose == 1.0 and cfg.train.lr == 0.01
    new = update_config(Config(), fill_added_keys(Config().to_dict()))
    assert new.model.pose_to_head is True and new.train.loss_weights.smpl_root == 10.0
    assert set(ADDED_KEYS) >= {'model.pose_to_head', 'model.camera', 'data.input_pose'}
