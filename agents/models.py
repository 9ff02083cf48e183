"""Providers, credentials and agents arrive with the providers work."""
