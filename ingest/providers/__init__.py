"""Provider webhook adapters: each provider's delivery callbacks mapped to canonical events.

One module per provider (``twilio``, ``vonage``, ``vonage_messages``, ``infobip``, ``sinch``,
``smpp``) holds its pure mapping and signature check; ``routes`` holds the only aiohttp code.
Mapping tables and their decisions: docs/providers.md.
"""
