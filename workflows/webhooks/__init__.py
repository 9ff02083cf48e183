"""Webhooks: signing and posting (`signing`), the delivery queue every outgoing message shares
(`queue`), and the workspaces' subscriptions to run and alert events."""
