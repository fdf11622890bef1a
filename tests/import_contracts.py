"""initsuite's own import-linter contract type (pyproject.toml, ``contract_types``), run by
``lint-imports`` in ``make lint`` and in the suite (tests/test_architecture.py).

``acyclic_modules``: no import cycle among the modules of a package, its ``__init__`` modules
included. The built-in ``acyclic_siblings`` takes each child whole and never looks at the
parent, so it misses a module that imports its own package's ``__init__`` while that
``__init__`` imports it (``initsuite.report`` ⇄ ``initsuite.report.plan``).
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, fields, output


class AcyclicModulesContract(Contract):
    """Each of ``packages``, at module level: no module reaches itself through its imports."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        cycles: list[tuple[list[str], list[str]]] = []  # (its modules, its shortest cycle)
        seen: set[str] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            inside = {package} | graph.find_descendants(package)
            for module in sorted(inside):
                if module in seen:  # in a cycle already reported
                    continue
                # the modules it imports (at any remove) that also import it: its cycles
                loop = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
                if not loop:
                    continue
                seen |= loop | {module}
                shortest = min(
                    (
                        graph.find_shortest_chain(importer=imported, imported=module)
                        for imported in graph.find_modules_directly_imported_by(module) & loop
                    ),
                    key=len,
                )
                cycles.append((sorted(loop | {module}), [module, *shortest]))
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for modules, cycle in check.metadata["cycles"]:
            output.print_error(f"Import cycle among {', '.join(modules)}:")
            output.print_error(f"  {' -> '.join(cycle)}")
            output.new_line()
