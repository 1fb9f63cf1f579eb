"""`make bench`: throughput and latency figures measured on this machine."""
