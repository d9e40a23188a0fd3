"""Per-run provider keys, sealed before they touch the trace store.

The API seals the keys a run was sent with; the worker that calls the provider opens them.
Temporal history only ever sees the run id, and the store only ciphertext, which teardown
deletes when the run ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from loopline.settings import Settings

# What a run's sealed callback secrets hold.
CALLBACK_HEADERS = "headers"
CALLBACK_SIGNING_SECRET = "secret"


class SecretsUnavailableError(RuntimeError):
    """The sealed keys cannot be opened: another deployment's key, or none at all."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._fernet = Fernet(key)

    def derive(self, purpose: str) -> bytes:
        """A key for one other purpose (signing URLs, tokens), unrelated to the sealing key."""
        return hmac.new(self._key, f"loopline:{purpose}".encode(), hashlib.sha256).digest()

    def seal(self, secrets: dict[str, str]) -> str | None:
        """The secrets encrypted as one token; None when there are none (nothing to store)."""
        if not secrets:
            return None
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        try:
            opened: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as error:
            raise SecretsUnavailableError(
                "this run's provider keys were sealed with another LOOPLINE_SECRET_KEY; "
                "give the API and every worker the same key"
            ) from error
        return opened


def load_secret_box(settings: Settings) -> SecretBox:
    """The box of this deployment: its configured key, or the one kept beside the data."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value().encode())
    return SecretBox(_key_from_file(Path(settings.secret_key_file)))


def _key_from_file(path: Path) -> bytes:
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_bytes(Fernet.generate_key())
    draft.chmod(0o600)
    try:
        # A hard link appears whole or not at all: of an API and a worker starting
        # together, one key wins and both read it.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if not key:
        raise SecretsUnavailableError(f"the secret key file {path} is empty; delete it")
    return key
