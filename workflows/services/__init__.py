"""Writes and actions on workflows and runs; views, tasks, commands and the executor call these."""
