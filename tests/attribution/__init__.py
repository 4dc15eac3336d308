"""Tests of toolkit.attribution."""
