"""Command line: ``kt-lr demo`` / ``python -m kt_lr demo``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``kt-lr <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: kt-lr demo [options]   (kt-lr demo --help for the options)")
        return 0 if args else 2
    if args[0] == "demo":
        from kt_lr import demo

        return demo.main(args[1:])
    print(f"kt-lr: unknown command {args[0]!r}; try `kt-lr demo`.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
