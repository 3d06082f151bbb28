"""Envelope-free KMS encryption of small secrets (environment variable values, and the
stored answers of idempotent requests that created a key)."""

from __future__ import annotations

import base64

from chalicelib.aws.clients import client
from chalicelib.settings import get_settings


def encrypt(plaintext: str, context: dict[str, str]) -> str:
    blob = client("kms").encrypt(
        KeyId=get_settings().kms_key_alias,
        Plaintext=plaintext.encode(),
        EncryptionContext=context,
    )["CiphertextBlob"]
    return base64.b64encode(blob).decode()


def decrypt(ciphertext: str, context: dict[str, str]) -> str:
    return (
        client("kms")
        .decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context)[
            "Plaintext"
        ]
        .decode()
    )
