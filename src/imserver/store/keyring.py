"""Master keys, envelope encryption and the ID-number HMAC for identity records.

Theory of operation:

* Each identity record gets a fresh 256-bit **data key**. It seals the record's
  JSON with AES-256-GCM; the record's row id is the associated data, so a
  ciphertext copied onto another row does not open.
* The data key is **wrapped** (AES-256-GCM again) by the active **master key**,
  whose id is stored beside it (``identities.key_id``). Rotating the master key
  re-wraps 32-byte data keys; the record ciphertexts never change.
* Nonces are random 96-bit values stored in front of what they encrypted:
  ``wrapped_key = nonce || AESGCM(master).encrypt(data_key)`` and
  ``ciphertext = nonce || AESGCM(data_key).encrypt(json)``.
* An **HMAC-SHA256** of the normalised ID number (own key, never rotated: the
  uniqueness count depends on it staying stable) lets the store count accounts
  per identity without decrypting anything.

Where the keys come from: ``IMSERVER_MASTER_KEYS`` (``kid:<base64 32 bytes>,...``;
the active key is ``IMSERVER_MASTER_KEY_ID`` or the last listed) and
``IMSERVER_HMAC_KEY``. When no master keys are configured, a key file
``<data_dir>/keys.json`` (mode 0600) is generated on first start and used, so a
new user runs with no setup. A many-node deployment must configure the keys in
the environment: each node would otherwise generate keys of its own.

Errors::

    KeyRingError          configuration or key-file problem (ours: fix the config)
    ├── UnknownKey        a record names a master key the ring does not hold
    └── Undecryptable     authentication failed: the record, its row id or its
                          wrapped key was changed (someone else's doing)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256 for master and data keys
NONCE_BYTES = 12  # the GCM standard nonce; random per encryption (2^-32 collision bound is far off)
HMAC_KEY_MIN_BYTES = 32  # as long as the SHA-256 output: shorter keys weaken the HMAC
KEY_FILE_NAME = "keys.json"
KEY_FILE_MODE = 0o600  # secrets: owner read/write only
MAX_KEY_ID_CHARS = 64  # identities.key_id is String(64)

# Associated-data labels: the same row id bound under two purposes, so a wrapped
# key can never be passed off as a record ciphertext or the other way round.
_DATA_AAD = b"imserver/identity/data/v1:"
_WRAP_AAD = b"imserver/identity/key/v1:"
_HMAC_LABEL = b"imserver/cn-ric/v1:"


class KeyRingError(Exception):
    """The key configuration or the key file is unusable."""


class UnknownKey(KeyRingError):
    """A record was wrapped by a master key this ring does not hold."""


class Undecryptable(KeyRingError):
    """GCM authentication failed: the ciphertext, wrapped key or row id does not match."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the store writes for one record."""

    key_id: str
    wrapped_key: bytes
    ciphertext: bytes


def _b64key(text: str, what: str, *, exact: int | None = KEY_BYTES, minimum: int = 0) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError(f"{what} is not valid base64") from exc
    if exact is not None and len(raw) != exact:
        raise KeyRingError(f"{what} must be {exact} bytes, not {len(raw)}")
    if len(raw) < minimum:
        raise KeyRingError(f"{what} must be at least {minimum} bytes, not {len(raw)}")
    return raw


def _check_key_id(kid: str) -> str:
    if not kid or len(kid) > MAX_KEY_ID_CHARS or any(c in kid for c in ":, \t\n"):
        raise KeyRingError(f"master key id {kid!r} must be 1-{MAX_KEY_ID_CHARS} characters without ':', ',' or spaces")
    return kid


def parse_master_keys(spec: str) -> dict[str, bytes]:
    """``"kid:<base64>,kid2:<base64>"`` → ordered {kid: key}."""
    keys: dict[str, bytes] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        if not sep:
            raise KeyRingError("IMSERVER_MASTER_KEYS entries are kid:<base64 of 32 bytes>")
        kid = _check_key_id(kid.strip())
        if kid in keys:
            raise KeyRingError(f"master key id {kid!r} is listed twice")
        keys[kid] = _b64key(b64, f"master key {kid!r}")
    return keys


def new_key_id(now: datetime | None = None) -> str:
    """Sortable and unique across nodes: ``k<UTC date and time>-<random hex>``."""
    now = now or datetime.now(UTC)
    return f"k{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


class KeyRing:
    """Master keys (one active) and the HMAC key; seals, opens and re-wraps records.

    A ring loaded from a key file notices when ``imserver keys rotate`` replaced
    the file (the file is cheap to stat): new records are then sealed under the
    new active key, and records already re-wrapped under it still open.
    """

    def __init__(
        self, master_keys: dict[str, bytes], active_key_id: str, hmac_key: bytes, *, key_file: Path | None = None
    ) -> None:
        if active_key_id not in master_keys:
            raise KeyRingError(f"the active master key {active_key_id!r} is not among the configured keys")
        self._masters = dict(master_keys)
        self._active = active_key_id
        self._hmac_key = hmac_key
        self._key_file = key_file
        self._file_stamp = _stamp(key_file) if key_file else None

    # -- building -------------------------------------------------------------------

    @classmethod
    def from_config(cls, *, master_keys: str, master_key_id: str, hmac_key: str, data_dir: Path) -> KeyRing:
        """The ring the settings describe; see the module docstring for the rules."""
        if master_keys.strip():
            masters = parse_master_keys(master_keys)
            if not masters:
                raise KeyRingError("IMSERVER_MASTER_KEYS lists no keys")
            if not hmac_key.strip():
                raise KeyRingError("IMSERVER_HMAC_KEY must be set when IMSERVER_MASTER_KEYS is")
            active = master_key_id.strip() or list(masters)[-1]
            return cls(masters, active, _b64key(hmac_key, "IMSERVER_HMAC_KEY", exact=None, minimum=HMAC_KEY_MIN_BYTES))
        path = Path(data_dir) / KEY_FILE_NAME
        ensure_key_file(path)
        ring = cls.from_key_file(path)
        if hmac_key.strip():  # an HMAC key from the environment wins over the file's
            ring._hmac_key = _b64key(hmac_key, "IMSERVER_HMAC_KEY", exact=None, minimum=HMAC_KEY_MIN_BYTES)
        return ring

    @classmethod
    def from_key_file(cls, path: Path) -> KeyRing:
        masters, active, hmac_key = _read_key_file(path)
        return cls(masters, active, hmac_key, key_file=path)

    def _refresh(self) -> None:
        """Reload the key file if it was replaced since we read it."""
        if self._key_file is None:
            return
        stamp = _stamp(self._key_file)
        if stamp == self._file_stamp:
            return
        masters, active, _ = _read_key_file(self._key_file)
        # Keys are only ever added to the file, but keep any we hold regardless.
        self._masters = {**self._masters, **masters}
        self._active = active
        self._file_stamp = stamp

    # -- using ----------------------------------------------------------------------

    @property
    def active_key_id(self) -> str:
        self._refresh()
        return self._active

    @property
    def key_ids(self) -> list[str]:
        self._refresh()
        return list(self._masters)

    def seal(self, record_id: int, plaintext: bytes) -> Sealed:
        """Encrypt one record under a fresh data key, wrapped by the active master key."""
        self._refresh()
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        ciphertext = _encrypt(data_key, plaintext, _DATA_AAD + str(record_id).encode())
        wrapped = _encrypt(self._masters[self._active], data_key, _WRAP_AAD + str(record_id).encode())
        return Sealed(self._active, wrapped, ciphertext)

    def open(self, record_id: int, key_id: str, wrapped_key: bytes, ciphertext: bytes) -> bytes:
        """The plaintext of one record; UnknownKey or Undecryptable if it cannot be trusted."""
        data_key = self._unwrap(record_id, key_id, wrapped_key)
        return _decrypt(data_key, ciphertext, _DATA_AAD + str(record_id).encode())

    def rewrap(self, record_id: int, key_id: str, wrapped_key: bytes) -> Sealed:
        """The record's data key wrapped by the active master key (ciphertext left empty: unchanged)."""
        data_key = self._unwrap(record_id, key_id, wrapped_key)
        wrapped = _encrypt(self._masters[self._active], data_key, _WRAP_AAD + str(record_id).encode())
        return Sealed(self._active, wrapped, b"")

    def id_hmac(self, normalised_id: str) -> str:
        """HMAC-SHA256 (hex, 64 characters) of an already normalised ID number."""
        return hmac.new(self._hmac_key, _HMAC_LABEL + normalised_id.encode(), hashlib.sha256).hexdigest()

    def derive(self, label: str) -> bytes:
        """A 32-byte key for another purpose (e.g. signing console sessions), derived
        from the HMAC key under `label`: one secret to configure, separate keys in use."""
        return hmac.new(self._hmac_key, b"imserver-derive:" + label.encode(), hashlib.sha256).digest()

    def _unwrap(self, record_id: int, key_id: str, wrapped_key: bytes) -> bytes:
        if key_id not in self._masters:
            self._refresh()  # perhaps rotated by another process since we loaded
        master = self._masters.get(key_id)
        if master is None:
            raise UnknownKey(f"master key {key_id!r} is not in the key ring")
        return _decrypt(master, wrapped_key, _WRAP_AAD + str(record_id).encode())


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, packed: bytes, aad: bytes) -> bytes:
    nonce, body = packed[:NONCE_BYTES], packed[NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except (InvalidTag, ValueError) as exc:
        raise Undecryptable("the record does not authenticate: changed, moved to another row, or a wrong key") from exc


# -- the key file -------------------------------------------------------------------------
#
# {"version": 1, "active": kid, "hmac_key": b64,
#  "master_keys": [{"id": kid, "key": b64, "created_at": iso}, ...]}
#
# Keys are only ever added: records not yet re-wrapped still need the old ones.


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    # Rotation replaces the file, so the inode changes even within one mtime tick.
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_key_file(path: Path) -> tuple[dict[str, bytes], str, bytes]:
    try:
        doc = json.loads(path.read_text())
        masters = {_check_key_id(k["id"]): _b64key(k["key"], f"key file entry {k['id']!r}") for k in doc["master_keys"]}
        hmac_key = _b64key(doc["hmac_key"], "the key file's hmac_key", exact=None, minimum=HMAC_KEY_MIN_BYTES)
        active = doc["active"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"cannot read the key file {path}: {exc}") from exc
    if active not in masters:
        raise KeyRingError(f"the key file {path} names an active key it does not hold")
    return masters, active, hmac_key


def _write_new(path: Path, doc: dict, *, replace: bool) -> bool:
    """Write `doc` as `path` atomically with mode 0600.

    replace=False creates the file only if it does not exist (returns False if
    another process won the race); replace=True swaps it in whole.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic create-if-absent, with the content already in place
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def ensure_key_file(path: Path) -> bool:
    """Create the key file with one master key and an HMAC key if absent; True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    kid = new_key_id()
    doc = {
        "version": 1,
        "active": kid,
        "hmac_key": base64.b64encode(secrets.token_bytes(HMAC_KEY_MIN_BYTES)).decode(),
        "master_keys": [_new_entry(kid)],
    }
    return _write_new(path, doc, replace=False)


def rotate_key_file(path: Path) -> str:
    """Add a new master key to the key file and make it active; returns its id."""
    if not path.exists():
        raise KeyRingError(f"there is no key file at {path}")
    _read_key_file(path)  # refuse to build on a damaged file
    doc = json.loads(path.read_text())
    kid = new_key_id()
    doc["master_keys"].append(_new_entry(kid))
    doc["active"] = kid
    _write_new(path, doc, replace=True)
    return kid


def _new_entry(kid: str) -> dict[str, str]:
    return {
        "id": kid,
        "key": base64.b64encode(AESGCM.generate_key(bit_length=KEY_BYTES * 8)).decode(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
