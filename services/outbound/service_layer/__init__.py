"""Outbound use cases: handle one touch-point command, deliver it, record and publish its
outcome, reconcile claims left by dead processes."""
