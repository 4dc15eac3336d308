"""Tests of toolkit.audit."""
