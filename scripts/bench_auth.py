"""A flood of bad basic-auth logins against the metrics endpoint, without and with the caps.

    .venv/bin/python scripts/bench_auth.py [--requests 200] [--threads 16] [--iterations 600000]

Starts ``serve()`` on 127.0.0.1 with a basic-auth file (PBKDF2 at --iterations), lets a scraper
verify its credentials once (cached from then on, as before the caps), then sends --requests
wrong passwords from --threads threads while the scraper keeps scraping every 0.1 s. Printed side
by side: "uncapped" (the same server with the caps lifted: every bad login hashes, as many at
once as there are requests, like the code before issue 21 item 15) and "capped" (the defaults:
1 failed hash per second per client, burst 5, one hash at a time). Columns: password hashes
computed, CPU seconds of the process during the flood, flood wall time, the valid scrapes'
median and worst latency, and the answers (401/429).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import streammetric as sm
from streammetric.export import _auth, basic_auth_line, serve

PASSWORD = "right horse"


def get(url: str, password: str) -> int:
    token = base64.b64encode(f"scraper:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def flood(users: Path, capped: bool, requests: int, threads: int) -> dict[str, float | str]:
    with serve(sm.MAE().update([0.0], [1.0]), port=0, basic_auth_file=users) as server:
        if not capped:  # the pre-cap behaviour: no bucket, no limit on parallel hashes
            lifted = _auth.BasicAuth(
                _auth.load_basic_auth_file(users),
                failures_per_second=1e12,
                failure_burst=10**12,
                max_parallel=10**6,
            )
            server._server.auth = server.auth = lifted
        auth = server.auth
        assert auth is not None and get(server.url, PASSWORD) == 200
        before = auth.hashes
        statuses: list[int] = []
        latencies: list[float] = []
        running = threading.Event()
        running.set()

        def bad(worker: int) -> None:
            for i in range(worker, requests, threads):
                statuses.append(get(server.url, f"guess-{i}"))

        def scrape() -> None:
            while running.is_set():
                start = time.perf_counter()
                assert get(server.url, PASSWORD) == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.1)

        cpu, wall = time.process_time(), time.perf_counter()
        workers = [threading.Thread(target=bad, args=(w,)) for w in range(threads)]
        scraper = threading.Thread(target=scrape)
        scraper.start()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        running.clear()
        scraper.join()
    return {
        "hashes": auth.hashes - before,
        "cpu_s": cpu,
        "wall_s": wall,
        "scrape_median_s": statistics.median(latencies),
        "scrape_max_s": max(latencies),
        "answers": f"{statuses.count(401)}x401 {statuses.count(429)}x429",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=_auth.DEFAULT_ITERATIONS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        users = Path(folder) / "users.txt"
        users.write_text(basic_auth_line("scraper", PASSWORD, iterations=args.iterations) + "\n")
        results = {
            "uncapped": flood(users, False, args.requests, args.threads),
            "capped": flood(users, True, args.requests, args.threads),
        }
    print(
        f"{args.requests} bad logins from {args.threads} threads, PBKDF2 {args.iterations} "
        f"iterations, a cached scraper every 0.1 s"
    )
    print(f"{'':18}" + "".join(f"{name:>20}" for name in results))
    for key in results["uncapped"]:
        cells = "".join(
            f"{v:>20.3f}" if isinstance(v, float) else f"{v!s:>20}"
            for v in (results[name][key] for name in results)
        )
        print(f"{key:18}{cells}")


if __name__ == "__main__":
    main()
