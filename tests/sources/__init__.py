"""Tests of toolkit.sources."""
