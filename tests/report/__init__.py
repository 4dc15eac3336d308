"""Tests of toolkit.report."""
