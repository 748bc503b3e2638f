"""The experiment files of 3DCrowdNet and SEFD, given to --cfg: every published key maps to this config or is
rejected in one line naming the key and the file; each translation is logged once."""
import logging

import pytest

from common.errors import UserError
from main.config import Config, load_config

TEACHER = ['distill.teacher_ckpt=teacher.pth.tar']   # a distilled student needs one (validate)

# Every attribute of 3DCrowdNet's and SEFD's Config classes and every key of their shipped YAML files, with a
# value they use; None: the key is rejected whatever its value.
PUBLISHED = {
    # 3DCrowdNet main/config.py
    'trainset_3d': ['Human36M', 'MuCo'], 'trainset_2d': ['MSCOCO', 'MPII'], 'testset': 'PW3D', 'resnet_type': 50,
    'input_img_shape': [256, 256], 'output_hm_shape': [64, 64, 64], 'bbox_3d_size': 2, 'sigma': 2.5,
    'focal': [5000, 5000], 'princpt': [128.0, 128.0], 'lr_dec_epoch': [10], 'end_epoch': 11, 'lr': 0.001,
    'lr_backbone': 0.0001, 'lr_dec_factor': 10, 'train_batch_size': 64, 'use_gt_info': True, 'test_batch_size': 32,
    'crowd': True, 'vis': False, 'render': False, 'num_thread': 16, 'gpu_ids': '0', 'num_gpus': 1,
    'continue_train': False, 'cur_dir': None, 'root_dir': None, 'data_dir': 'data', 'output_dir': 'output',
    'save_folder': None, 'model_dir': None, 'vis_dir': None, 'log_dir': None, 'result_dir': None, 'mano_path': None,
    'smpl_path': None, 'human_model_path': 'common/utils/human_model_files', 'camera_3d_size': 2.5,
    # SEFD main/config.py
    'origin': True, 'demo': False, 'teacher_learing': True, 'canny_edge': True, 'HED_edge': True,
    'pidinet_edge': True, 'srf_edge': True, 'luperson': False, 'patch_size': 16, 'patch_n_sigma': 1,
    'compute_grid_shape': [1, 256, 256], 'Interpolate': 'nearest', 'grid_plus': False, 'EPS_plus': False,
    'EPS_gray': False, 'EPS_grid_plus': False, 'EPS_edge_plus': False, 'dilation': [[3, 3], [5, 5], [7, 7], [9, 9]],
    'first_input': True, 'SMPL_edge': True, 'SMPL_single': False, 'SMPL_Multi': False, 'SMPL_overlap': True,
    'smpl_edge_test': False, 'edge_module': True, 'edge_module_path': 'weights/checkpoint_epoch64.pth',
    'distillation_module': True, 'distillation_module_path': 'smpl_overlap.pth.tar', 'distillation_loss': 'L1',
    'dilstillation_edge': 'Canny', 'RCF_path': 'RCFcheckpoint_epoch12.pth', 'distillation_pretrained': True,
    'nothing': True, 'inference_testing': False, 'feature_vis': False,
    # only in SEFD's YAML files (not in its Config: its own cfg.update rejects them)
    'cliff': True, 'test_train': True, 'Backbone_model': 'resnet', 'human_parsing': True, 'smplify': True,
}


def write(tmp_path, text, name='exp.yml'):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize('key', sorted(PUBLISHED))
def test_every_published_key_maps_or_is_rejected_with_its_line(key, tmp_path):
    import yaml
    value = PUBLISHED[key]
    path = write(tmp_path, yaml.safe_dump({key: value if value is not None else 'x'}))
    try:
        cfg = load_config(path, TEACHER)
    except UserError as e:
        msg = str(e)
        assert '\n' not in msg and repr(key) in msg and str(path) in msg and 'published key' in msg, msg
        return
    assert value is not None, f'{key} should have been rejected'
    assert isinstance(cfg, Config)


@pytest.mark.parametrize('text, target', [
    ('resnet_type: 101', ('model.backbone', 'resnet101')),
    ('input_img_shape: [192, 192]\noutput_hm_shape: [48, 48, 48]', ('model.input_size', 192)),
    ('lr_dec_epoch: [4, 6]', ('train.lr_dec_epochs', [4, 6])),
    ('train_batch_size: 32', ('train.batch_size', 32)),
    ('num_thread: 8', ('data.num_workers', 8)),
    ('crowd: True', ('test.subset', 'crowd')),
    ('dilation: [[3,3],[7,7],[9,9],[11,11]]', ('edge.dilation', 7)),      # the kernel SEFD's Canny takes
    ('distillation_module_path: /x/smpl_overlap.pth.tar', ('distill.teacher_ckpt', '/x/smpl_overlap.pth.tar')),
    ("distillation_module_path: 'putting your path/SEFD/smpl_overlap.pth.tar'", ('distill.teacher_ckpt', '')),
    ('distillation_pretrained: False', ('distill.init_from_teacher', False)),
    ('srf_edge: True\nRCF_path: /w/rcf.pth', ('edge.weights', '/w/rcf.pth')),
    ("testset: 'OCHuman'", ('data.test_set', 'OCHuman')), ("testset: 'CrowdPose_test'", ('data.test_set', 'CrowdPose')),
    ("testset: 'LSP'", ('data.test_set', 'LSP')),
])
def test_values_land_where_they_mean_the_same(text, target, tmp_path):
    cfg = load_config(write(tmp_path, text))
    node = cfg
    for part in target[0].split('.'):
        node = getattr(node, part)
    assert node == target[1]


@pytest.mark.parametrize('text, why', [
    ('testset: AGORA', 'no loader'), ("trainset_2d: ['DOH50K']", 'no loader'), ('origin: False', 'test.subset=oc'),
    ('input_img_shape: [256, 192]', 'square'), ('output_hm_shape: [64, 64, 48]', 'input_size/4'),
    ("Backbone_model: 'hrnet'", 'ResNets'), ('use_gt_info: False', 'RootNet'), ('cliff: True', 'CLIFF'),
    ('distillation_loss: KL_loss', 'implements neither'), ('dilstillation_edge: edge_module_seg', 'one of'),
    ('teacher_learing: True\ndistillation_module: True', 'make a student'),
    ('SMPL_edge: True\nSMPL_overlap: False\ndistillation_module: False', 'overlap edge'),
])
def test_what_has_no_meaning_here_stops_with_one_line(text, why, tmp_path):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=why) as e:
        load_config(path, TEACHER)
    assert '\n' not in str(e.value) and str(path) in str(e.value)


# the shipped files, as published (3DCrowdNet assets/yaml/3dpw_crowd.yml; SEFD assets/yaml_trianing/*.yml)
CROWDNET_3DPW_CROWD = """trainset_3d: ['Human36M', 'MuCo']
trainset_2d: ['MSCOCO', 'CrowdPose']
testset: 'PW3D'

lr_dec_epoch: [4,6]
end_epoch: 7
lr: 0.0001
lr_backbone: 0.0001
lr_dec_factor: 10

crowd: True
"""
SEFD_HEAD = """trainset_3d: ['Human36M', 'MuCo']
trainset_2d: ['MSCOCO', 'MPII']
testset: 'PW3D'

lr_dec_epoch: [10]
end_epoch: 14
lr: 0.0001
lr_backbone: 0.0001
lr_dec_factor: 10
#render: True
"""
SEFD_TEACHER = SEFD_HEAD + """
SMPL_edge: True
SMPL_overlap: True
distillation_module: False
distillation_pretrained: False
distillation_loss: ""
dilstillation_edge: ""
distillation_pretrained: False
teacher_learing: True
nothing: False
demo: False

# test
inference_testing: False
"""
SEFD_DISTIL = SEFD_HEAD + """#crowd: True
origin: True
inference_testing: True

distillation_module: True
distillation_pretrained: True
distillation_loss: "{loss}"
dilstillation_edge: "{edge}"
distillation_pretrained: True
demo: False
"""
SEFD_NODISTIL = SEFD_HEAD.replace('[10]', '[4,6]').replace('14', '10') + """
SMPL_edge: False
SMPL_overlap: False
distillation_module: False
distillation_pretrained: False
distillation_loss: ""
dilstillation_edge: ""
distillation_pretrained: False
{flag}: True
nothing: True
demo: False

# test
inference_testing: False
"""


@pytest.mark.parametrize('text, mode, edge, loss, stages', [
    (CROWDNET_3DPW_CROWD, 'baseline', 'none', 'none', None),
    (SEFD_TEACHER, 'teacher', 'smpl_overlap', 'none', None),
    (SEFD_DISTIL.format(loss='log_softmax_l1', edge='Canny'), 'student', 'canny', 'log_softmax_l1', ([3, 4], [1, 2])),
    (SEFD_DISTIL.format(loss='KD_loss', edge='Canny'), 'student', 'canny', 'kd', ([1, 2, 3, 4], [1, 1, 1, 1])),
    (SEFD_DISTIL.format(loss='ATLoss', edge='Hed'), 'student', 'hed', 'at', ([1, 2, 3, 4], [1, 1, 1, 1])),
    (SEFD_DISTIL.format(loss='fsp_loss', edge='RCF'), 'student', 'rcf', 'fsp', ([1, 2, 3, 4], [1, 1, 1, 1])),
    (SEFD_DISTIL.format(loss='GC_loss', edge='PiDiNet'), 'student', 'pidinet', 'gc', ([1, 2, 3, 4], [1, 1, 1, 1])),
    (SEFD_DISTIL.format(loss='L1', edge='edge_module'), 'student', 'see', 'l1', ([1, 2, 3, 4], [1, 1, 1, 1])),
    (SEFD_NODISTIL.format(flag='canny_edge'), 'student', 'canny', 'none', None),
    (SEFD_NODISTIL.format(flag='HED_edge'), 'student', 'hed', 'none', None),
    (SEFD_NODISTIL.format(flag='srf_edge'), 'student', 'rcf', 'none', None),
    (SEFD_NODISTIL.format(flag='pidinet_edge'), 'student', 'pidinet', 'none', None),
    (SEFD_NODISTIL.format(flag='edge_module'), 'student', 'see', 'none', None),
])
def test_shipped_files_give_their_variant(text, mode, edge, loss, stages, tmp_path):
    cfg = load_config(write(tmp_path, text), TEACHER)
    assert (cfg.mode, cfg.edge.type, cfg.distill.loss) == (mode, edge, loss)
    if stages:
        assert (cfg.distill.stages, cfg.distill.weights) == stages
    assert cfg.data.test_set == 'PW3D' and cfg.train.lr_dec_factor == 10
    if mode == 'baseline':
        assert (cfg.data.train_sets_2d, cfg.train.lr_dec_epochs, cfg.train.end_epoch, cfg.test.subset) == (
            ['MSCOCO', 'CrowdPose'], [4, 6], 7, 'crowd')
    if loss != 'none':
        assert cfg.distill.init_from_teacher                     # distillation_pretrained: the student starts there


def test_each_translation_is_logged_once_and_our_files_pass_unchanged(tmp_path, caplog):
    path = write(tmp_path, SEFD_TEACHER, 'teacher_once.yml')
    with caplog.at_level(logging.INFO, logger='sefd'):
        load_config(path)
        load_config(path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('teacher_once.yml')]
    assert len(lines) == len(set(lines)) and any('mode=teacher' in s for s in lines)
    assert any('lr_backbone' in s and 'set_lr' in s for s in lines)   # the behaviour that differs is named
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='sefd'):
        cfg = load_config('assets/yaml/tiny_cpu.yml')
    assert cfg.model.backbone == 'resnet18' and not caplog.records
    # published and our keys in one file; a key of neither is the config's own one-line error
    cfg = load_config(write(tmp_path, 'lr: 0.002\nmodel:\n  backbone: resnet34\n'))
    assert (cfg.train.lr, cfg.model.backbone) == (0.002, 'resnet34')
    with pytest.raises(UserError, match='unknown config key'):
        load_config(write(tmp_path, 'lr: 0.002\nlr_decay: 3\n'))


def test_vposer_where_the_releases_keep_it(tmp_path):
    """Both releases read human_model_files/smpl/VPOSER_CKPT (a human_body_prior v1 folder): used when there."""
    cfg = load_config(write(tmp_path, f'human_model_path: {tmp_path}\nlr: 0.001\n'))
    assert cfg.model.pose_head == 'rot6d'                      # not there: the pose head stays as configured
    (tmp_path / 'smpl' / 'VPOSER_CKPT' / 'snapshots').mkdir(parents=True)
    cfg = load_config(write(tmp_path, f'human_model_path: {tmp_path}\nlr: 0.001\n'))
    assert (cfg.model.pose_head, cfg.model.vposer_ckpt) == ('vposer', str(tmp_path / 'smpl' / 'VPOSER_CKPT'))
    assert cfg.model.smpl_dir == str(tmp_path)
