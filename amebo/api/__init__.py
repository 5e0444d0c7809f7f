"""The REST API: thin aiohttp handlers that parse, check, call one service, serialise."""
