"""``dpbench`` command line: argument parsing only; each sub-command lives in
``dpbench/commands/<name>.py`` (``add_parser(subparsers)`` sets ``func``).

User errors (:class:`dpbench.params.UsageError`, unknown names) print one line to stderr
and exit with code 2, without a traceback.

Start-up is kept short: building the parser imports every command module, so those
import torch, scipy, numpy, pluggy and tabulate inside their handlers, never at module level
(``tests/test_startup.py`` checks ``--help``, ``--version`` and ``list``).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from dpbench import __version__
from dpbench.params import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def format_help(self) -> str:
        """Help without the reStructuredText markup of the docstrings it shows."""
        return super().format_help().replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dpbench",
        description="Benchmark differentiable models (attention, memory, plasticity, hybrids) "
        "against RNN baselines on dynamical systems.",
    )
    parser.add_argument("--version", action="version", version=f"dpbench {__version__}")
    parser.add_argument("--strict", action="store_true",
                        help="fail when a third-party plugin fails to load (also $DPBENCH_STRICT_PLUGINS=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import dpbench.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"dpbench.commands.{info.name}").add_parser(sub)
    return parser


def one_line(text: str) -> str:
    """Escape control characters (a user's newline must not split the error line)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's mistake (one line, exit 2) rather than a bug."""
    if isinstance(exc, UsageError):
        return True
    plugins = sys.modules.get("dpbench.plugins")  # not imported: it cannot have raised
    return plugins is not None and isinstance(exc, (plugins.UnknownName, plugins.PluginError))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dpbench`` console script; returns the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.strict:
            import os

            os.environ["DPBENCH_STRICT_PLUGINS"] = "1"
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("dpbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not user_error(exc):
            raise
        print(f"dpbench: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
