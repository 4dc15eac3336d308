"""Tests of toolkit.samples."""
