"""The projector: folds the event log into the Redis projection the read API serves."""
