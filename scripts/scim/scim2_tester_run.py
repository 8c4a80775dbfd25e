"""Runs scim2-tester (https://scim2-tester.readthedocs.io) against a live
rosterd: discovery, then create, read, list, replace, patch and delete of
Users and Groups, every attribute the server publishes.

    python scim2_tester_run.py BASE_URL TOKEN

Prints one line per check and a summary; exits 1 when any check failed.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client, resource_types=["User", "Group"])
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.name] = counts.get(r.status.name, 0) + 1
        if r.status not in (Status.SUCCESS, Status.SKIPPED):
            print(f"{r.status.name:8} {r.title}: {r.reason}")
    failed = sum(n for s, n in counts.items() if s not in ("SUCCESS", "SKIPPED"))
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    print(f"scim2-tester: {len(results)} checks: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
