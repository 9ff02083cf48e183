"""Alerts: rules on a measure over a window, evaluated periodically exactly once, with incidents
that fire once and resolve once, sent in-app (live), by e-mail and by signed webhooks.

Modules: `models`, `kinds` (units and defaults), `measures`, `evaluation` (claims and the incident
state machine), `notify`, `deliveries` (the retried queue), `webhooks` (signing and the outbound
policy), `rounds` (the periodic entry point), and the edges: `views`, `consumers`, `forms`.
"""
