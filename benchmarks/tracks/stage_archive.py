"""Keep a bench's stage cache across machines: ``save`` adds the cache's complete stages to the
archive (without model weights, see :mod:`cwpo.experiments.archive`), ``restore`` writes the
archive's stages into a new cache. The recipe benches do both on their own around each run; this
is for a run stopped from outside (the end of a session) before it could.

    .venv/bin/python benchmarks/stage_archive.py save|restore [--cache runs/bench/cache] [--archive benchmarks/archive/bench]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ARCHIVE, sync_archive  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("--cache", default=str(REPO / "runs" / "bench" / "cache"), help="the stage cache")
    parser.add_argument("--archive", default=str(ARCHIVE), help="the archive folder")
    args = parser.parse_args()
    sync_archive(Path(args.archive), Path(args.cache), restore=args.action == "restore")


if __name__ == "__main__":
    main()
