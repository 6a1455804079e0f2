"""Outbound use cases: handle one touch-point command, deliver it, reconcile, consume."""
