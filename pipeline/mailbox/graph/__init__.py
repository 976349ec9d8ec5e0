"""The Microsoft Graph mailbox for Exchange Online: inbox delta in, sendMail and in-thread replies out.

docs/graph.md says how to register the app, grant it one mailbox, and sign in.
"""

from pipeline.mailbox.graph.auth import sign_in, token_source
from pipeline.mailbox.graph.http import GraphError
from pipeline.mailbox.graph.mailbox import GraphMailbox
from pipeline.mailbox.graph.settings import GraphSettings

__all__ = ["GraphError", "GraphMailbox", "GraphSettings", "sign_in", "token_source"]
