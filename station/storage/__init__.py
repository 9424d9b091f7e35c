"""Blind storage: SQLite files holding ciphertext and metadata, the audit chain, durable files.

Nothing here can read a personal field: it stores what the key holder sealed.
"""
