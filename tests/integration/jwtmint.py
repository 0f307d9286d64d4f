"""Test-time JWTs and JWK Sets (python3-cryptography; no key is committed)."""

import base64
import hashlib
import hmac
import json
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _int_b64u(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk(key, kid):
    pub = key.public_key().public_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": _int_b64u(pub.n), "e": _int_b64u(pub.e)}
    return {"kty": "EC", "kid": kid, "crv": "P-256", "use": "sig",
            "x": _int_b64u(pub.x, 32), "y": _int_b64u(pub.y, 32)}


def claims(**kw):
    now = int(time.time())
    c = {"exp": now + 600, "iat": now}
    c.update({k: v for k, v in kw.items() if v is not None})
    return c


def mint(key, alg, payload, kid=None, header=None):
    """alg HS256 (key: bytes), RS256 (RSA key), ES256 (EC key), none."""
    h = {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid
    h.update(header or {})
    signing = (b64u(json.dumps(h).encode()) + "." +
               b64u(json.dumps(payload).encode())).encode()
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        sig = hmac.new(key, signing, hashlib.sha256).digest()
    elif alg == "RS256":
        sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raise ValueError(alg)
    return signing.decode() + "." + b64u(sig)


def mint_raw_header(key, header_json, payload):
    """HS256 over a header given as raw JSON text (e.g. with a duplicate
    member, which no dict can hold)."""
    signing = (b64u(header_json.encode()) + "." + b64u(json.dumps(payload).encode())).encode()
    return signing.decode() + "." + b64u(hmac.new(key, signing, hashlib.sha256).digest())
