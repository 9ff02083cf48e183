"""Monitoring only reads; it owns no tables."""
