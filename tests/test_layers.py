"""The package imports one way: no import circle, and each layer imports only the layers below it.

Every ``import`` counts, at the top of a module, inside a function or under ``TYPE_CHECKING``: a
circle hidden in a function is still a circle a reader has to untangle. The layers, lowest first
(docs/architecture.md explains them):

* base -- ``lossaudit`` itself, ``errors``, ``quiet``, ``redact``, ``safe_names``: the standard library only;
* ``core`` -- the audit's logic: rules, labels, metrics, comparison, reports; no adapter;
* adapters -- ``formats`` (renderers), ``keras``, ``script`` (training scripts read as
  source), ``validation`` (Great Expectations) and ``tracking`` (the MLflow connection) import
  core only; ``sources`` may read through ``keras`` and ``tracking``; ``sinks`` write
  ``formats`` and log through ``tracking``; ``spark`` (the Spark engine) runs the model
  through ``keras``;
* ``pipeline`` -- the stages, wired to the adapters through their interfaces;
* ``demo`` and ``registry`` -- jobs built on the pipeline;
* ``api`` -- the Python API (``lossaudit.audit``, the MLflow evaluator, the Keras callback), on the
  pipeline like the jobs;
* ``cli`` -- the only place that wires everything.

One kind of import is not an edge: a package ``__init__``'s lazy re-export of a public name of the
``api`` layer, made inside its module-level ``__getattr__`` (PEP 562), such as
``lossaudit.audit`` and ``lossaudit.keras.AuditCallback``. It runs when the user asks for the
name, never when anything inside lossaudit imports the package; ``test_lazy_reexports`` checks
that it goes nowhere but ``api`` and sits nowhere but in ``__getattr__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lossaudit"

BASE = {"base"}
CORE = BASE | {"core"}
ADAPTERS = {"formats", "keras", "script", "validation", "tracking", "sources", "sinks", "spark"}
ALLOWED: dict[str, set[str]] = {
    "base": BASE,
    "core": CORE,
    "formats": CORE | {"formats"},
    "keras": CORE | {"keras"},
    "script": CORE | {"script"},
    "validation": CORE | {"validation"},
    "tracking": CORE | {"tracking"},
    "sources": CORE | {"sources", "keras", "tracking"},
    "sinks": CORE | {"sinks", "formats", "tracking"},
    "spark": CORE | {"spark", "keras"},
    "pipeline": CORE | ADAPTERS | {"pipeline"},
    "demo": CORE | ADAPTERS | {"pipeline", "demo"},
    "registry": CORE | ADAPTERS | {"pipeline", "registry"},
    "api": CORE | ADAPTERS | {"pipeline", "api"},
    "cli": CORE | ADAPTERS | {"pipeline", "demo", "registry", "api", "cli"},
}
REEXPORT_LAYER = "api"
"""The only layer a package ``__init__`` may re-export lazily from (see the module docstring)."""


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _lazy_reexport_nodes(tree: ast.Module, path: Path) -> set[int]:
    """ids of the import nodes of a package ``__init__``'s lazy re-exports: inside its module-level
    ``__getattr__``, and under its module-level ``if TYPE_CHECKING:`` (the names' types)."""
    if path.name != "__init__.py":
        return set()
    getattr_fns = [fn for fn in tree.body if isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__"]
    if not getattr_fns:
        return set()
    type_blocks = [
        block
        for block in tree.body
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
    ]
    return {
        id(node)
        for scope in (*getattr_fns, *type_blocks)
        for node in ast.walk(scope)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str | None:
    """The module a ``from`` import names, relative ones (``from ..keras import static``) resolved
    against ``module``'s package; None for a relative import that climbs above the top package."""
    if node.level == 0:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level - 1 >= len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(path: Path, known: set[str], *, module: str = "", lazy: bool = False) -> set[str]:
    """The lossaudit modules ``path`` (the module ``module``) imports (``from a import b`` counts
    ``a.b`` when ``b`` is a module, else ``a``; relative imports count as the module they name);
    with ``lazy``, only its lazy re-exports, which are left out otherwise."""
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reexports = _lazy_reexport_nodes(tree, path)
    for node in ast.walk(tree):
        if (id(node) in reexports) != lazy:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (source := _absolute(node, module, path)):
            names = [f"{source}.{a.name}" for a in node.names]
            names = [n if n in known else source for n in names]
        else:
            continue
        out.update(n for n in names if n in known)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(root)
    known = set(modules)
    return {name: _imports(path, known, module=name) - {name} for name, path in modules.items()}


def lazy_reexports(root: Path = PACKAGE) -> dict[str, set[str]]:
    """package -> the modules its ``__getattr__`` re-exports from (packages without one left out)."""
    modules = _modules(root)
    known = set(modules)
    found = {name: _imports(path, known, module=name, lazy=True) for name, path in modules.items()}
    return {name: targets for name, targets in found.items() if targets}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in {"errors", "quiet", "redact", "safe_names"}:
        return "base"
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        source = layer(module)
        assert source in ALLOWED, f"{module}: package {source!r} has no place in the layers"
        for target in sorted(targets):
            if layer(target) not in ALLOWED[source]:
                bad.append(f"{module} ({source}) imports {target} ({layer(target)})")
    return bad


def test_no_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_each_layer_imports_only_the_layers_below() -> None:
    assert violations(import_graph()) == []


def test_lazy_reexports() -> None:
    """``lossaudit.audit`` and ``lossaudit.keras.AuditCallback`` come from the api layer (and the
    error types from the base), imported in ``__getattr__`` only: a top-level import there would
    load the api with the package."""
    found = lazy_reexports()
    assert found.get("lossaudit") == {"lossaudit.api.audit", "lossaudit.api.report", "lossaudit.errors"}
    assert found.get("lossaudit.keras") == {"lossaudit.api.callback"}
    for package, targets in found.items():
        assert {layer(t) for t in targets} <= {REEXPORT_LAYER, "base"}, package
    import importlib

    import lossaudit

    for name in ("audit", "check", "compare", "AuditReport", "AuditFailedError", "BadInputError"):
        assert name in lossaudit.__all__
    # The names resolve without importing Keras (lossaudit.keras.AuditCallback would).
    assert callable(importlib.import_module("lossaudit").audit)


def test_core_imports_no_adapter() -> None:
    graph = import_graph()
    core = {m: t for m, t in graph.items() if layer(m) == "core"}
    assert core, "the core package was not found"
    assert {t for ts in core.values() for t in ts if layer(t) not in CORE} == set()


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "lossaudit" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "lossaudit"


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        (  # a circle hidden under TYPE_CHECKING and in a function
            {
                "__init__.py": "",
                "core/__init__.py": "",
                "core/a.py": "if TYPE_CHECKING:\n    from lossaudit.core.b import B\n",
                "core/b.py": "def f():\n    from lossaudit.core import a\n",
            },
            "cycle",
        ),
        (  # core importing an adapter, inside a function
            {
                "__init__.py": "",
                "core/__init__.py": "",
                "core/a.py": "def f():\n    from lossaudit.keras.static import read_model_file\n",
                "keras/__init__.py": "",
                "keras/static.py": "def read_model_file(): ...\n",
            },
            "layer",
        ),
        (  # an adapter importing the pipeline
            {
                "__init__.py": "",
                "sinks/__init__.py": "",
                "sinks/x.py": "import lossaudit.pipeline.stages\n",
                "pipeline/__init__.py": "",
                "pipeline/stages.py": "",
            },
            "layer",
        ),
        (  # a circle of relative imports, one of them from a package __init__
            {
                "__init__.py": "",
                "core/__init__.py": "from .a import A\n",
                "core/a.py": "from . import b\n",
                "core/b.py": "from lossaudit.core import A\n",
            },
            "relative-cycle",
        ),
        (  # core importing an adapter through a relative import
            {
                "__init__.py": "",
                "core/__init__.py": "",
                "core/a.py": "from ..keras import static\n",
                "keras/__init__.py": "",
                "keras/static.py": "",
            },
            "layer",
        ),
    ],
    ids=[
        "hidden-cycle",
        "core-imports-adapter",
        "adapter-imports-pipeline",
        "relative-cycle",
        "relative-core-imports-adapter",
    ],
)
def test_the_checks_are_not_blind(tmp_path: Path, files: dict[str, str], kind: str) -> None:
    graph = import_graph(_write(tmp_path, files))
    if kind == "cycle":
        assert cycles(graph) == [["lossaudit.core.a", "lossaudit.core.b"]]
    elif kind == "relative-cycle":
        assert cycles(graph) == [["lossaudit.core", "lossaudit.core.a", "lossaudit.core.b"]]
    else:
        assert violations(graph)
