"""The results tables of README.md and docs/, generated from the committed results files (never typed).

    python tool/experiments/docs_tables.py            # rewrite every generated region from the files
    python tool/experiments/docs_tables.py --check    # exit 1, naming the region,
                                                      # when a doc differs from what the files give
    python tool/experiments/docs_tables.py --publish output/quickstart_small   # first copy a finished run into assets/

A generated region in a markdown file is

    <!-- generated: quickstart-small -->
    ...
    <!-- end -->

and its name says what fills it: `quickstart-<scale>` is the run in assets/quickstart_<scale>/ (assets/quickstart/
for the default scale, small) rendered in full: where and how it ran, the metrics table of every subset, the
distillation effect and, where the run probed its models, whether each uses its image and edge map;
`quickstart-<scale>-headline` is the same run's first line and its all-samples rows. The tables are
tool/runs/report.py's, so a region reads as the run's own report.md. `--publish RUN` copies a finished quickstart
run's report.md, results.json and figures into its scale's folder under assets/ before the regions are rendered.
"""
import argparse
import json
import re
import sys
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_write_bytes, atomic_write_text
from common.paths import ROOT
from tool.runs.report import comparison_lines, metrics_table, probe_section, rows_from_summary

DOCS = ('README.md', 'docs/*.md')
PUBLISHED = ('report.md', 'results.json', 'montage.png', 'curves.png', 'occlusion.png')   # what a run folder shows
REGION = re.compile(r'(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end -->)', re.S)


def run_folder(scale, root=ROOT):
    return root / 'assets' / ('quickstart' if scale == 'small' else f'quickstart_{scale}')


def load_summary(scale, root=ROOT):
    path = run_folder(scale, root) / 'results.json'
    try:
        return json.loads(path.read_text()), path
    except FileNotFoundError:
        raise UserError(f'{path.relative_to(root)} not found: copy results.json of a finished `python '
                        f'tool/quickstart.py --scale {scale}` run (output/quickstart_{scale}/) there') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f'{path.relative_to(root)} is not a results file of tool/quickstart.py ({e})') from e


def publish(run, root=ROOT):
    """Copy the files of a finished quickstart run folder into assets/ (its scale's folder); that folder."""
    run = Path(run)
    missing = [n for n in PUBLISHED if not (run / n).is_file()]
    if missing:
        raise UserError(f'{run} is not a finished tool/quickstart.py run folder: no {", ".join(missing)}')
    try:
        scale = json.loads((run / 'results.json').read_text())['scale']
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise UserError(f'{run / "results.json"} is not a results file of tool/quickstart.py ({e})') from e
    if not re.fullmatch(r'[a-z]+', str(scale)):
        raise UserError(f'{run / "results.json"}: scale {scale!r} is not a quickstart scale')
    dest = run_folder(scale, root)
    dest.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        atomic_write_bytes(dest / name, (run / name).read_bytes())
    return dest


def provenance(s):
    """Where, when and how the run ran: command, commit, date, machine, seeds, time."""
    cmd = 'python tool/quickstart.py' + (f' --scale {s["scale"]}' if s['scale'] != 'small' else '') + \
        (f' --seeds {s["seeds"]}' if s['seeds'] > 1 else '')
    m = s['machine']
    where = f'{m["cpu"]}, {m["cores"]} cores' + (f', GPU {m["gpu"]}' if m.get('gpu') else ', no GPU') + \
        f'; torch {m["torch"]}'
    seeds = f'{s["seeds"]} seeds (mean ± sample std over seeds)' if s['seeds'] > 1 else '1 seed'
    body = ('procedural body model (not comparable to published numbers)' if s.get('procedural_body_model')
            else 'official SMPL files')
    people = s['rows'][0]['samples']
    # a summary rebuilt from an older run's report.md knows the commit that added the report, not the run's
    at = 'reported in commit' if s.get('reconstructed') else 'at commit'
    return (f'`{cmd}` {at} `{s.get("commit") or "?"}` ({s.get("date") or "date unknown"}); {where}; {seeds}; '
            f'{s["total_minutes"]:.1f} minutes in all; {body}; {s["test_set"]} test split, {people} people; mm.')


def demote(lines, levels):
    """The report's headings one or more levels down, to sit under the page's own."""
    return [('#' * levels + ln) if ln.startswith('#') else ln for ln in lines]


def render(name, root=ROOT):
    """The text of region `name` (ending with a newline)."""
    m = re.fullmatch(r'quickstart-(?P<scale>[a-z]+)(?P<headline>-headline)?', name)
    if not m:
        raise UserError(f'unknown generated region {name!r}: quickstart-<scale> or quickstart-<scale>-headline')
    s, _ = load_summary(m['scale'], root)
    rows = rows_from_summary(s)
    if m['headline']:
        lines = [provenance(s), '', metrics_table(rows[:1], reference=s.get('constant_mean_mesh'))]
    else:
        lines = [provenance(s), '', metrics_table(rows, reference=s.get('constant_mean_mesh')), '']
        if s.get('distillation'):
            lines += comparison_lines(rows, s['distillation']) + ['']
        lines += demote(probe_section(s.get('probe') or {}), 1)
    return '\n'.join(lines).rstrip('\n') + '\n'


def doc_files(root=ROOT):
    return [p for pattern in DOCS for p in sorted(root.glob(pattern))]


def refresh(text, root=ROOT):
    """`text` with every generated region rendered anew, and the names of the regions."""
    names = []

    def sub(m):
        names.append(m['name'])
        return m.group(1) + render(m['name'], root) + m.group(4)
    return REGION.sub(sub, text), names


def main(argv=None, root=ROOT):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true', help='change nothing; exit 1 when a region is not what the '
                                                         'files give')
    ap.add_argument('--publish', metavar='RUN', help='first copy report.md, results.json and the figures of this '
                                                         'finished quickstart run folder into assets/')
    args = ap.parse_args(argv)
    if args.publish:
        if args.check:
            raise UserError('--publish changes files; --check only compares: give one of them')
        print(f'published {args.publish} to {publish(args.publish, root).relative_to(root)}')
    stale = []
    for path in doc_files(root):
        text = path.read_text()
        new, names = refresh(text, root)
        if new == text:
            continue
        rel = path.relative_to(root)
        if args.check:
            stale.append(f'{rel} ({", ".join(n for n in names if render(n, root) not in text)})')
        else:
            atomic_write_text(path, new)
            print(f'updated {rel}')
    if stale:
        print('generated tables differ from the results files in: ' + '; '.join(stale) +
              '; run `python tool/experiments/docs_tables.py`', file=sys.stderr)
        return 1
    return 0


def cli():
    run_cli(lambda: sys.exit(main()))


if __name__ == '__main__':
    cli()
