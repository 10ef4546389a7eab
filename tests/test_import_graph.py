"""The package's import graph: dependencies point one way (down the layers), with no cycles.

Layers, bottom to top (a module may import its own layer or lower ones):

====  =====================================================================================
0     generic machinery: ``egosim.paths``, ``egosim.config``, ``egosim.configs``,
      ``egosim.atomic_io``, ``egosim.cache_entry``
1     ``egosim.sensors.*`` (triangles and poses)
2     ``egosim.envs.*`` (the world, the envs)
3     ``egosim.agents.*`` and ``egosim.egom2p.*`` (siblings: neither imports the other)
4     ``egosim.apps.*``, ``egosim.cli``, ``egosim.__main__``, the root ``egosim`` package
====  =====================================================================================

Every import counts: module-level, function-local and ``TYPE_CHECKING`` ones, relative
imports, ``importlib.import_module("literal")`` calls and the lazy ``_EXPORTS`` tables
(``name -> submodule``) of package ``__init__``s. An import is an edge to the module it
names; a package's module is its ``__init__``. ``from pkg import name`` is an edge to ``pkg``
(its ``__init__`` runs first) and also to ``pkg.name`` when that is a module. The parent
packages of a dotted name are not edges (every module would then depend on ``egosim``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # the standard library's, Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
TOP = "egosim"

# (module or package prefix, layer, group); the longest matching prefix wins, except that
# the root ``egosim`` matches only itself: a new module of the package root gets no layer
# until it is added here. Modules of different groups in one layer must not import each
# other (siblings).
LAYERS: tuple[tuple[str, int, str], ...] = (
    ("egosim.paths", 0, "generic"),
    ("egosim.config", 0, "generic"),
    ("egosim.configs", 0, "generic"),
    ("egosim.atomic_io", 0, "generic"),
    ("egosim.cache_entry", 0, "generic"),
    ("egosim.sensors", 1, "sensors"),
    ("egosim.envs", 2, "envs"),
    ("egosim.agents", 3, "agents"),
    ("egosim.egom2p", 3, "egom2p"),
    ("egosim.apps", 4, "wiring"),
    ("egosim.cli", 4, "wiring"),
    ("egosim.__main__", 4, "wiring"),
    ("egosim", 4, "wiring"),
)


@dataclass(frozen=True)
class Edge:
    """One import: ``importer`` (module) at ``path:line`` imports ``target`` (module)."""

    importer: str
    target: str
    path: str
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _source_modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` under the folders of pyproject's package-dir."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_dir: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in package_dir.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            if any(not part.isidentifier() for part in rel.parts):
                continue  # not importable (e.g. a stray script folder)
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            name = ".".join((package, *parts))
            modules.setdefault(name, path)
    return modules


def _layer(module: str) -> tuple[int, str] | None:
    best: tuple[str, int, str] | None = None
    for prefix, layer, group in LAYERS:
        matches = module == prefix or (prefix != TOP and module.startswith(prefix + "."))
        if matches and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer, group)
    return None if best is None else (best[1], best[2])


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """Absolute name of ``from <'.' * level><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def _literal_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_import_module_call(node: ast.Call) -> bool:
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id in ("import_module", "__import__"))


def _exports_table(node: ast.AST) -> ast.Dict | None:
    """The dict literal of a module-level ``_EXPORTS = {...}`` (annotated or not)."""
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS"
                                            for t in node.targets):
        value = node.value
    elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
          and node.target.id == "_EXPORTS"):
        value = node.value
    else:
        return None
    return value if isinstance(value, ast.Dict) else None


def _edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import of an ``egosim`` module by a source module (see the module docstring)."""
    edges: list[Edge] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(ROOT))
        found: list[tuple[str, int]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                found.append((base, node.lineno))
                found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names
                          if f"{base}.{alias.name}" in modules]
            elif isinstance(node, ast.Call) and _is_import_module_call(node) and node.args:
                target = _literal_str(node.args[0])
                if target is None:
                    continue
                if target.startswith("."):
                    pkg = next((_literal_str(k.value) for k in node.keywords
                                if k.arg == "package"), None) or (
                        name if is_package else name.rpartition(".")[0])
                    level = len(target) - len(target.lstrip("."))
                    target = _resolve(pkg, True, level, target.lstrip(".") or None)
                found.append((target, node.lineno))
        if is_package:
            for node in tree.body:
                table = _exports_table(node)
                for value in table.values if table is not None else []:
                    sub = _literal_str(value)
                    if sub is not None:
                        found.append((f"{name}.{sub}", value.lineno))
        for target, line in dict.fromkeys(found):
            if target == TOP or target.startswith(TOP + "."):
                edges.append(Edge(name, target, rel, line))
    return edges


def _graph() -> tuple[dict[str, Path], list[Edge]]:
    modules = _source_modules()
    return modules, _edges(modules)


def test_source_tree_is_found():
    modules, edges = _graph()
    for expected in ("egosim", "egosim.paths", "egosim.sensors.shapes", "egosim.envs.vector",
                     "egosim.envs.scenes", "egosim.agents.train", "egosim.cli"):
        assert expected in modules, expected
    assert len(edges) > 50
    # the walker sees function-local imports and the lazy tables
    pairs = {(e.importer, e.target) for e in edges}
    assert ("egosim.envs.scenes", "egosim.envs.scenes.procedural") in pairs  # inside load()
    assert ("egosim.envs.humans", "egosim.envs.humans.body_model") in pairs  # _EXPORTS


def test_every_module_has_a_layer():
    modules, edges = _graph()
    unknown = sorted({m for m in modules if _layer(m) is None}
                     | {e.target for e in edges if _layer(e.target) is None})
    assert not unknown, f"modules without a layer (add them to LAYERS): {unknown}"


def test_every_imported_egosim_module_exists():
    modules, edges = _graph()
    missing = [f"{e.where()} -> {e.target}" for e in edges
               if e.target not in modules and e.target.rpartition(".")[0] not in modules]
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_imports_point_down_the_layers():
    modules, edges = _graph()
    bad: list[str] = []
    for e in edges:
        src, dst = _layer(e.importer), _layer(e.target)
        if src is None or dst is None:
            continue
        if dst[0] > src[0]:
            bad.append(f"{e.where()} -> {e.target} (layer {src[0]} {src[1]} imports "
                       f"layer {dst[0]} {dst[1]})")
        elif dst[0] == src[0] and dst[1] != src[1]:
            bad.append(f"{e.where()} -> {e.target} (siblings in layer {src[0]}: {src[1]} "
                       f"imports {dst[1]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def _strongly_connected(nodes: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def _cycle_in(comp: list[str], where: dict[tuple[str, str], Edge]) -> list[Edge]:
    """One cycle through the component's first module (shortest, breadth-first)."""
    members = set(comp)
    start = comp[0]
    parent: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for (a, b), e in where.items():
                if a != v or b not in members:
                    continue
                if b == start:
                    path = [e]
                    while path[0].importer != start:
                        path.insert(0, parent[path[0].importer])
                    return path
                if b not in parent:
                    parent[b] = e
                    nxt.append(b)
        frontier = nxt
    return []


def test_no_import_cycles():
    modules, edges = _graph()
    where: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if e.target in modules and e.target != e.importer:
            where.setdefault((e.importer, e.target), e)
    succ: dict[str, list[str]] = {}
    for a, b in where:
        succ.setdefault(a, []).append(b)
    cycles = [c for c in _strongly_connected(sorted(modules), succ) if len(c) > 1]
    report = []
    for comp in cycles:
        steps = "\n".join(f"    {e.importer} -> {e.target}  ({e.where()})"
                          for e in _cycle_in(comp, where))
        report.append(f"  component {comp}:\n{steps}")
    assert not cycles, "import cycles:\n" + "\n".join(report)


CHECK_NO_SB3 = textwrap.dedent("""
    import sys

    import gymnasium as gym
    import numpy as np

    import egosim.envs
    from envs_support import overrides

    ov = overrides(**{"episode.max_steps": 2})
    env = gym.make("egosim/EgoLocomotion-v0", overrides=ov)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    venv = gym.make_vec("egosim/EgoLocomotion-v0", num_envs=2, vectorization_mode="sync",
                        overrides=ov)
    venv.reset(seed=0)
    venv.step(np.zeros(venv.action_space.shape, np.float32))
    venv.close()
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "stable_baselines3")
    assert not loaded, loaded
    print("NO-SB3-OK")
""")


@pytest.mark.slow
def test_envs_do_not_import_stable_baselines3():
    out = subprocess.run([sys.executable, "-c", CHECK_NO_SB3], cwd=ROOT / "tests",
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "NO-SB3-OK" in out.stdout
