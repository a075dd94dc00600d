"""kmlc's packages load their names on first use, and no lazily loaded name
is shadowed by a submodule of the same name."""

import importlib
import subprocess
import sys
import textwrap

import pytest

LAZY_PACKAGES = ("kmlc", "kmlc.data", "kmlc.export", "kmlc.serving")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_no_lazy_name_is_named_like_a_submodule(package):
    # Importing `package.x` sets the package's attribute `x` to the module,
    # which would hide a lazily loaded function `x` from then on: such a
    # name must be bound when the package is imported (checked afresh).
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, types
        package = importlib.import_module({package!r})
        submodules = {{m.name for m in pkgutil.iter_modules(package.__path__)}}
        bound = set(vars(package))
        print(sorted(
            name for name in set(package.__all__) & submodules
            if name not in bound
            and not isinstance(getattr(package, name), types.ModuleType)
        ))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr[-2000:]


def test_a_function_stays_itself_after_its_module_is_imported():
    code = textwrap.dedent(
        """
        import kmlc.data
        import kmlc.data.sources  # imports kmlc.data.split, the module
        import kmlc.data.data_check
        assert callable(kmlc.data.split) and callable(kmlc.data.check)
        assert kmlc.data.split.__module__ == "kmlc.data.split"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip().endswith("ok"), result.stderr[-2000:]
