"""One thin module per stage: each defines HELP, ``configure(parser)`` and ``run(args) -> int``."""
