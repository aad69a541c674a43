#!/usr/bin/env python3
"""Writes a KOMpass data directory of N_USERS x N_FILES route files of SIZE bytes each.

Usage: make_files.py DIR USERS FILES_PER_USER SIZE [USER_PREFIX]
Layout as kompass's local store expects: DIR/routes/{user}/{name}. The content is
deterministic (seeded per file) and distinct per file, so no two objects are identical.
"""
import hashlib
import os
import sys


def main():
    root, users, per_user, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    prefix = sys.argv[5] if len(sys.argv) > 5 else "bench-u"
    for u in range(users):
        user = f"{prefix}{u:02d}"
        d = os.path.join(root, "routes", user)
        os.makedirs(d, exist_ok=True)
        for i in range(per_user):
            seed = hashlib.sha256(f"{user}/{i}".encode()).digest()
            body = (seed * (size // len(seed) + 1))[:size]
            with open(os.path.join(d, f"route-{i:05d}.json"), "wb") as f:
                f.write(body)


if __name__ == "__main__":
    main()
