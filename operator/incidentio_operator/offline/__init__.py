"""Offline tooling behind validate, route, demo and the API docs: schema evaluation, manifest loading, tables."""
