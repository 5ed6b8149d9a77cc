"""Accounts, roles, API tokens, and the policy that decides who may do what."""
