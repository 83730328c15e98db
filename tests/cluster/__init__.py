"""Fault tests on real processes against three Kafka brokers (`make test-cluster`)."""
