"""No import cycles among memalert's modules, whether an import sits at the top of a
module, inside a function or under `if TYPE_CHECKING:` (docs/architecture.md).

The layers contract (pyproject's [tool.importlinter]) keeps subpackages in order
but not the modules inside one subpackage, nor the `__init__` modules; this
checks every module against every other.
"""

from __future__ import annotations

import grimp

PACKAGES = ("memalert.engine", "memalert.notifiers")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's components of more than one module (a module importing itself is not a cycle)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=False)
    assert len(graph.modules) > 50  # the packages were found, so an empty answer means something
    cycles = []
    for component in strongly_connected(graph):
        first, *rest = component
        back = graph.find_shortest_chain(importer=rest[0], imported=first) or ()
        forth = graph.find_shortest_chain(importer=first, imported=rest[0]) or ()
        cycles.append(" -> ".join([*forth, *back[1:]]) + f" (component: {', '.join(component)})")
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
