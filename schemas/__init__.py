"""Contracts shared by the msgstatus components: events, Redis layout, documents, settings."""
