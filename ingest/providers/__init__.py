"""Provider webhook adapters: each provider's delivery callbacks mapped to canonical events.

One module per provider (``twilio``, ``vonage``, ``vonage_messages``, ``infobip``, ``sinch``,
``smpp``) holds its pure mapping, its credential check and its ``SPEC``; ``registry`` lists
them; ``common`` (callback, status tables, receipt to record), ``fields``, ``times``, ``ids``
and ``auth`` are what they share; ``routes`` holds the only aiohttp code. Mapping tables and
their decisions: docs/providers.md.
"""
