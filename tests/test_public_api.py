"""`__all__` is the public surface, exactly (httpx's test)."""

from __future__ import annotations

from types import ModuleType

import prefect_ft


def test_all_is_the_public_surface() -> None:
    public = {
        n
        for n, v in vars(prefect_ft).items()
        if not n.startswith("_") and not isinstance(v, ModuleType)
    }
    assert sorted(prefect_ft.__all__) == sorted(public)


def test_every_exported_name_resolves() -> None:
    for name in prefect_ft.__all__:
        assert getattr(prefect_ft, name) is not None
