"""Writes and actions on providers, nodes and agents. Views, tasks and commands call these."""
