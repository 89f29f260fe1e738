"""Recipes shipped inside the package (``cwpo/configs``) and in the repository (``configs/``)."""

from __future__ import annotations

from pathlib import Path

from cwpo.errors import ConfigError

PACKAGE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def packaged_recipes() -> dict[str, Path]:
    found = {}
    repo_configs = Path(__file__).resolve().parents[3] / "configs"
    for folder in (PACKAGE_CONFIGS, repo_configs):
        if folder.is_dir():
            for p in sorted(folder.rglob("*.yaml")):
                found.setdefault(str(p.relative_to(folder).with_suffix("")), p)
    return found


def find_recipe(ref: str) -> Path:
    path = Path(ref)
    if path.exists():
        return path
    recipes = packaged_recipes()
    if ref in recipes:
        return recipes[ref]
    raise ConfigError(f"recipe {ref!r} not found: not a file and not one of {sorted(recipes)}")
