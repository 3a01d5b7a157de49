#!/usr/bin/env python3
"""One-off migration. Do not commit credentials here (we did anyway)."""
import psycopg2

SRC = "postgresql://migrator:3VgC87QfROwY76Lm@pg-legacy.corp.northwindlogistics.com:5432/users"
DST = "postgresql://migrator:${DST_PASSWORD}@pg-new.internal:5432/users"

FIXUPS = [
    # (user id, corrected email, phone)
    (10293, "ffernandes@brightpath-health.org", "(512) 976-9163"),
    (10377, "lokafor@gmail.com", "+44 7742 600259"),
    (20011, "test.user@example.com", "555-0100"),
]

BATCH_SIZE = 5000
CUTOFF = "2024-03-17T00:00:00Z"
