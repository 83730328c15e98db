"""Plumbing the services share, just above ``schemas/``: HTTP ops routes and problem responses,
logging, Kafka topic creation and Redis client options. It imports ``schemas/`` only; the
components import it, and nothing here imports a component or the ``msgstatus`` shell."""
