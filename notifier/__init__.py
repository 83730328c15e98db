"""The notifier: status changes from the change log, pushed to senders as signed webhooks."""
