"""The examples in the package's docstrings run and print what they show (``# doctest: +SKIP`` ones
need real logs)."""

import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import tlslog

matplotlib.use("Agg")

MODULES = sorted(m.name for m in pkgutil.iter_modules(tlslog.__path__) if m.name != "__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"tlslog.{name}")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, extraglobs={"tlslog": tlslog}, verbose=False)
    assert result.failed == 0
