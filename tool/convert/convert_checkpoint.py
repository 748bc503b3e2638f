"""Convert a published 3DCrowdNet / SEFD snapshot into a checkpoint of this project, once.

    python tool/convert/convert_checkpoint.py output/exp_04-06_23:43/checkpoint/snapshot_10.pth.tar \\
        3dcrowdnet_e10.pth.tar
    python tool/convert/convert_checkpoint.py demo/snapshot_10.pth.tar sefd_canny.pth.tar        # a SEFD student
    python tool/convert/convert_checkpoint.py smpl_overlap.pth.tar canny_nodistil.pth.tar \\
        --cfg assets/yaml_test/3dpw_canny_nodistil_test.yml           # 4 channels, no teacher: say which model

IN is a snapshot file or a published experiment folder (its newest snapshot, or --epoch). Every entry point
also converts on load, so this is only needed to keep a converted file. What maps where, and how the config is
inferred from the weights, is the table in main/published_checkpoint.py; --cfg (a YAML file, published or
ours) and key=value overrides settle what the weights cannot tell. OUT is written atomically; a converted SEFD
student keeps its teacher inside, so its distill.teacher_ckpt points at OUT, and the edge network it holds (HED,
RCF, PiDiNet, SEE) goes to OUT's folder as <OUT name>_<type>_edge.pth, its edge.weights.
"""
import argparse
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_torch_save


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src', metavar='IN', help='published snapshot_<epoch>.pth.tar, or its experiment folder')
    ap.add_argument('dst', metavar='OUT', help='the converted checkpoint (.pth.tar)')
    ap.add_argument('--epoch', type=int, default=None, help='snapshot epoch when IN is a folder (default: newest)')
    ap.add_argument('--cfg', default='', help='YAML file (published or ours) applied on the inferred config')
    ap.add_argument('overrides', nargs='*', help='config overrides key=value, e.g. mode=student edge.type=canny')
    return ap.parse_args(argv)


def main(argv=None):
    from common.paths import resolve_path
    from main.checkpoint import config_of, load_checkpoint, load_model_state
    from main.model import Model
    args = parse_args(argv)
    src, dst = resolve_path(args.src), Path(args.dst).resolve()
    ckpt, path = load_checkpoint(src, args.epoch, what='published snapshot')
    if 'published' not in ckpt:
        raise UserError(f'{path} is already a checkpoint of this project; nothing to convert')
    if 'teacher' in ckpt and ckpt['config']['distill']['teacher_ckpt'] == str(path):
        ckpt['config']['distill']['teacher_ckpt'] = str(dst)   # the teacher travels inside OUT
    if dst == Path(path).resolve():
        raise UserError(f'OUT {dst} is IN; write the converted checkpoint to another file')
    edge_net = ckpt.get('edge_net')
    if edge_net:   # the student's edge network, as its own weights file for edge.weights
        side = dst.with_name(f'{dst.name.split(".")[0]}_{edge_net["type"]}_edge.pth')
        atomic_torch_save({'state_dict': edge_net['state_dict']}, side)
        ckpt['config']['edge']['weights'] = str(side)
    cfg = config_of(ckpt, path, args.overrides, args.cfg or None)
    load_model_state(Model(cfg), ckpt['model'], path)   # a config that does not fit the weights stops here
    ckpt['config'] = cfg.to_dict()
    atomic_torch_save(ckpt, dst)
    print(f'{path} ({ckpt["published"]["kind"]}, epoch {ckpt["epoch"]}) -> {dst}: mode={cfg.mode} '
          f'edge.type={cfg.edge.type} distill.loss={cfg.distill.loss} model.backbone={cfg.model.backbone} '
          f'model.input_size={cfg.model.input_size} model.pose_head={cfg.model.pose_head}')
    return dst


if __name__ == '__main__':
    run_cli(main)
