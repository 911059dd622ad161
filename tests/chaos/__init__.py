"""Fault-injection suites for kbt (shard kills, S3 faults, operator kills, disk full, OOM) and
their tooling: the S3 fault proxy, the malformed-input corpus, the spec fuzz strategies and the
trial recorder that `bench/chaos_report.py` summarises."""
