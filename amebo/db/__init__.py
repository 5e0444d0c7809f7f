"""The database layer: SQL loading, migrations, connection pools and the embedded server.

It knows nothing of HTTP or delivery; everything above it talks to PostgreSQL through it.
"""

from amebo.db import json as _json  # noqa: F401  (sets psycopg's JSON codec once)
