"""The async scheduler (work in progress)."""
