"""Envelope-free KMS encryption of small secrets (environment variable values, and the
stored answers of idempotent requests that created a key)."""

from __future__ import annotations

import base64

from chalicelib.aws.clients import client
from chalicelib.core.settings import get_settings


def encrypt(plaintext: str, context: dict[str, str]) -> str:
    """The base64 ciphertext; an empty value stays empty (KMS refuses an empty plaintext,
    and an empty secret has nothing to hide)."""
    if not plaintext:
        return ""
    blob = client("kms").encrypt(
        KeyId=get_settings().kms_key_alias,
        Plaintext=plaintext.encode(),
        EncryptionContext=context,
    )["CiphertextBlob"]
    return base64.b64encode(blob).decode()


def decrypt(ciphertext: str, context: dict[str, str]) -> str:
    if not ciphertext:
        return ""
    return (
        client("kms")
        .decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context)[
            "Plaintext"
        ]
        .decode()
    )


def seal(plaintext: bytes, context: dict[str, str]) -> str:
    """Envelope encryption for payloads above KMS's 4 KB limit (environment snapshots): a
    fresh data key from KMS encrypts the payload with AES-256-GCM; the result carries the
    KMS-encrypted data key."""
    import json
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = client("kms").generate_data_key(
        KeyId=get_settings().kms_key_alias, KeySpec="AES_256", EncryptionContext=context
    )
    nonce = os.urandom(12)
    sealed = AESGCM(key["Plaintext"]).encrypt(nonce, plaintext, None)
    return json.dumps(
        {
            "key": base64.b64encode(key["CiphertextBlob"]).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "data": base64.b64encode(sealed).decode(),
        }
    )


def unseal(sealed: str, context: dict[str, str]) -> bytes:
    import json

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parts = json.loads(sealed)
    key = client("kms").decrypt(
        CiphertextBlob=base64.b64decode(parts["key"]), EncryptionContext=context
    )["Plaintext"]
    return AESGCM(key).decrypt(
        base64.b64decode(parts["nonce"]), base64.b64decode(parts["data"]), None
    )
