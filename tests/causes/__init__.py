"""Tests of toolkit.causes."""
