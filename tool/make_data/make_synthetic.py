"""Generate the synthetic crowd dataset (the project's embedded default) in the 3DPW layout.

    python tool/make_data/make_synthetic.py                                   # data/Synthetic, 200 images
    python tool/make_data/make_synthetic.py --out output/synthetic_check --num-images 20 --seed 1
    python tool/make_data/make_synthetic.py --num-images 2000 --max-people 5 --overlap 0.8 --workers 8
    python tool/make_data/make_synthetic.py --check data/Synthetic            # re-read and verify a dataset
    python tool/make_data/make_synthetic.py --truncation 0.35 --focal 0.6,2.0 --distance 1,10 --elevation -20,40 \\
        --sit-bend 0.3
                                                                    # what photographs show (the quickstart's set)

Scenes of 1-5 posed, clothed people from the body model (official SMPL or the procedural stand-in)
standing on a common floor, overlapping each other, in front of photographs or procedural rooms, with
object occluders, rendered with common/render/renderer.py. Output (read by data/PW3D and data/Synthetic):

    <out>/data/3DPW_latest_{train,validation,test}.json    COCO-style, 3DPW fields + extras
    <out>/imageFiles/synth_<split>_<k>/image_<i>.jpg
    <out>/contact_sheet.jpg                                images | 2D detections + SMPL overlap edges

An existing set in the output folder is replaced only once the new one is complete (it is built in .<name>.building
beside the folder and then moved in): an interrupt or a failure leaves the old set as it was. Annotation files this
tool did not write are never replaced.

The same seed gives byte-identical annotation files (and, on the same machine, identical images),
whatever --workers is. See data/Synthetic/README.md for every field.
"""
import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from common.errors import UserError, check_number, run_cli
from common.paths import ROOT

SPLITS = ('train', 'validation', 'test')
DEFAULT_CONTACT = 12


RANGES = ('--focal', '--distance', '--elevation')


def parse_args(argv=None):
    # '--elevation -20,40' is one option with its value (argparse alone would take '-20,40' for an option)
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 2, -1, -1):
        if argv[i] in RANGES:
            argv[i:i + 2] = [f'{argv[i]}={argv[i + 1]}']
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default='data/Synthetic', help='output folder (relative paths: from the repo root)')
    p.add_argument('--num-images', type=int, default=200)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--width', type=int, default=480)
    p.add_argument('--height', type=int, default=640, help='default 480x640: 3DPW-like portrait, scaled down')
    p.add_argument('--min-people', type=int, default=1)
    p.add_argument('--max-people', type=int, default=5)
    p.add_argument('--overlap', type=float, default=0.6,
                   help='probability that a person is placed in front of/behind someone already placed')
    p.add_argument('--occluders', type=float, default=0.4, help='probability that an image has object occluders')
    p.add_argument('--detector-noise', type=float, default=1.0,
                   help='scale of the simulated 2D detector errors (0: exact visible joints)')
    p.add_argument('--pose-noise', type=float, default=1.0, help='scale of the random pose perturbation')
    # what photographs show; the defaults make the published-like set (whole, upright people seen from a few metres)
    p.add_argument('--truncation', type=float, default=0.0,
                   help='probability that a person is cut by the image frame, head in view: the person the camera '
                        'frames in a close or medium shot (legs below the bottom edge), the others across an edge')
    p.add_argument('--focal', default='0.867,1.224', metavar='LO,HI',
                   help='focal length range, x the image\'s long side (3DPW: 1.02; a phone\'s main camera ~0.8, a '
                        'portrait lens 2)')
    p.add_argument('--distance', default=None, metavar='LO,HI',
                   help='depth range in metres of the person the camera frames and of everyone (close-ups to '
                        'wide shots); unset: the framed person fills 30-70%% of the image height')
    p.add_argument('--elevation', default=None, metavar='LO,HI',
                   help='range in degrees of the camera\'s elevation over the person it frames (positive: seen '
                        'from above, negative: from below); unset: the camera 0.9-2.1 m above the floor')
    p.add_argument('--sit-bend', type=float, default=None,
                   help='probability of a sitting, kneeling, crouching or bending pose; unset: any pose of the '
                        'everyday library (6 of its 24 sit, kneel, crouch or bend)')
    p.add_argument('--split', default='80,10,10',
                   help="train,validation,test proportions, or one split name (all images go there)")
    p.add_argument('--seq-len', type=int, default=10, help='images per sequence (imageFiles/<sequence>/)')
    p.add_argument('--workers', type=int, default=None,
                   help='worker processes (default: up to 4 by CPU count, 0 for small runs); 0 = this process')
    p.add_argument('--contact-sheet', default=None, help='contact sheet path (default <out>/contact_sheet.jpg; '
                                                         '"none" for no sheet)')
    p.add_argument('--contact-count', type=int, default=DEFAULT_CONTACT, help='images on the contact sheet')
    p.add_argument('--model-dir', default=None, help='body model folder (default common/utils/human_model_files)')
    p.add_argument('--check', metavar='DIR', default=None,
                   help='do not generate: re-read the dataset in DIR and report every bad record')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def _abs(path):
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def split_counts(n, spec):
    if spec in SPLITS:
        return {s: (n if s == spec else 0) for s in SPLITS}
    try:
        w = [float(x) for x in spec.split(',')]
        if len(w) != 3 or min(w) < 0 or sum(w) <= 0:
            raise ValueError
    except ValueError:
        raise UserError(f"--split must be 'train', 'validation', 'test' or three proportions like 80,10,10, "
                        f"not {spec!r}") from None
    counts = {s: 0 for s in SPLITS}
    if n >= 3:
        for s, wi in zip(SPLITS[1:], w[1:]):
            counts[s] = max(1, int(round(n * wi / sum(w)))) if wi > 0 else 0
        counts['train'] = n - counts['validation'] - counts['test']
        if counts['train'] < 1 and w[0] > 0:
            counts['train'] = 1
            big = max(SPLITS[1:], key=counts.get)
            counts[big] -= 1
    else:
        order = [s for s, wi in zip(SPLITS, w) if wi > 0]
        for i in range(n):
            counts[order[i % len(order)]] += 1
    return counts


def validate(args):
    for name, low, high in (('num_images', 1, None), ('seed', 0, 2 ** 32 - 1), ('detector_noise', 0.0, None),
                            ('pose_noise', 0.0, None), ('seq_len', 1, None), ('contact_count', 0, None),
                            ('workers', 0, 256)):
        if getattr(args, name) is not None:
            check_number(f'--{name.replace("_", "-")}', getattr(args, name), low, high)
    if not 1 <= args.min_people <= args.max_people <= 5:
        raise UserError(f'need 1 <= --min-people <= --max-people <= 5, got {args.min_people}, {args.max_people}')
    if not (32 <= args.width <= 4096 and 32 <= args.height <= 4096):
        raise UserError(f'--width/--height must be in 32..4096, got {args.width}x{args.height}')
    for name in ('overlap', 'occluders', 'truncation', 'sit_bend'):
        v = getattr(args, name)
        if v is not None and not 0 <= v <= 1:
            raise UserError(f'--{name.replace("_", "-")} is a probability in [0, 1], got {v}')
    for flag, lo, hi in (('--focal', 0.1, 10.0), ('--distance', 0.5, 100.0), ('--elevation', -80.0, 80.0)):
        name = flag[2:]
        setattr(args, name, _range(flag, getattr(args, name), lo, hi))


def _range(flag, text, lo, hi):
    """'LO,HI' -> (LO, HI) within [lo, hi]; None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        a, b = (float(v) for v in str(text).split(','))
        if not (lo <= a <= b <= hi):
            raise ValueError
    except ValueError:
        raise UserError(f'{flag} takes LO,HI with {lo:g} <= LO <= HI <= {hi:g}, not {text!r}') from None
    return a, b


def options_of(args):
    from tool.make_data.synthetic.generate import Options
    return Options(args.width, args.height, args.min_people, args.max_people, args.overlap, args.occluders,
                   args.detector_noise, args.pose_noise, args.model_dir, truncation=args.truncation, focal=args.focal,
                   distance=args.distance, elevation=args.elevation, sit_bend=args.sit_bend)


def plan_jobs(args, out, options):
    from tool.make_data.synthetic.generate import Job
    counts = split_counts(args.num_images, args.split)
    n = args.num_images
    k = max(0, min(args.contact_count, n))
    tiles = set(int(round(i * (n - 1) / max(k - 1, 1))) for i in range(k)) if k else set()
    jobs, g = [], 0
    for split in SPLITS:
        for i in range(counts[split]):
            seq = f'synth_{split}_{i // args.seq_len:02d}'
            name = f'image_{i % args.seq_len:05d}.jpg'
            jobs.append(Job(g, split, seq, name, str(out / 'imageFiles' / seq / name), args.seed, options,
                            tile_height=200 if g in tiles else 0))
            g += 1
    return jobs, counts


def _init_worker():
    import logging

    import torch
    torch.set_num_threads(1)
    logging.getLogger('common.body.smpl').setLevel(logging.ERROR)


def run_jobs(jobs, workers, progress):
    from tqdm import tqdm

    from tool.make_data.synthetic.generate import make_image
    bar = tqdm(total=len(jobs), unit='img', disable=not progress, desc='synthetic')
    results = []
    if workers <= 0:
        _init_worker_local()
        for job in jobs:
            results.append(make_image(job))
            bar.update()
    else:
        import multiprocessing as mp

        # the renderer cannot be used in a process forked from one that rendered: fresh workers render
        method = 'forkserver' if 'forkserver' in mp.get_all_start_methods() else 'spawn'
        with mp.get_context(method).Pool(workers, initializer=_init_worker) as pool:
            for res in pool.imap(make_image, jobs, chunksize=1):
                results.append(res)
                bar.update()
    bar.close()
    return results


def _init_worker_local():
    import logging
    logging.getLogger('common.body.smpl').setLevel(logging.ERROR)


def assemble(results, jobs):
    """{split: (images, annotations)} with annotation ids unique across splits, in image order."""
    by_split = {s: ([], []) for s in SPLITS}
    next_id = 0
    for job, r in zip(jobs, results):
        if r.image is None:
            continue
        imgs, anns = by_split[job.split]
        imgs.append(r.image)
        for a in r.annotations:
            x, y, w, h = a['bbox']
            rec = {'id': next_id, 'image_id': a['image_id'], 'category_id': 1, 'iscrowd': 0,
                   'area': round(w * h, 2)}
            rec.update({k: v for k, v in a.items() if k != 'image_id'})
            anns.append(rec)
            next_id += 1
    return by_split


def dataset_json(images, anns, args, split):
    info = {'description': 'synthetic crowd scenes in the 3DPW layout (tool/make_data/make_synthetic.py)',
            'split': split, 'seed': args.seed, 'width': args.width, 'height': args.height,
            'min_people': args.min_people, 'max_people': args.max_people, 'overlap': args.overlap,
            'occluders': args.occluders, 'detector_noise': args.detector_noise, 'pose_noise': args.pose_noise,
            'truncation': args.truncation, 'focal': args.focal, 'distance': args.distance,
            'elevation': args.elevation, 'sit_bend': args.sit_bend}
    db = {'info': info, 'images': images, 'annotations': anns, 'categories': [{'id': 1, 'name': 'person'}]}
    return json.dumps(db, separators=(',', ':'), allow_nan=False)


def contact_sheet(results, path, args, cols=3):
    import cv2
    import numpy as np

    from tool.make_data.synthetic.generate import write_file
    tiles = [r.tile for r in results if r.tile is not None]
    if not tiles:
        return False
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    cols = min(cols, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    gap = 6
    head = 26
    sheet = np.full((head + rows * (th + gap), cols * (tw + gap) - gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = head + r * (th + gap), c * (tw + gap)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
    text = f'synthetic, seed {args.seed}: image | 2D detections, boxes, SMPL overlap edges in red'
    cv2.putText(sheet, text, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode('.jpg', sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    write_file(path, buf.tobytes())
    return True


def summarize(results, jobs, counts, out, elapsed, sheet, procedural, workers):
    import numpy as np
    ok = [r for r in results if r.image is not None]
    failed = [(j, r) for j, r in zip(jobs, results) if r.image is None]
    retried = sum(1 for r in results if r.attempts > 1)
    occ = np.array([o for r in ok for o in r.stats['occlusion']]) if ok else np.zeros(0)
    oocc = np.array([o for r in ok for o in r.stats['object_occlusion']]) if ok else np.zeros(0)
    status = np.sum([r.stats['status'] for r in ok], 0) if ok else np.zeros(5)
    people = int(sum(r.stats['people'] for r in ok))
    written = {s: sum(1 for j, r in zip(jobs, results) if j.split == s and r.image is not None) for s in SPLITS}
    bgs = {}
    for r in ok:
        bgs[r.stats['background']] = bgs.get(r.stats['background'], 0) + 1
    lines = [f'wrote {len(ok)}/{len(jobs)} images ({", ".join(f"{s} {written[s]}" for s in SPLITS)}) '
             f'to {out} in {elapsed:.1f} s with {workers or "no"} worker process{"es" if workers != 1 else ""}']
    if ok:
        n_joint = max(status.sum(), 1)
        lines += [
            f'people: {people} ({people / len(ok):.2f} per image); occluded by others: mean {occ.mean():.2f}, '
            f'>10%: {(occ > 0.1).mean():.0%}, >30%: {(occ > 0.3).mean():.0%}, >50%: {(occ > 0.5).mean():.0%}; '
            f'by objects: mean {oocc.mean():.2f} ({sum(r.stats["occluders"] for r in ok)} occluders)',
            'joints: ' + ', '.join(f'{n} {c / n_joint:.0%}' for n, c in
                                   zip(('visible', 'self-occluded', 'hidden by a person', 'hidden by an object',
                                        'outside'), status)) +
            f'; detector: {sum(r.stats["missed"] for r in ok)} missed, {sum(r.stats["swaps"] for r in ok)} swapped',
            'backgrounds: ' + ', '.join(f'{k} {v}' for k, v in sorted(bgs.items())),
            framing_line(ok, people),
        ]
    if retried:
        lines.append(f'{retried} image(s) needed more than one attempt (a failed scene is redrawn with a new seed)')
    for j, r in failed:
        lines.append(f'skipped {j.sequence}/{j.file_name}: {r.error}')
    if failed:
        lines.append(f'{len(failed)} image(s) skipped')
    if sheet:
        lines.append(f'contact sheet: {sheet} (image | 2D detections, boxes, SMPL overlap edges in red)')
    if procedural:
        lines.append('body model: procedural stand-in (no official SMPL files)')
    return lines


def framing_line(ok, people):
    """People cut by the frame and in sitting/bending poses; the cameras' focal lengths, distances, elevations."""
    import numpy as np
    cam = np.array([r.stats['camera'] for r in ok])
    span = lambda a, fmt: f'{fmt.format(a.min())} to {fmt.format(a.max())}'  # noqa: E731
    return (f'cut by the frame: {sum(r.stats["cut"] for r in ok) / max(people, 1):.0%} of the people; sitting or '
            f'bending: {sum(r.stats["sit_bend"] for r in ok) / max(people, 1):.0%}; cameras: focal '
            f'{span(cam[:, 0], "{:.2f}")} x the long side, distance {span(cam[:, 1], "{:.1f}")} m, elevation '
            f'{span(cam[:, 2], "{:+.0f}")} deg')


SEQUENCE = re.compile(r'synth_(train|validation|test)_\d+')   # the image folders this tool names
# every annotation file this tool writes begins so (dataset_json): only those are ever replaced
ANNOTATION_START = b'{"info":{"description":"synthetic crowd scenes'
WORK_MARKER = '.made_by_make_synthetic'   # in the folders it builds beside --out: only such folders are removed


def annotation_files(root):
    return [root / 'data' / f'3DPW_latest_{s}.json' for s in SPLITS]


def check_out(out):
    """Before anything is written: --out is a folder whose annotation files (if any) this tool wrote; a real 3DPW
    copy (or anything else) is refused, never replaced."""
    if out.exists() and not out.is_dir():
        raise UserError(f'--out {out} is a file; give a folder for the set')
    if out.parent == out:
        raise UserError(f'--out {out} is the root of the file system; give a folder for the set')
    for path in annotation_files(out):
        if path.is_file():
            with open(path, 'rb') as f:
                ours = f.read(len(ANNOTATION_START)) == ANNOTATION_START
            if not ours:
                raise UserError(f'--out {out} holds {path.relative_to(out)}, which tool/make_data/make_synthetic.py '
                                f'did not write (a real 3DPW set?): give another --out; nothing was changed')


def work_folder(out, kind):
    """A fresh folder beside out (same file system: its contents move in by rename): .<name>.<kind>. A leftover of an
    interrupted run is removed first; a folder of that name that this tool did not make is refused."""
    path = out.parent / f'.{out.name}.{kind}'
    remove_work_folder(path)
    path.mkdir(parents=True)
    (path / WORK_MARKER).touch()
    return path


def remove_work_folder(path):
    if (path / WORK_MARKER).is_file():
        shutil.rmtree(path)


def set_members(root):
    """What a synthetic set under root consists of (paths relative to root), its annotation files last: the contact
    sheet, imageFiles/synth_*, the overlap-edge maps made from them (overlap_edges/synth_*, stale once the images
    change) and data/3DPW_latest_*.json. The rest of the folder (data/Synthetic holds the loader) is not the set's."""
    members = [Path('contact_sheet.jpg')] if (root / 'contact_sheet.jpg').is_file() else []
    for name in ('imageFiles', 'overlap_edges'):
        if (root / name).is_dir():
            members += sorted(Path(name) / d.name for d in (root / name).iterdir()
                              if d.is_dir() and SEQUENCE.fullmatch(d.name))
    return members + [p.relative_to(root) for p in annotation_files(root) if p.is_file()]


def swap_in(build, out):
    """Replace the set in out by the complete one in build, then delete the old one. Ctrl-C and SIGTERM wait until
    the renames are done, and the old annotation files go first and the new ones come last: out never holds one set's
    images under another's labels."""
    import signal
    old = work_folder(out, 'replaced')
    out.mkdir(parents=True, exist_ok=True)
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for src, dst, members in ((out, old, reversed(set_members(out))), (build, out, set_members(build))):
            for rel in members:
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                os.rename(src / rel, dst / rel)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    remove_work_folder(old)


def main(argv=None):
    args = parse_args(argv)
    if args.check:
        from tool.make_data.synthetic.check import check_dataset
        root = _abs(args.check)
        if not (root / 'data').is_dir():
            raise UserError(f'{root}/data not found: not a dataset in the 3DPW layout')
        n, problems = check_dataset(root, args.model_dir)
        print(f'checked {n} annotations in {root}: {len(problems)} problem(s)')
        return 1 if problems else 0

    validate(args)
    t0 = time.time()
    out = _abs(args.out)
    options = options_of(args)
    workers = args.workers
    if workers is None:
        workers = 0 if args.num_images < 64 else min(4, os.cpu_count() or 1)
    from common.body.smpl import find_official_model
    procedural = find_official_model(args.model_dir, 'neutral') is None

    check_out(out)
    # built beside the old set and swapped in when complete: an interrupt or a failure leaves the old set as it was
    build = work_folder(out, 'building')
    try:
        jobs, counts = plan_jobs(args, build, options)
        results = run_jobs(jobs, workers, not args.no_progress and sys.stderr.isatty())
        by_split = assemble(results, jobs)
        from tool.make_data.synthetic.generate import write_file
        for split in SPLITS:   # a split without images gets no file (and loses the old set's in the swap)
            if counts[split]:
                images, anns = by_split[split]
                write_file(build / 'data' / f'3DPW_latest_{split}.json',
                           dataset_json(images, anns, args, split).encode())
        sheet = None if (args.contact_sheet or '').lower() == 'none' else _abs(args.contact_sheet) \
            if args.contact_sheet else build / 'contact_sheet.jpg'
        sheet_written = contact_sheet(results, sheet, args) if sheet else False
        made = any(r.image is not None for r in results)
        if made:
            swap_in(build, out)
    finally:
        remove_work_folder(build)
    sheet = out / 'contact_sheet.jpg' if sheet == build / 'contact_sheet.jpg' else sheet
    for line in summarize(results, jobs, counts, out, time.time() - t0, sheet if sheet_written else None, procedural,
                          workers):
        print(line)
    if not made:
        print(f'no image could be made: {out} was left as it was')
    return 0 if made else 1


if __name__ == '__main__':
    sys.exit(run_cli(main))
