"""Test certificates, made at test time with the openssl command line (no key
is ever committed): a CA, leaves signed by a CA with a given CN / SAN / EKU,
a self-signed certificate. EC P-256 keys unless a test asks for RSA; every
certificate is valid for 2 days.

A CertDir is what the tests' `certs` fixtures return: called with a file
name it gives that file's path (certs("ca.pem")), so the certificates of a
module are made once and shared by its tests:

    @pytest.fixture(scope="module")
    def certs(tmp_path_factory):
        c = CertDir(tmp_path_factory.mktemp("certs"))
        c.ca("ca")
        c.leaf("server", "ca", "localhost", san=SAN_LOCAL, eku="serverAuth")
        return c
"""

import os
import socket
import ssl
import subprocess

from mqttraw import T

SAN_LOCAL = "IP:127.0.0.1,DNS:localhost"  # a server on this machine, by address or name
_NEWKEY = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
           "rsa": ["-newkey", "rsa:2048"]}


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)


def self_signed(d, name, cn, key="ec", exts=()):
    """<name>.key and <name>.pem in d: a self-signed certificate of subject
    CN=cn with the -addext extensions exts."""
    args = ["req", "-x509"] + _NEWKEY[key] + ["-nodes", "-keyout", name + ".key",
                                               "-out", name + ".pem", "-days", "2",
                                               "-subj", "/CN=" + cn]
    for e in exts:
        args += ["-addext", e]
    openssl(*args, cwd=d)


def make_ca(d, name, key="ec"):
    """A CA named name (its CN too): <name>.key, <name>.pem in d."""
    self_signed(d, name, name, key,
                ("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"))


def make_leaf(d, name, ca, cn, san=None, eku=None, key="ec"):
    """<name>.key and <name>.pem in d, CN=cn, signed by the CA <ca>.pem /
    <ca>.key of d; san ("IP:..,DNS:..") and eku ("serverAuth,clientAuth")
    become its subjectAltName / extendedKeyUsage when given."""
    openssl("req", *_NEWKEY[key], "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    ext = ([("subjectAltName=" + san)] if san else []) + \
        ([("extendedKeyUsage=" + eku)] if eku else [])
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("".join(e + "\n" for e in ext))
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
            cwd=d)


class CertDir:
    """A directory of test certificates; certs("x.pem") is that file's path."""

    def __init__(self, d):
        self.dir = str(d)

    def __call__(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name, key="ec"):
        make_ca(self.dir, name, key)

    def leaf(self, name, ca, cn, san=None, eku=None, key="ec"):
        make_leaf(self.dir, name, ca, cn, san, eku, key)

    def self_signed(self, name, cn, key="ec"):
        self_signed(self.dir, name, cn, key)


def listener_conf(kind, certs, port, **more):
    """The keys of listener <kind>.default ("ssl", "wss") on 127.0.0.1:port
    serving certs' server.pem / server.key; more: its other keys."""
    pre = "listeners.%s.default." % kind
    conf = {pre + "bind": "127.0.0.1:%d" % port, pre + "certfile": certs("server.pem"),
            pre + "keyfile": certs("server.key")}
    for k, v in more.items():
        conf[pre + k] = v
    return conf


def tls_args(certs, version=None, client=None):
    """mosquitto_pub/sub (and hamqtt-bench) options trusting certs' ca.pem;
    client names the <client>.pem / .key to present."""
    a = ["--cafile", certs("ca.pem")]
    if version:
        a += ["--tls-version", version]
    if client:
        a += ["--cert", certs(client + ".pem"), "--key", certs(client + ".key")]
    return a


def paho_tls_set(c, certs, client=None):
    """paho's tls_set trusting certs' ca.pem, presenting <client>.pem if given."""
    c.tls_set(ca_certs=certs("ca.pem"),
              certfile=certs(client + ".pem") if client else None,
              keyfile=certs(client + ".key") if client else None,
              tls_version=ssl.PROTOCOL_TLS_CLIENT)


def served_cn(port, certs):
    """The CN of the certificate a TLS server on 127.0.0.1:port presents
    (verified against certs' ca.pem)."""
    ctx = ssl.create_default_context(cafile=certs("ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=T(10)) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ts:
            subject = dict(x[0] for x in ts.getpeercert()["subject"])
            return subject["commonName"]
