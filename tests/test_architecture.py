"""The architecture as contracts: the layers of DESIGN.md (pyproject's [tool.importlinter]),
no import cycles between modules (function-level imports included), small modules, and
the rules' and datasets' names known only to their registries."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from ablate.data import DATASETS
from ablate.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ablate"
MAX_LINES = 450


def test_every_package_imports_only_from_the_layers_below_it_and_the_engine_needs_no_optuna_or_mlflow():
    # in a process of its own: import-linter configures logging, which disables every
    # logger that exists (ablate's outage warnings among them)
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, directly or around a loop
    (Tarjan's strongly connected components of more than one module, or a self-import)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in imports.get(module, ()):
                found.append(sorted(group))

    for module in list(imports):
        if module not in index:
            visit(module)
    return found


def ablate_imports() -> dict[str, set[str]]:
    graph = grimp.build_graph("ablate")
    imports = {}
    for module in graph.modules:
        # a package's __init__ re-exporting its modules is not a cycle with them
        imports[module] = {m for m in graph.find_modules_directly_imported_by(module)
                           if not module.startswith(m + ".")}
    return imports


def test_no_module_reaches_itself_through_its_imports():
    assert cycles(ablate_imports()) == []


def test_the_cycle_check_finds_a_loop_of_three_and_a_self_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"e": {"e"}}) == [["e"]]


def test_no_module_is_longer_than_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def strings_in_code(path: Path) -> set[str]:
    """The string constants of a module, its docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_rule_and_dataset_names_are_written_only_in_their_registries():
    written = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        names = set()
        if relative[0] != "rules":
            names |= set(RULES.names())
        if relative[0] != "data":
            names |= set(DATASETS.names())
        if found := strings_in_code(path) & names:
            written[str(path.relative_to(ROOT))] = sorted(found)
    assert written == {}


def test_the_name_check_sees_a_name_written_outside_its_registry(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Says bp in its docstring, which is fine."""\nRULE = "dgl"\n')
    assert strings_in_code(module) & set(RULES.names()) == {"dgl"}
