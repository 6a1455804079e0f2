"""Outbound entrypoints: the `leadctl outbound` command and its HTTP endpoints."""
