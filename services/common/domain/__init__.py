"""Pure domain rules shared by more than one service (no I/O)."""
