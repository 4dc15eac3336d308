"""Tests of toolkit.engine."""
