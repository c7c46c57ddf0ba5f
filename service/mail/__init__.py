"""Email reminders: the outbox, the digest, and the sender that speaks SMTP.

The path of a reminder, none of it on the write path:

1. A command commits its events; or the scheduler finds a deadline near (service/scheduler.py).
2. The ``reminders`` projection (service/projections/reminders.py), run by the projection
   runner (one process at a time, checkpointed), derives the reminders an event causes
   (service/domain/reminders.py) and inserts them into the ``reminder`` outbox in the same
   transaction as its checkpoint; the scheduler inserts its own. Each has an idempotency key,
   (person, kind, subject), so nothing is recorded twice, even across crashes and replays.
3. The sender (service/mail/sender.py), where ``CSPERF_SMTP_URL`` is set, first *composes*:
   in one transaction per person it takes their pending reminders and writes the email that
   carries them (an overdue item at once, on its own; the rest in the day's digest, at most one
   a day), or marks them skipped (no email address, reminders off). Then it *sends*: it claims
   due emails with a lease, speaks SMTP outside any transaction, and records the outcome;
   a failure is retried with exponential backoff. Every attempt of an email carries the same
   ``Message-ID``, so a resend after a crash between the server's "250" and the record is
   recognisable as the same message (at least once; never a second, different email).

Without ``CSPERF_SMTP_URL`` reminders are recorded (``GET /v1/people/{id}/reminders`` lists
them as ``pending``) and nothing is sent.
"""
