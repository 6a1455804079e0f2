"""Outbound entrypoints: the `leadctl outbound` command, its consume loop and its HTTP
endpoints."""
