"""amebo: a schema registry and reliable event broadcast runtime on PostgreSQL."""

__version__ = "0.1.0"
