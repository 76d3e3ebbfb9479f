"""Protocols, run records, leaderboards, schema and rendering."""
