"""The machine's signing key and the HMAC over a model card (which carries the model's sha256).

A card signed with this key was written by tabpipe on a machine holding the key; a card written
by anyone else (even with a matching sha256) has no valid signature. The key lives outside every
runs directory: TABPIPE_SIGNING_KEY names the file, else $TABPIPE_HOME/signing.key, else
~/.config/tabpipe/signing.key. It is created (mode 0600) the first time a model is saved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from tasks.errors import ConfigError, UntrustedModelError

SIGNING_KEY_ENV = "TABPIPE_SIGNING_KEY"
HOME_ENV = "TABPIPE_HOME"
KEY_FILE_NAME = "signing.key"
SIGNATURE_FIELD = "signature"
KEY_BYTES = 32


def signing_key_path() -> Path:
    """Where this machine's key is: $TABPIPE_SIGNING_KEY, $TABPIPE_HOME/signing.key, or
    ~/.config/tabpipe/signing.key."""
    explicit = os.environ.get(SIGNING_KEY_ENV)
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get(HOME_ENV)
    folder = Path(home).expanduser() if home else Path.home() / ".config" / "tabpipe"
    return folder / KEY_FILE_NAME


def check_key_outside(key_path: Path, runs_dir: Path) -> None:
    """A key inside the runs directory could be read by whoever can write a model there."""
    if key_path.resolve().is_relative_to(runs_dir.resolve()):
        raise ConfigError(
            f"The signing key '{key_path}' lies inside the runs directory '{runs_dir}'; keep it "
            f"outside (set {SIGNING_KEY_ENV} to another path)."
        )


def create_key(path: Path) -> None:
    """A new random key, readable by its owner only; a key another process made first wins."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as error:
        raise ConfigError(
            f"Cannot create the signing key '{path}' ({error.strerror}); set "
            f"{SIGNING_KEY_ENV} to a writable path."
        ) from error
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as error:
        raise ConfigError(f"Cannot read the signing key '{path}' ({error.strerror}).") from error
    if len(key) < KEY_BYTES:
        raise ConfigError(
            f"The signing key '{path}' is shorter than {KEY_BYTES} bytes; delete it to make a "
            "new one (models signed with it will then need --trust)."
        )
    return key


def signing_key(*, create: bool) -> bytes:
    """This machine's key (created when asked and missing)."""
    path = signing_key_path()
    if not path.exists():
        if not create:
            raise UntrustedModelError(
                f"No signing key at '{path}', so no model can be verified; models are signed "
                f"with the key of the machine that trained them (set {SIGNING_KEY_ENV}), or "
                "pass --trust for a model you trust."
            )
        create_key(path)
    return read_key(path)


def card_signature(card: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the card's canonical JSON (every field but the signature)."""
    unsigned = {k: v for k, v in card.items() if k != SIGNATURE_FIELD}
    payload = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_card(card: dict[str, Any], runs_dir: Path) -> dict[str, Any]:
    """The card (JSON-safe already) with its signature added."""
    check_key_outside(signing_key_path(), runs_dir)  # never sign with a key others can read
    key = signing_key(create=True)
    return {**card, SIGNATURE_FIELD: card_signature(card, key)}


def check_card_signature(card: dict[str, Any], card_path: Path) -> None:
    """Refuse a card this machine's key did not sign (written or edited by anyone else)."""
    key = signing_key(create=False)
    signature = card.get(SIGNATURE_FIELD)
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, card_signature(card, key)
    ):
        raise UntrustedModelError(
            f"Model card '{card_path}' is not signed with this machine's key "
            f"('{signing_key_path()}'), so tabpipe did not write it here; pass --trust only "
            "for a model you trust."
        )
