"""Regression tests for hostile inputs: each test is named after the case it fixed."""
