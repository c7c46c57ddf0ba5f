"""Outgoing webhooks: subscriptions, the delivery outbox and the sender that POSTs it.

The path of an event to a subscriber, none of it on the write path:

1. A command commits its events (nothing else happens in its transaction).
2. The ``webhook_dispatch`` projection (service/projections/webhooks.py), run by the projection
   runner like every read model (one process at a time by advisory lock, checkpointed),
   matches each event against the active subscriptions and inserts one delivery per match
   into ``webhook_delivery`` in the same transaction as its checkpoint: each event is enqueued
   exactly once per subscription (and a unique key makes replays harmless).
3. The sender (service/webhooks/sender.py), in every replica, claims due deliveries with
   ``FOR UPDATE SKIP LOCKED`` and a lease, POSTs them signed (service/domain/webhooks.py)
   outside any transaction, and records each attempt; a failure is retried with exponential
   backoff until ``max_attempts``, then the delivery is ``failed``. A sender that dies
   mid-attempt loses its lease and another retries: deliveries are at least once, and
   receivers deduplicate on ``X-Csperf-Delivery``.
"""
