"""A seller's mailbox: the Mailbox protocol (base), and one backend per module or package.

`maildir` (the embedded default) and `memory` (tests and the demo) are single modules; `imap`, `exchange`
and `graph` are packages whose `__init__` names what the config layer opens. A backend imports only
`pipeline.mailbox.base`, `pipeline.errors` and `pipeline.durable` from the rest of the project, and nothing
is imported here, so naming one backend does not load the others' libraries.
"""
