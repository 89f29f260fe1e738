"""Keep the recipe benches' stage cache across machines, by hand and never during a run.

``restore`` writes the archive's stages into a cache (the recipe benches also do this before each
run); ``save`` adds the cache's complete stages to the archive, without model weights (see
:mod:`benchmarks.tracks.archived_stages`). A bench run only reads the archive: saving is this explicit
command, so a run changes no tracked file but its own results.

    python -m benchmarks.tracks.stage_archive save|restore [--cache runs/bench/cache] [--archive benchmarks/archive/bench]
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.result_files import REPO, bench_parser
from benchmarks.tracks.archived_stages import archive_stages, restore_stages
from cwpo.atomic_files import read_json
from cwpo.runtime import bf16_is_faster

# the benches' stage cache without model weights: a bench longer than one sitting, on machines
# that keep no files between sittings, continues from it (benchmarks/archive/README.md)
ARCHIVE = REPO / "benchmarks" / "archive" / "bench"
CACHE = REPO / "runs" / "bench" / "cache"


def restore_archive(archive: Path, cache: Path) -> None:
    """Write the archive's stages that the cache lacks into it, and say so."""
    done = restore_stages(archive, cache)
    if done:
        print(f"restored {len(done)} stages from {archive}")
    hint = precision_hint(archive)
    if hint:
        print(hint)


def save_archive(cache: Path, archive: Path) -> None:
    """Add the cache's complete stages that the archive lacks to it (model weights left out)."""
    out = archive_stages(cache, archive)
    if out["archived"]:
        print(f"archived {len(out['archived'])} new stages in {archive} ({out['in_archive']} in all)")
    else:
        print(f"nothing new to archive in {archive} ({out['in_archive']} stages)")


def precision_hint(archive: Path) -> str | None:
    """Stage keys hold the precision a machine decided for ``bf16: auto``: where the archive's SFT
    stages were trained with another one, this machine would compute everything anew. Say how to
    continue them instead (``CWPO_BF16``), never decide it silently."""
    decided = bf16_is_faster()
    used = set()
    for manifest in (archive / "stages").glob("sft-*/manifest.json"):
        value = read_json(manifest).get("config", {}).get("config", {}).get("sft", {}).get("bf16")
        if isinstance(value, bool) and value != decided:
            used.add(value)
    if not used:
        return None
    value = sorted(used)[0]
    return (
        f"note: the archive's SFT stages were trained with bf16={str(value).lower()}, this machine decides "
        f"bf16={str(decided).lower()}: run with CWPO_BF16={int(value)} to continue them (as is, their "
        "later stages are computed anew)"
    )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("--cache", type=Path, default=CACHE, help="the stage cache (default: %(default)s)")
    parser.add_argument(
        "--archive", type=Path, default=ARCHIVE, help="the archive folder (default: %(default)s)"
    )
    args = parser.parse_args()
    if args.action == "restore":
        restore_archive(args.archive, args.cache)
    else:
        save_archive(args.cache, args.archive)


if __name__ == "__main__":
    main()
