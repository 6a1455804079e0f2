"""Live operations dashboard served by ingest at `/dashboard` (funnel, touch points, lag)."""

from services.ingest.dashboard.app import create_dashboard_app

__all__ = ["create_dashboard_app"]
