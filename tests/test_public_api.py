"""`__all__` is the public surface, exactly (httpx's test), and `import prefect_ft` stays light."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import prefect_ft


def test_all_is_the_public_surface() -> None:
    eager = {
        n
        for n, v in vars(prefect_ft).items()
        if not n.startswith("_") and not isinstance(v, ModuleType)
    }
    lazy = set(prefect_ft._LAZY)
    assert sorted(prefect_ft.__all__) == sorted(eager | lazy)


def test_every_exported_name_resolves() -> None:
    for name in prefect_ft.__all__:
        assert getattr(prefect_ft, name) is not None, name


def test_importing_the_package_does_not_import_prefect() -> None:
    code = "import sys, prefect_ft; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
