"""Who is looking at the viewer (/ui): sign-in with an API key, its session, its forms.

A browser session is the API key sealed (Fernet: encrypted and authenticated) under a key of
its own, with a lifetime: every page opens it and authenticates the key again, so a revoked
key ends its sessions at once and the cookie never carries the key readable. Sessions are
kept nowhere else: signing out deletes the browser's cookie, and a copy of the cookie works
until it expires or its key is revoked. A form of a session must carry the session's CSRF
token (an HMAC of the session), which only a page of the viewer has; a request that sends
its key in a header needs none, as a browser never adds such a header to a forged request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from api.services.access import Access, Caller
from api.services.errors import Forbidden, Unauthenticated
from loopline.secrets import SecretBox
from loopline.store.keys import is_api_key

SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class ViewerSession:
    """A signed-in browser: the sealed session for its cookie, and who it is."""

    cookie: str
    caller: Caller


@dataclass
class ViewerSessions:
    access: Access
    sealer: Fernet
    csrf_key: bytes
    lifetime_seconds: int = SESSION_SECONDS

    @classmethod
    def from_box(cls, access: Access, box: SecretBox) -> ViewerSessions:
        sealing_key = base64.urlsafe_b64encode(box.derive("viewer-session"))
        return cls(access=access, sealer=Fernet(sealing_key), csrf_key=box.derive("viewer-csrf"))

    async def sign_in(self, api_key: str, *, from_this_site: bool) -> ViewerSession:
        """A session for a valid API key, asked for by a page of the viewer: another site's
        form must not sign a browser into a project of the attacker's choosing. Connection
        tokens do not sign in."""
        if not from_this_site:
            raise Forbidden("sign in from the viewer's own sign-in page")
        api_key = api_key.strip()
        if not is_api_key(api_key):
            raise Unauthenticated("sign in with an API key (ll_...), not a connection token")
        caller = await self.access.authenticate(api_key)
        return ViewerSession(self.sealer.encrypt(api_key.encode()).decode(), caller)

    async def caller(self, cookie: str) -> Caller:
        """Who a session cookie stands for, while it lasts and its key is valid."""
        try:
            api_key = self.sealer.decrypt(cookie.encode(), ttl=self.lifetime_seconds).decode()
        except InvalidToken as error:
            raise Unauthenticated("the session has ended; sign in again") from error
        return await self.access.authenticate(api_key)

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def check_form(self, cookie: str, token: str | None) -> None:
        """Refuse a form of a session that does not carry the session's own token."""
        expected = self.csrf_token(cookie).encode()
        if not token or not hmac.compare_digest(expected, token.encode()):
            raise Forbidden(
                "this form did not come from a page of the viewer (CSRF token missing or "
                "wrong); reload the page and send it again"
            )
