"""The one way every command-line tool of the project runs its subcommand handlers."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


def run_command(prog: str, args: argparse.Namespace, errors: tuple[type[BaseException], ...], *,
                interrupted: str = "interrupted") -> int:
    """Call `args.handler(args)`: a known error becomes one line on stderr and exit 2, Ctrl-C exit 130."""
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into `head` and the like; before `errors`, which may hold OSError
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except errors as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
