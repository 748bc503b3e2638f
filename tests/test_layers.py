"""The package layers (docs/development.md, Layers): each package imports only the ones below it, and no modules import each
other in a cycle (lazy imports inside functions included: they are cycles that merely fail later)."""
import ast

from common.paths import ROOT

LAYERS = ('common', 'data', 'main', 'tool', 'demo')   # each may import the ones before it


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix('')
    return '.'.join(rel.parts[:-1] if rel.name == '__init__' else rel.parts)


def import_graph():
    """{module: {(project module it imports, line)}} over every .py file of the layered packages."""
    files = {module_name(f): f for layer in LAYERS for f in (ROOT / layer).rglob('*.py')}

    def resolve(name):   # 'data.PW3D.PW3D.PW3D' (a class) -> the module 'data.PW3D.PW3D'
        while name and name not in files:
            name = name.rpartition('.')[0]
        return name

    graph = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f'{node.module}.{a.name}' for a in node.names]
            else:
                continue
            deps |= {(r, node.lineno) for r in map(resolve, names) if r and r != mod}
        graph[mod] = deps
    return graph, files


def test_no_package_imports_a_layer_above_it():
    graph, files = import_graph()
    assert {m.split('.')[0] for m in graph} == set(LAYERS)
    upward = [f'{files[m].relative_to(ROOT)}:{line} imports {dep}' for m, deps in graph.items()
              for dep, line in deps if LAYERS.index(dep.split('.')[0]) > LAYERS.index(m.split('.')[0])]
    assert not upward, '\n'.join(sorted(upward))


def strongly_connected(graph):
    """Tarjan's components of more than one node (the import cycles)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return cycles


def test_cycle_finder_finds_a_known_cycle():
    assert strongly_connected({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert strongly_connected({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycles():
    graph, _ = import_graph()
    assert strongly_connected({m: {d for d, _ in deps} for m, deps in graph.items()}) == []
