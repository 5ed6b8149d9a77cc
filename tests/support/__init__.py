"""Helpers shared by the test suite (real services, no mocks)."""
