"""Convert official SMPL .pkl files to .npz, without chumpy.

    python tool/convert/convert_smpl.py SRC [DST_DIR]        # a folder (searched recursively) or one pkl
    python tool/convert/convert_smpl.py --in X.pkl --out Y.npz

A folder of the official files (basicModel_neutral_lbs_10_207_0_v1.0.0.pkl, basicmodel_m_..., _f_...,
SMPL_NEUTRAL.pkl, ...) becomes SMPL_{NEUTRAL,MALE,FEMALE}.npz in DST_DIR (default:
common/utils/human_model_files/smpl, where the body model looks). The npz has the official keys with
J_regressor dense; the pkl is read with an unpickler that never imports chumpy.
"""
import argparse
import sys
from pathlib import Path

from common.errors import UserError, run_cli
from common.paths import ROOT

# where common.body.smpl looks for official files (not imported here: --help should not load torch)
DEFAULT_DST = ROOT / 'common' / 'utils' / 'human_model_files' / 'smpl'


def gender_of(name):
    """'neutral'/'male'/'female' from an official or smplx-style SMPL file name, else None."""
    n = name.lower()
    for gender, marks in (('neutral', ('neutral',)), ('female', ('female', '_f_', '_f.')),
                          ('male', ('male', '_m_', '_m.'))):
        if any(m in n for m in marks):
            return gender
    return None


def convert_folder(src, dst_dir):
    """Convert every SMPL pkl found under src; returns {gender: npz path}."""
    from common.body.smpl import convert_smpl_file
    src, dst_dir = Path(src), Path(dst_dir)
    found = {}
    for p in sorted(src.rglob('*.pkl')):
        g = gender_of(p.name)
        if g and g not in found:
            found[g] = p
    if not found:
        raise UserError(f'{src}: no SMPL .pkl file found (expected names like '
                        f'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl or SMPL_NEUTRAL.pkl)')
    out = {}
    for g, p in sorted(found.items()):
        out[g] = convert_smpl_file(p, dst_dir / f'SMPL_{g.upper()}.npz')
        print(f'{p} -> {out[g]}')
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n\n', 1)[1])
    ap.add_argument('src', nargs='?', help='folder with the official SMPL pkls, or one pkl file')
    ap.add_argument('dst', nargs='?', help=f'output folder (default: {DEFAULT_DST})')
    ap.add_argument('--in', dest='inp', help='one SMPL .pkl to convert')
    ap.add_argument('--out', help='the .npz to write (with --in)')
    args = ap.parse_args(argv)
    try:
        from common.body.smpl import convert_smpl_file
        if args.inp:
            if args.src or args.dst:
                ap.error('use either --in/--out or SRC [DST_DIR], not both')
            inp = Path(args.inp)
            out = Path(args.out) if args.out else inp.with_suffix('.npz')
            convert_smpl_file(inp, out)
            print(f'{inp} -> {out}')
        elif args.src:
            src = Path(args.src)
            dst = Path(args.dst) if args.dst else DEFAULT_DST
            if src.is_dir():
                convert_folder(src, dst)
            elif src.is_file():
                g = gender_of(src.name)
                if g is None:
                    raise UserError(f'{src}: cannot tell the gender from the name; use --in {src} --out X.npz')
                out = convert_smpl_file(src, dst / f'SMPL_{g.upper()}.npz')
                print(f'{src} -> {out}')
            else:
                raise UserError(f'{src}: no such file or folder')
        else:
            ap.print_help()
            return 2
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
