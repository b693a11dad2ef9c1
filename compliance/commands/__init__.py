"""Command groups of the `idia` CLI that live outside compliance/cli.py (registered at its end)."""
