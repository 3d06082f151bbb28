"""Events: the facts users see in `GET /v1/events` and webhooks carry, derived from the
tables' change streams (docs/architecture.md, "Events: DynamoDB Streams")."""
