"""The same work done by others, measured in the same run: the machine's raw limits,
procrastinate, and the original amebo 0.9.6."""
