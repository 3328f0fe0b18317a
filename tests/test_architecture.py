"""The package's layers (docs/architecture.md), enforced on every import in asrkit/.

    kaldi (formats; errors, fileio, logutil, jobs, text as shared leaves)
      <- data <- models <- the stages (features, training, decoding, pruning, distill, scoring,
      corpora; none imports another) <- cli

Every module is parsed with ast and every import in it counts, at module top or inside a function:
an import inside a function is a dependency all the same, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asrkit"

SHARED, DATA, MODELS, STAGE, CLI = 0, 1, 2, 3, 4
LAYER_NAMES = {SHARED: "kaldi/shared", DATA: "data", MODELS: "models", STAGE: "stage", CLI: "cli"}
# The layer of each top-level module or subpackage of asrkit ("jobs": the Kaldi-style job runner
# that make-feats, decode and dump-posteriors share, below the stages that use it).
LAYERS = {
    "asrkit": SHARED, "errors": SHARED, "fileio": SHARED, "logutil": SHARED, "envcheck": SHARED, "jobs": SHARED,
    "schema": SHARED,
    "kaldi": SHARED, "text": SHARED,
    "data": DATA,
    "models": MODELS,
    "features": STAGE, "training": STAGE, "decoding": STAGE, "pruning": STAGE, "distill": STAGE,
    "scoring": STAGE, "corpora": STAGE,
    "cli": CLI, "__main__": CLI,
}


def module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """`{module: {imported module of the same package: line of the first import}}` for every module under root.

    `from pkg import name` counts as an import of `pkg.name` when that is a module, else of `pkg`.
    """
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for mod, path in files.items():
        is_package = path.name == "__init__.py"
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = mod.split(".")[: len(mod.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:  # `import asrkit.kaldi.table.x` style: the module part
                    target = target.rpartition(".")[0]
                if target and target != mod and target.split(".")[0] == root.name:
                    edges.setdefault(target, node.lineno)
        graph[mod] = edges
    return graph


def top_name(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: dict[str, dict[str, int]], layers: dict[str, int]) -> list[str]:
    """One line per import that goes up a layer or from one stage into another."""
    out = []
    for mod, edges in sorted(graph.items()):
        a = top_name(mod)
        for target, line in sorted(edges.items()):
            b = top_name(target)
            la, lb = layers[a], layers[b]
            if lb > la:
                why = f"{LAYER_NAMES[la]} '{a}' imports the higher layer {LAYER_NAMES[lb]} '{b}'"
            elif la == lb == STAGE and a != b:
                why = f"stage '{a}' imports stage '{b}'"
            else:
                continue
            out.append(f"{mod} (line {line}) imports {target}: {why}")
    return out


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


def test_every_module_has_a_layer(graph):
    unknown = sorted({top_name(m) for m in graph} - set(LAYERS))
    assert not unknown, f"modules without a layer (add them to LAYERS here and to docs/architecture.md): {unknown}"


def test_no_import_crosses_the_layers(graph):
    bad = layer_violations(graph, LAYERS)
    assert not bad, "imports across the layers:\n" + "\n".join(bad)


def test_no_import_cycle(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        " <-> ".join(c) + "".join(f"\n    {a} imports {b} (line {graph[a][b]})" for a in c for b in c if b in graph[a])
        for c in cycles)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "asrkit" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "asrkit"


def test_the_checks_find_a_cross_stage_import_an_upward_import_and_a_cycle(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "kaldi/__init__.py": "",
        "kaldi/table.py": "def f():\n    from asrkit.models import net\n",       # upward, inside a function
        "models/__init__.py": "",
        "models/net.py": "from . import heads\n",
        "models/heads.py": "import asrkit.models.net\n",                          # cycle net <-> heads
        "training/__init__.py": "",
        "training/trainer.py": "from asrkit.decoding import ctc\nfrom asrkit.kaldi import table\n",
        "decoding/__init__.py": "",
        "decoding/ctc.py": "from asrkit.models.net import x\n",
    })
    g = import_graph(root)
    assert g["asrkit.training.trainer"] == {"asrkit.decoding.ctc": 1, "asrkit.kaldi.table": 2}
    assert g["asrkit.models.net"] == {"asrkit.models.heads": 1}
    assert layer_violations(g, LAYERS) == [
        "asrkit.kaldi.table (line 2) imports asrkit.models.net: kaldi/shared 'kaldi' imports the higher layer "
        "models 'models'",
        "asrkit.training.trainer (line 1) imports asrkit.decoding.ctc: stage 'training' imports stage 'decoding'",
    ]
    assert import_cycles(g) == [["asrkit.models.heads", "asrkit.models.net"]]
