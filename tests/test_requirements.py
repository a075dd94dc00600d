"""The base install covers every import kmlc makes outside its optional extras.

A user who ran `pip install kmlc` (or `pip install -e .`) must be able to run
every command the README shows; an optional piece must be imported lazily
(inside the function that needs it) and say which extra installs it. The
answer comes from the installed distribution's metadata
(`importlib.metadata.requires("kmlc")`), i.e. from setup.py as installed.
"""

import ast
import importlib.metadata
import pathlib
import re
import sys

import kmlc

PACKAGE_DIR = pathlib.Path(kmlc.__file__).parent

# Modules kmlc may import only lazily, and the extra that installs each.
OPTIONAL = {"tensorflow_datasets": "datasets"}


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_requirements():
    requirements = set()
    for line in importlib.metadata.requires("kmlc") or []:
        if "extra ==" in line:
            continue
        requirements.add(_canonical(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return requirements


def _imports():
    """(module, path, line, top_level) of each third-party import in kmlc."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root == "kmlc" or root in sys.stdlib_module_names:
                    continue
                found.append((root, path, node.lineno, id(node) in top_level))
    return found


def test_every_import_is_a_base_requirement_or_a_lazy_optional_one():
    distributions = importlib.metadata.packages_distributions()
    base = _base_requirements()
    problems = []
    for module, path, line, top_level in _imports():
        where = f"{path.relative_to(PACKAGE_DIR.parent)}:{line}"
        if module in OPTIONAL:
            if top_level:
                problems.append(f"{where}: optional {module} imported at top level")
            continue
        dists = {_canonical(d) for d in distributions.get(module, [])}
        if not dists & base:
            problems.append(
                f"{where}: {module} (from {sorted(dists) or 'no installed package'}) "
                "is not in setup.py's install_requires"
            )
    assert not problems, "\n".join(problems)


def test_the_optional_extras_exist():
    extras = set(importlib.metadata.metadata("kmlc").get_all("Provides-Extra"))
    assert set(OPTIONAL.values()) <= extras


def test_the_exports_the_readme_shows_need_no_extra():
    base = _base_requirements()
    for requirement in ("ai-edge-litert", "tf2onnx", "onnx", "onnxruntime"):
        assert requirement in base, requirement
