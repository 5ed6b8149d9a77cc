"""Defences against hostile clients: rate limits (Redis-shared) and security headers on pages."""
