"""The installable project: no script edits sys.path, the console scripts exist, and a script run from a clone that
Python does not import says so in one line instead of running the other clone's code."""
import ast
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from common.paths import ROOT, foreign_clone

PACKAGES = ('common', 'data', 'main', 'tool', 'demo', 'tests')


def python_files():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob('*.py'))


def edits_sys_path(tree):
    """Lines where the module changes sys.path (insert/append/extend/assignment)."""
    def is_sys_path(node):
        return isinstance(node, ast.Attribute) and node.attr == 'path' and getattr(node.value, 'id', '') == 'sys'
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_sys_path(node.func.value):
            if node.func.attr in ('insert', 'append', 'extend', '__setitem__'):
                yield node.lineno
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(is_sys_path(t) or isinstance(t, ast.Subscript) and is_sys_path(t.value) for t in targets):
                yield node.lineno


def test_the_checker_sees_every_form_of_sys_path_edit():
    src = 'import sys\nsys.path.insert(0, "x")\nsys.path.append("y")\nsys.path = []\nsys.path[0] = "z"\nsys.path += ["w"]\n'
    assert sorted(edits_sys_path(ast.parse(src))) == [2, 3, 4, 5, 6]
    assert list(edits_sys_path(ast.parse('import sys\nprint(sys.path[0])\n'))) == []


def test_no_file_edits_sys_path():
    found = [f'{p.relative_to(ROOT)}:{n}' for p in python_files() for n in edits_sys_path(ast.parse(p.read_text()))]
    assert found == []
    assert not [p for p in python_files() if 'noqa: ' + 'E402' in p.read_text()]  # split: this file is scanned too


def test_console_scripts_are_the_entry_points_with_one_line_errors(monkeypatch, capsys):
    tomllib = pytest.importorskip('tomllib')  # Python 3.11+
    scripts = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['scripts']
    assert set(scripts) == {'sefd-train', 'sefd-test', 'sefd-demo', 'sefd-quickstart'}
    for target in scripts.values():
        module, func = target.split(':')
        assert callable(getattr(import_module(module), func)), target
    from main.test import cli  # what sefd-test calls: a bad input ends in one line and exit code 2
    monkeypatch.setattr(sys, 'argv', ['sefd-test', '--exp_dir', str(ROOT / 'output' / 'no_such_experiment')])
    with pytest.raises(SystemExit) as e:
        cli()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and 'no_such_experiment' in err and '\n' not in err


def test_foreign_clone_is_the_clone_holding_the_script(tmp_path):
    other = tmp_path / 'other_clone'
    (other / 'common').mkdir(parents=True)
    (other / 'common' / 'paths.py').write_text('')
    (other / 'pyproject.toml').write_text('')
    (other / 'main').mkdir()
    assert foreign_clone(other / 'main' / 'train.py') == other
    assert foreign_clone(ROOT / 'main' / 'train.py') is None
    assert foreign_clone(tmp_path / 'elsewhere.py') is None  # a console script's shim, or any file outside a clone


def installed_root():
    """Where this Python imports the project from when nothing puts a clone on its path (the editable install)."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = subprocess.run([sys.executable, '-c', 'import common.paths as p; print(p.ROOT)'], cwd='/', env=env,
                       capture_output=True, text=True)
    return Path(r.stdout.strip()) if r.returncode == 0 else None, env


@pytest.mark.parametrize('cwd,script', [('.', 'main/test.py'), ('main', 'test.py'),
                                        ('tool/convert', 'convert_smpl.py')])
def test_scripts_run_from_the_root_and_from_their_folder(cwd, script):
    installed, env = installed_root()
    if installed is None:
        pytest.skip('the project is not installed in this Python: bash requirements.sh (pip install --no-deps -e .)')
    r = subprocess.run([sys.executable, script, '--help'], cwd=ROOT / cwd, env=env, capture_output=True, text=True)
    if installed == ROOT:
        assert r.returncode == 0 and 'usage:' in r.stdout, r.stderr
    else:  # installed from another clone: this clone's script refuses to run that clone's code, in one line
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and str(ROOT) in r.stderr, r.stderr
