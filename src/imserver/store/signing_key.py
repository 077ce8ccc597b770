"""The Ed25519 key that signs record checkpoints: from configuration or a key file.

Configuration (``IMSERVER_CHECKPOINT_KEY``, the base64 of the 32-byte private
seed) wins; it must be the same on every node. Otherwise the key lives in
``<data_dir>/checkpoint.key`` (PEM, mode 0600), created on first use, so a
single node runs with no setup. Back the file up with the database: without
it, old checkpoints still verify (their public key is the one to trust) but
new ones are signed by a new key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE_NAME = "checkpoint.key"
KEY_FILE_MODE = 0o600  # a secret: owner read/write only
SEED_BYTES = 32  # an Ed25519 private key is a 32-byte seed


class SigningKeyError(Exception):
    pass


def load(configured: str, data_dir: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The configured key, else the key file's (created if absent and `create`)."""
    if configured.strip():
        try:
            seed = base64.b64decode(configured.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SigningKeyError("IMSERVER_CHECKPOINT_KEY is not base64") from exc
        if len(seed) != SEED_BYTES:
            raise SigningKeyError(f"IMSERVER_CHECKPOINT_KEY must be {SEED_BYTES} bytes, base64")
        return Ed25519PrivateKey.from_private_bytes(seed)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        if not create:
            raise SigningKeyError(f"no checkpoint key: set IMSERVER_CHECKPOINT_KEY or restore {path}")
        _create(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read the checkpoint key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} does not hold an Ed25519 key")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # create-if-absent: a racing node's key is kept, not overwritten
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verifier(public_key_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
