"""Import contracts: what a layer pulls in, no import cycles, scenario names = registry keys.

The engine is meant to be usable without the scenario schema, plotting or progress bars,
and `import sim` is lazy; a stray top-level import breaks that silently, so it is checked in
a fresh interpreter. Cycles are checked on the static import graph, type-only imports
included, because a cycle that works today by luck of import order breaks on the next edit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import grimp
import pytest
from builders import REPO, scenario

import sim
from sim.engine.router import ROUTERS
from sim.engine.scheduler import POLICIES
from sim.errors import InputError

HEAVY = ("pydantic", "yaml", "matplotlib", "tqdm")


# ---- what an import loads, in a fresh interpreter ------------------------------------------


def loaded_after(statement: str) -> set[str]:
    """Modules a fresh interpreter holds after running `statement` in the repository root."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def present(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The packages of `packages` of which some module is loaded."""
    return [p for p in packages if any(m == p or m.startswith(p + ".") for m in modules)]


def project_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "sim" or m.startswith("sim.")}


def test_import_sim_alone_loads_nothing_but_the_package() -> None:
    """`sim/__init__` resolves its names on first use: importing it costs no dependency."""
    modules = loaded_after("import sim")
    assert present(modules, ("simpy", "numpy", *HEAVY)) == []
    assert project_modules(modules) == {"sim"}


def test_tokenfactory_run_loads_only_what_a_run_needs() -> None:
    """The CLI imports the module of the command it runs, not the others: a plain run never
    loads matplotlib, the planner, the sweep executors or the report builder."""
    modules = loaded_after(
        "import contextlib, io\n"
        "from sim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['run', 'scenarios/chat-8b-h100.yaml', '--quiet']) == 0")
    assert present(modules, ("matplotlib", "dask", "sim.planning", "sim.report.document",
                             "sim.validation", "sim.cli.plan", "sim.cli.sweep")) == []


def test_import_sim_engine_loads_neither_simpy_nor_numpy() -> None:
    """`sim.engine` is lazy too: its names load their modules when first read."""
    modules = loaded_after("import sim.engine")
    assert present(modules, ("simpy", "numpy", *HEAVY)) == []
    assert project_modules(modules) == {"sim", "sim.engine"}


def test_reading_the_registries_does_not_load_the_engine_processes() -> None:
    """The scenario schema imports the scheduler and router registries; that must not pull
    in simpy or the replica and simulation modules."""
    modules = loaded_after("from sim.engine.scheduler import POLICIES\n"
                           "from sim.engine.router import ROUTERS")
    assert present(modules, ("simpy", *HEAVY)) == []
    assert "sim.engine.replica" not in modules
    assert "sim.engine.simulation" not in modules


def test_the_engine_imports_nothing_of_the_rest_of_the_simulator() -> None:
    """The whole engine (simulation, replica, fleet) loads numpy and simpy, no scenario
    schema, YAML, plotting or progress bars, and no project module outside sim.engine."""
    modules = loaded_after("import sim.engine\nimport sim.engine.simulation\n"
                           "sim.engine.simulate")
    assert present(modules, HEAVY) == []
    assert present(modules, ("simpy", "numpy")) == ["simpy", "numpy"]
    outside = {m for m in project_modules(modules)
               if m not in ("sim", "sim.engine") and not m.startswith("sim.engine.")}
    assert outside == set()


def test_the_probe_sees_a_heavy_import_and_the_lazy_names_resolve() -> None:
    """The control for the checks above: reading `sim.load_scenario` loads the scenario
    layer and pydantic, so an absence above is not the probe seeing nothing."""
    modules = loaded_after("import sim\nsim.load_scenario")
    assert "pydantic" in present(modules, HEAVY)
    assert "sim.scenario" in modules


# ---- no import cycles ------------------------------------------------------------------------

Graph = dict[str, set[str]]


def import_graph(*packages: str) -> Graph:
    """Module → modules it imports directly, within `packages` (type-only imports and imports
    inside functions included: grimp's defaults)."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (a closed path, first module repeated at the end) per strongly connected
    component that has one, by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

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
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for component in components:
        if len(component) > 1 or component[0] in graph.get(component[0], ()):
            found.append(_closed_path(graph, set(component)))
    return found


def _closed_path(graph: Graph, component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: a package whose `a` imports `b` and whose `b` imports `a` only under
    TYPE_CHECKING is reported as a cycle, so grimp's graph does hold type-only imports and
    the finder does report what it sees; an acyclic `c` is not reported."""
    package = tmp_path / "cyclefixture"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclefixture import b\n")
    (package / "b.py").write_text("from __future__ import annotations\n"
                                  "from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n"
                                  "    from cyclefixture.a import A\n")
    (package / "c.py").write_text("import cyclefixture.b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("cyclefixture")
    assert cycles(graph) == [["cyclefixture.a", "cyclefixture.b", "cyclefixture.a"]]
    assert cycles({"x": {"x"}}) == [["x", "x"]]
    assert cycles({"p": {"p.q"}, "p.q": set()}) == []


def test_there_are_no_import_cycles() -> None:
    graph = import_graph("sim", "calibration")
    assert "sim.engine.simulation" in graph  # the graph is the project's
    # `sim/__init__` imports sim.errors only under TYPE_CHECKING: the edge is in the graph.
    assert "sim.errors" in graph["sim"]
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(" → ".join(c) for c in found)


# ---- scheduler and router names --------------------------------------------------------------


def _listed_names(error: InputError) -> list[str]:
    """The names an InputError's `expected` part lists, in order."""
    return re.findall(r"'([^']*)'", error.expected)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_scheduler_policy_is_accepted(policy: str) -> None:
    loaded = sim.load_scenario(scenario(deployment__scheduler__policy=policy))
    assert loaded.deployment.scheduler.policy == policy


@pytest.mark.parametrize("router", list(ROUTERS))
def test_every_router_is_accepted(router: str) -> None:
    # A router that reads the replicas' prefix caches needs them on.
    cache = {"enabled": True} if ROUTERS[router].needs_prefix_cache else None
    loaded = sim.load_scenario(scenario(deployment__router=router,
                                        deployment__prefix_cache=cache))
    assert loaded.deployment.router == router


def test_an_unknown_policy_is_rejected_listing_every_policy() -> None:
    with pytest.raises(InputError) as caught:
        sim.load_scenario(scenario(deployment__scheduler__policy="round-robin"))
    assert caught.value.where == "deployment.scheduler.policy"
    assert _listed_names(caught.value) == list(POLICIES)
    for name in POLICIES:
        assert repr(name) in str(caught.value)


def test_an_unknown_router_is_rejected_listing_every_router() -> None:
    with pytest.raises(InputError) as caught:
        sim.load_scenario(scenario(deployment__router="static"))
    assert caught.value.where == "deployment.router"
    assert _listed_names(caught.value) == list(ROUTERS)
    for name in ROUTERS:
        assert repr(name) in str(caught.value)
