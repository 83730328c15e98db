"""The read API: message status by id, by phone number and by reference key, from Redis."""
