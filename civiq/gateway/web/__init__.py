"""The gateway's web layer: pages for center managers, technicians and citizens, the JSON API and the
live stream. The rest of the gateway is reached only through :class:`GatewayView` (see view.py).

>>> from civiq.gateway.web import create_app, MemoryView, UserStore  # doctest: +SKIP
"""

from civiq.gateway.web.app import create_app
from civiq.gateway.web.auth import ROLES, AuthError, User, UserStore, check_password, hash_password
from civiq.gateway.web.memory import MemoryView
from civiq.gateway.web.view import GatewayView, ViewError
from civiq.tickettoken import TicketRef, ticket_token, verify_ticket_token

__all__ = [
    "ROLES", "AuthError", "GatewayView", "MemoryView", "TicketRef", "User", "UserStore", "ViewError",
    "check_password", "create_app", "hash_password", "ticket_token", "verify_ticket_token",
]
