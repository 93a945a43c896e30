"""The package's imports read one way: from the SDK side down to plain data, never back up.

The layers are listed here and in docs/architecture.md. A module may import from its own layer
or any layer below; a new module must be placed in a layer (the test names it otherwise).
Imports under `if TYPE_CHECKING:` count too: a circle of type hints is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "target_spotify_conversions"

# Bottom first. Each module once.
LAYERS: tuple[tuple[str, ...], ...] = (
    # plain values and problems, no logic of the run
    ("__init__", "values", "problems", "escaping", "schema_types", "schema_memo", "wire",
     "line_splitter"),
    # the mapping of one record and what may be shown of it: pure functions, no I/O
    ("hashing", "privacy", "unreadable", "event_id", "event_time", "input_formats", "flattening",
     "event_names", "taxonomy", "validation", "routing", "mapping"),
    # the mapping workers: a chunk in, results out; the processes that run it
    ("chunk_codec", "worker_pool"),
    # the reading process's parts: input, settings, delivery, bookkeeping
    ("messages", "reader", "batch_files", "stream_maps", "output_paths", "settings", "retries",
     "concurrency", "transport", "ledger", "ledger_sql", "ledger_open", "client",
     "delivery", "connection_delivery", "checkpoints", "report", "rejects", "sandbox"),
    # one run, outside the SDK
    ("pipeline",),
    # the SDK side
    ("sdk_seams", "sinks", "target", "ledger_cli"),
)
LAYER_OF = {module: n for n, layer in enumerate(LAYERS) for module in layer}


def package_imports() -> dict[str, set[str]]:
    """Each module's imports of other package modules, read from its source."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                imports |= {name.split(".")[0] for name in names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                f"{PACKAGE.name}."
            ):
                imports.add(str(node.module).split(".")[1])
            elif isinstance(node, ast.Import):
                imports |= {
                    alias.name.split(".")[1]
                    for alias in node.names
                    if alias.name.startswith(f"{PACKAGE.name}.")
                }
        graph[path.stem] = imports - {path.stem}
    return graph


def test_every_module_has_a_layer():
    unplaced = sorted(set(package_imports()) - set(LAYER_OF))
    assert not unplaced, f"place these modules in LAYERS (and docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("module", sorted(package_imports()))
def test_imports_run_down_the_layers(module):
    upward = sorted(
        imported
        for imported in package_imports()[module]
        if LAYER_OF.get(imported, -1) > LAYER_OF.get(module, len(LAYERS))
    )
    assert not upward, f"{module} imports from a higher layer: {upward}"


def test_no_circle_of_imports():
    graph = package_imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join((*path[path.index(module):], module)))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_imports_that_ran_back_up_are_gone():
    """The ones a review found: wording, counts, errors and defaults taken from above."""
    graph = package_imports()
    for low, high in (
        ("pipeline", "reader"),
        ("chunk_codec", "report"),
        ("delivery", "client"),
        ("settings", "worker_pool"),
        ("sinks", "target"),
    ):
        assert high not in graph[low], f"{low} imports {high}"
