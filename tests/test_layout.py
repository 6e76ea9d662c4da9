"""The package's layering: subpackages whose imports run one way (no import circle), the core
reads no files, the PSF package shares the core's cubic, few modules at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_zssr

PACKAGE = Path(napari_zssr.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of a module outside ``if TYPE_CHECKING:`` blocks (imports for annotations
    only, which never run)."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path, runtime: bool = False) -> set[str]:
    """Modules imported by a file, relative imports resolved against the package; with
    ``runtime``, only the imports that run (and ``from package import submodule`` counted as
    an import of the submodule)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _runtime_nodes(tree) if runtime else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            if runtime:
                names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _import_graph() -> dict[str, set[str]]:
    """The package's modules and, for each, the package's modules it imports at run time."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, runtime=True) if m in paths and m != name}
        for name, path in paths.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_anywhere():
    circles = _circles(_import_graph())
    assert not circles, f"import circles: {circles}"


# The layers, top to bottom: a module may import its own layer and the layers below it.
LAYERS = [
    {"cli", "napari", "_widget", "_sample_data"},
    {"file_batch"},
    {"pipeline"},
    {"arrays"},
    {"psf"},
    {"io"},
    {"core"},
    {"_version"},
]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    return None


def test_imports_run_down_the_layers():
    wrong = []
    for module, imported in _import_graph().items():
        here = _layer(module)
        for other in imported:
            there = _layer(other)
            if here is not None and there is not None and there < here:
                wrong.append(f"{module} -> {other}")
    assert not wrong, "imports that run back up the layers: " + ", ".join(sorted(wrong))


def test_at_most_three_modules_beside_the_package_init():
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 3, modules


def _private_names_imported_across_modules() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [
                    f"{path.relative_to(PACKAGE)}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    return sorted(found)


def test_no_private_name_is_imported_from_another_module():
    found = _private_names_imported_across_modules()
    assert not found, found


def _code_lines(node: ast.AST) -> int:
    """Lines of a function or class, its docstrings excluded."""
    lines = set(range(node.lineno, node.end_lineno + 1))
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if (
            isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            lines -= set(range(body[0].lineno, body[0].end_lineno + 1))
    return len(lines)


def test_no_function_over_80_code_lines_and_no_class_over_400():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            limit = {ast.FunctionDef: 80, ast.AsyncFunctionDef: 80, ast.ClassDef: 400}.get(
                type(node)
            )
            if limit is not None and _code_lines(node) > limit:
                long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({_code_lines(node)})")
    assert not long, long


def test_core_imports_no_files_front_ends_or_gui():
    banned = ("napari_zssr.io", "napari_zssr.psf", "napari_zssr.cli", "napari", "qtpy", "magicgui")
    for path in sorted((PACKAGE / "core").glob("*.py")):
        if path.name == "psf.py":  # the lazy compatibility alias of napari_zssr.psf
            continue
        found = [
            name
            for name in _imports(path)
            if any(name == b or name.startswith(b + ".") for b in banned)
        ]
        assert not found, f"{path.name} imports {found}"


def test_psf_package_reads_no_files_itself():
    for path in sorted((PACKAGE / "psf").glob("*.py")):
        if path.name == "__init__.py":  # re-exports io.load_psf_file
            continue
        assert not any(n.startswith("napari_zssr.io") for n in _imports(path)), path.name
        assert "tifffile" not in _imports(path), path.name


def test_one_cubic_for_images_and_psfs():
    from napari_zssr.core import resize
    from napari_zssr.psf import geometry

    assert geometry.cubic is resize.cubic


def test_old_psf_path_still_works():
    from napari_zssr.core.psf import kernel_from_optics
    from napari_zssr.psf import kernel_from_optics as new

    assert kernel_from_optics is new


def test_public_entry_points_are_lazy():
    import subprocess
    import sys

    code = (
        "import sys, napari_zssr\n"
        "print('TORCH', 'torch' in sys.modules)\n"
        "from napari_zssr import isotropic_z, super_resolve\n"
        "print(super_resolve.__module__, isotropic_z.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in done.stdout
    assert "napari_zssr.arrays.upscale napari_zssr.arrays.isotropic" in done.stdout
