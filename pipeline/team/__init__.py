"""A sales team on one deployment: many sellers' mailboxes in one team settings file, one PostgreSQL store with a
scope per seller, and workers (procrastinate jobs) that poll each mailbox with the single-seller loop."""
