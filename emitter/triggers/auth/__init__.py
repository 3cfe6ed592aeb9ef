"""Webhook authentication and redelivery checks, called by the webhook route
(emitter.triggers.webhook): `verify` checks a request against a rule's schemes, `deliveries`
remembers delivery ids in the durable state."""
