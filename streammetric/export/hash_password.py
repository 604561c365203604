"""Print a basic-auth file line for :func:`streammetric.export.serve`.

Usage: ``python -m streammetric.export.hash_password USER [--iterations N] >> users.txt``.
The password is asked for on the terminal (twice), or read from the first line of stdin when
stdin is not a terminal. The line has the form ``USER:pbkdf2_sha256$iterations$salt$key``
(iterations at most 2,000,000). With ``--bcrypt [--cost N]`` (the ``bcrypt`` package,
``streammetric[auth]``) it is ``USER:$2b$N$...``: the hash after ``USER:`` is what
``basic_auth_users`` of a ``--web-config`` file takes.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .._exceptions import ConfigError
from ._auth import BCRYPT_MAX_COST, DEFAULT_ITERATIONS, _bcrypt, basic_auth_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streammetric.export.hash_password",
        description="Print USER:pbkdf2_sha256$... (or USER:$2b$... with --bcrypt) for a "
        "basic-auth file of the metrics endpoint.",
    )
    parser.add_argument("user")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--bcrypt", action="store_true", help="a bcrypt hash instead")
    parser.add_argument("--cost", type=int, default=10, help="bcrypt cost (default 10)")
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
        if args.bcrypt:
            line = _bcrypt_line(args.user, password, args.cost)
        else:
            line = basic_auth_line(args.user, password, iterations=args.iterations)
    except ConfigError as exc:
        print(f"hash_password: {exc}", file=sys.stderr)
        return 2
    print(line)
    return 0


def _bcrypt_line(user: str, password: str, cost: int) -> str:
    if not 4 <= cost <= BCRYPT_MAX_COST:
        raise ConfigError(f"`--cost` must be in 4..{BCRYPT_MAX_COST}, got {cost}")
    data = password.encode("utf-8")
    if len(data) > 72:
        raise ConfigError("bcrypt uses at most 72 bytes of a password; this one is longer")
    bcrypt = _bcrypt()
    hashed = bcrypt.hashpw(data, bcrypt.gensalt(rounds=cost)).decode("ascii")
    basic_auth_line(user, "", iterations=1)  # checks the user name the same way
    return f"{user}:{hashed}"


if __name__ == "__main__":
    sys.exit(main())
