"""Command line: ``kt-lr <command> [options]`` (or ``python -m kt_lr``); ``kt-lr --help``."""

from __future__ import annotations

import argparse
import sys
import textwrap

from kt_lr import demo

#: Each command: (name, one-line help, the module whose ``add_arguments`` / ``run`` serve it).
COMMANDS = (("demo", "the demo search on a synthetic time series, before and after kt_lr", demo),)


def build_parser() -> argparse.ArgumentParser:
    """The ``kt-lr`` parser: one sub-command per entry of :data:`COMMANDS`.

    ``kt-lr --help`` lists every command with its options (argparse alone lists only
    the command names).
    """
    parser = argparse.ArgumentParser(
        prog="kt-lr",
        description="kt_lr: learning-rate probes for Keras models and Keras Tuner searches.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    sections = []
    for name, help_text, module in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(command)
        options = command.format_help().split("options:", 1)[-1].strip("\n")
        sections.append(f"kt-lr {name} options:\n{textwrap.indent(options, '  ')}")
    parser.epilog = "\n\n".join(sections)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``kt-lr`` with ``argv`` (default: the process's arguments); the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 2
    module = next(m for name, _, m in COMMANDS if name == args.command)
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
