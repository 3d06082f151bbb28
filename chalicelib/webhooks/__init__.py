"""Outgoing webhooks: endpoints and their secrets, the SSRF guard, Standard Webhooks
signing, deliveries, and the retry schedule (docs/webhooks.md)."""
