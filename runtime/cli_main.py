"""The one way every command-line tool of the project runs its subcommand handlers."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


def run_command(prog: str, args: argparse.Namespace, errors: tuple[type[BaseException], ...], *,
                interrupted: str = "interrupted") -> int:
    """Call `args.handler(args)`: a known error becomes one line on stderr and exit 2, Ctrl-C exit 130."""
    try:
        return args.handler(args)
    except errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
