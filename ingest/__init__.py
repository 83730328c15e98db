"""Ingest: provider webhooks in, canonical events to the Kafka event log out."""
