"""Seller catalog: shops, their verified domains, and products."""
