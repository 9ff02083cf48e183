"""Prometheus exposition of the studio: `/metrics` (see collector.py for what and why)."""
