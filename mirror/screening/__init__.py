"""Deciding about projects and releases: the first screening, content screening, the pure policy, decisions and events."""
