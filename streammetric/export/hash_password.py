"""Print a basic-auth file line for :func:`streammetric.export.serve`.

Usage: ``python -m streammetric.export.hash_password USER [--iterations N] >> users.txt``.
The password is asked for on the terminal (twice), or read from the first line of stdin when
stdin is not a terminal. The line has the form ``USER:pbkdf2_sha256$iterations$salt$key``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .._exceptions import ConfigError
from ._auth import DEFAULT_ITERATIONS, basic_auth_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streammetric.export.hash_password",
        description="Print USER:pbkdf2_sha256$... for a basic-auth file of the metrics endpoint.",
    )
    parser.add_argument("user")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    args = parser.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("hash_password: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("hash_password: the password must not be empty", file=sys.stderr)
        return 1
    try:
        print(basic_auth_line(args.user, password, iterations=args.iterations))
    except ConfigError as exc:
        print(f"hash_password: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
