"""Test harnesses shared by the integration, chaos and e2e suites and the benchmarks."""
