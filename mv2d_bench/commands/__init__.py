"""Subcommands of ``mv2d-bench``, one module each, each with ``register(subparsers)``."""
