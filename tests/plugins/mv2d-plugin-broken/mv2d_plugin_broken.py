"""Raises at import on purpose: mv2d-bench must list 'broken-obj' as broken with this error."""

raise RuntimeError("mv2d-plugin-broken fails at import on purpose")
