"""token."""
