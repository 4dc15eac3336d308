"""Readers that bring other systems' records (model registries, ...) into the store through the ingest path."""
