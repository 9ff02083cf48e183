"""Monitoring reads everything else; the tables it owns are the alerts' (`monitoring.alerts`)."""

from monitoring.alerts.models import (  # noqa: F401
    AlertChannel,
    AlertDelivery,
    AlertIncident,
    AlertRule,
    Notification,
    NotificationSeen,
    WorkspaceAlerts,
)
