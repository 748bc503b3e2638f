"""README.md and docs/: every relative link and every file, script and module they name exists; the README's setup,
main-job and test commands are the ones .ci/run and the suite use; the generated results tables match their files."""
import importlib.util
import json
import re
import shlex
import shutil
import subprocess

import pytest

from common.paths import ROOT
from tool.experiments import docs_tables

DOCS = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))
TOP = {'main', 'common', 'data', 'tool', 'demo', 'assets', 'tests', 'docs', '.ci'}
ROOT_FILES = {'README.md', 'requirements.sh', 'requirements.txt', 'pyproject.toml', 'pytest.ini'}
NOT_A_PATH = re.compile(r'[<>*{}|$~=]|\.\.\.')
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
INLINE = re.compile(r'`([^`\n]+)`')
COMMAND = re.compile(r'(?:^|&&|\s)(?P<prog>python3?|bash)\s+(?P<args>[^&#\n]*)')


def code_texts(text):
    """(fenced blocks, inline code spans) of a markdown text."""
    blocks = FENCE.findall(text)
    return blocks, INLINE.findall(FENCE.sub('', text))


def slug(heading):
    """GitHub's anchor of a heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path):
    return {slug(h) for h in re.findall(r'^#+ (.+)$', FENCE.sub('', path.read_text()), re.M)}


def path_candidates(snippet):
    """Words of a code snippet that name a file or folder of this repository."""
    for word in snippet.split():
        word = word.strip('`,;:()\'"').split('::')[0]
        if not word or NOT_A_PATH.search(word) or word.startswith(('-', 'http')):
            continue
        if word in ROOT_FILES or ('/' in word and word.split('/')[0] in TOP):
            yield word


def git_ignored(paths):
    """The ones of `paths` git ignores (datasets, output/, SMPL files: named in the docs, made by the user)."""
    if not paths:
        return set()
    r = subprocess.run(['git', 'check-ignore', '--stdin'], cwd=ROOT, input='\n'.join(paths), capture_output=True,
                       text=True)
    if r.returncode not in (0, 1):
        pytest.skip(f'git check-ignore failed: {r.stderr.strip()}')
    return set(r.stdout.split())


def commands(text):
    """(prog, argv, working folder) of every `python ...` / `bash ...` command in the code of a markdown text."""
    blocks, spans = code_texts(text)
    out = []
    for snippet in blocks + spans:
        for line in snippet.replace('\\\n', ' ').splitlines():
            cwd = re.match(r'\s*cd (\S+) &&', line)
            for m in COMMAND.finditer(line):
                try:
                    argv = shlex.split(m['args'].split('  #')[0])
                except ValueError:
                    argv = m['args'].split()
                out.append((m['prog'], argv, cwd[1] if cwd else '.'))
    return out


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(doc):
    text = FENCE.sub('', doc.read_text())
    bad = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target):
            continue
        file, _, anchor = target.partition('#')
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            bad.append(f'{target}: no such file')
        elif anchor and path.suffix == '.md' and anchor not in anchors(path):
            bad.append(f'{target}: no heading #{anchor} in {path.relative_to(ROOT)}')
    assert not bad, f'{doc.relative_to(ROOT)}: ' + '; '.join(bad)


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(doc):
    blocks, spans = code_texts(doc.read_text())
    words = sorted({w for s in blocks + spans for w in path_candidates(s)})
    ignored = git_ignored(words)
    missing = []
    for word in words:
        if word in ignored:
            continue
        if not (ROOT / word).exists():
            missing.append(word)
    # a test named as file::function exists as a function
    for s in blocks + spans:
        for file, func in re.findall(r'(tests/\w+\.py)::(\w+)', s):
            if (ROOT / file).is_file() and not re.search(rf'^def {func}\b', (ROOT / file).read_text(), re.M):
                missing.append(f'{file}::{func}')
    assert not missing, f'{doc.relative_to(ROOT)} names what does not exist: {", ".join(missing)}'


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_exist(doc):
    bad = []
    for prog, argv, cwd in commands(doc.read_text()):
        if not argv or argv[0] == '-c':
            continue
        if argv[0] == '-m':
            mod = argv[1]
            if mod.split('.')[0] in TOP:
                base = ROOT / mod.replace('.', '/')
                ok = base.with_suffix('.py').is_file() or (base / '__init__.py').is_file()
            else:
                ok = importlib.util.find_spec(mod) is not None
            if not ok:
                bad.append(f'{prog} -m {mod}')
        elif NOT_A_PATH.search(argv[0]) is None and not (ROOT / cwd / argv[0]).is_file():
            bad.append(f'{prog} {argv[0]}')
    assert not bad, f'{doc.relative_to(ROOT)}: no such script or module: {", ".join(bad)}'


def test_commands_are_found():
    """The extraction itself: the README's own commands are among what the checks above look at."""
    found = {(p, a[0]) for p, a, _ in commands((ROOT / 'README.md').read_text()) if a}
    assert {('bash', 'requirements.sh'), ('python', 'tool/quickstart.py'), ('python', '-m'),
            ('python', 'main/train.py'), ('python', 'demo/demo.py')} <= found
    assert 'tool/experiments/docs_tables.py' in set(path_candidates('see `tool/experiments/docs_tables.py`, '
                                                                    'and data/PW3D/<x>.json'))
    assert not set(path_candidates('output/<experiment> snapshot_<epoch>.pth.tar ../SEFD/a.yml --cfg'))


def ci_commands():
    lines = [ln.strip() for ln in (ROOT / '.ci' / 'run').read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith('#') and not ln.startswith(('set ', 'cd '))]


def test_readme_commands_are_the_ci_and_suite_ones():
    readme = (ROOT / 'README.md').read_text()
    setup, test = ci_commands()
    assert setup == 'bash requirements.sh'
    assert re.sub(r'^python3 ', 'python ', test) == 'python -m pytest -q'
    assert 'bash requirements.sh && python -m pytest -q' in readme
    assert 'bash requirements.sh && python tool/quickstart.py' in readme
    # the main job the README promises is the one the suite runs end to end (tests/tool/test_quickstart.py, at its
    # smallest scale) and the one whose results the README shows (the default scale, small)
    assert "'tool/quickstart.py'" in (ROOT / 'tests' / 'tool' / 'test_quickstart.py').read_text()
    from tool.quickstart import parse_args
    assert parse_args([]).scale == 'small'
    assert json.loads((ROOT / 'assets' / 'quickstart' / 'results.json').read_text())['scale'] == 'small'


def test_generated_tables_match_the_results_files():
    assert docs_tables.main(['--check']) == 0


def test_generated_region_round_trip(tmp_path, capsys):
    """A region is filled from results.json as the run's own report.md printed it, and --check catches an edit."""
    for name in ('results.json', 'report.md'):
        (tmp_path / 'assets' / 'quickstart').mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / 'assets' / 'quickstart' / name, tmp_path / 'assets' / 'quickstart' / name)
    (tmp_path / 'docs').mkdir()
    doc = tmp_path / 'docs' / 'r.md'
    doc.write_text('# R\n\n<!-- generated: quickstart-small-headline -->\nstale\n<!-- end -->\n\ntail\n')
    assert docs_tables.main(['--check'], root=tmp_path) == 1
    assert 'docs/r.md (quickstart-small-headline)' in capsys.readouterr().err
    assert docs_tables.main([], root=tmp_path) == 0
    text = doc.read_text()
    assert 'stale' not in text and text.endswith('<!-- end -->\n\ntail\n')
    # the all-samples rows, exactly as tool/quickstart.py printed them in report.md
    report = (tmp_path / 'assets' / 'quickstart' / 'report.md').read_text()
    all_rows = re.findall(r'^\| all \|.*\n(?:\|  \|  \|.*\n)+', report, re.M)[0]
    assert all_rows in text
    assert docs_tables.main(['--check'], root=tmp_path) == 0
    doc.write_text(text.replace(all_rows.splitlines()[0], all_rows.splitlines()[0].replace('.', ',', 1)))
    assert docs_tables.main(['--check'], root=tmp_path) == 1


def test_unknown_region_and_missing_results_are_one_line(tmp_path):
    from common.errors import UserError
    with pytest.raises(UserError, match='unknown generated region'):
        docs_tables.render('quickstart_small', root=tmp_path)
    with pytest.raises(UserError, match=r'assets/quickstart_medium/results\.json not found'):
        docs_tables.render('quickstart-medium', root=tmp_path)


def test_publish_copies_a_run_and_renders_it(tmp_path):
    run, root = tmp_path / 'output' / 'quickstart_medium', tmp_path / 'repo'
    run.mkdir(parents=True)
    for name in docs_tables.PUBLISHED:
        src = ROOT / 'assets' / 'quickstart_medium' / name
        (run / name).write_bytes(src.read_bytes())
    (root / 'docs').mkdir(parents=True)
    doc = root / 'docs' / 'r.md'
    doc.write_text('<!-- generated: quickstart-medium -->\n<!-- end -->\n')
    assert docs_tables.main(['--publish', str(run)], root=root) == 0
    for name in docs_tables.PUBLISHED:
        assert (root / 'assets' / 'quickstart_medium' / name).read_bytes() == (run / name).read_bytes()
    res, text = json.loads((run / 'results.json').read_text()), doc.read_text()
    assert '`python tool/quickstart.py --scale medium' + (f' --seeds {res["seeds"]}' if res['seeds'] > 1 else '') + '` ' \
        in text
    per_seed = res['distillation']['student_minus_edge_only']['per_seed']
    assert len(per_seed) < 2 or 'Per seed: ' + ', '.join(f'{d:+.2f}' for d in per_seed) + ' mm' in text
    (run / 'curves.png').unlink()
    from common.errors import UserError
    with pytest.raises(UserError, match='no curves.png'):
        docs_tables.main(['--publish', str(run)], root=root)


def test_probe_section_sits_under_the_run(tmp_path):
    """A run that probed its models gets the report's probe table, its heading one level below the page's run."""
    summary = json.loads((ROOT / 'assets' / 'quickstart' / 'results.json').read_text())
    variant = lambda d, mpjpe, moved=None: {'description': d, 'summary': {'mpjpe': mpjpe, 'pa_mpjpe': 100.0},  # noqa
                                            'hidden': None, 'mpjpe_moved_per_person': moved}
    summary['probe'] = {'baseline': {'hidden_label': '67-100%', 'gate': 0.002, 'variants': {
        'given': variant('as given', 200.0), 'image_swapped': variant('images swapped', 202.0, 3.5)}}}
    (tmp_path / 'assets' / 'quickstart').mkdir(parents=True)
    (tmp_path / 'assets' / 'quickstart' / 'results.json').write_text(json.dumps(summary))
    text = docs_tables.render('quickstart-small', root=tmp_path)
    assert '\n### Does each model use its image and edge map?\n' in text
    assert '| baseline | as given | 200.0 | 100.0 | - |  |' in text and '|  | images swapped | 202.0 (+1%) |' in text
