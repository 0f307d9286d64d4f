"""TLS and authentication scenarios of make bench (issue 10, item 9), used by
scripts/bench.py:

  S1T   S1 over TLS                      hamqttd listeners.ssl vs Mosquitto listener+certfile
  S3T   S3 over TLS (target >= 5x Mosquitto)
  S13   full TLS handshakes per second: hamqtt-bench hs (connect, handshake, CONNECT,
        CONNACK, DISCONNECT, the broker closes), target >= 1.5x Mosquitto
  S13R  S13 with an RSA 2048 server key instead of EC P-256
  S3A   S3 with a password file and an ACL file on both brokers (target: hamqtt S3A
        >= 0.9 x hamqtt S3 of the same run, "auth costs at most 10 %")

Both brokers get the same files, made at bench time with the openssl CLI and
mosquitto_passwd into the run's directory (no key is ever committed): one CA,
a server certificate for 127.0.0.1 with an EC P-256 key and one with an RSA
2048 key, a password file (mosquitto_passwd's default: PBKDF2-SHA512, 101
iterations) and an ACL file granting the bench user readwrite on bench/#.
TLS is pinned on both sides to TLS 1.3 with TLS_AES_128_GCM_SHA256; the key
exchange is OpenSSL's default (X25519 first) for both, as they link the same
libssl.

This module has no state of its own: make_material() returns the paths, the
other functions turn a scenario and those paths into config lines and
hamqtt-bench arguments, and auth_table() the comparison with S3.
"""

import os
import re
import secrets
import shutil
import subprocess
import urllib.request

TLS_VERSION = "1.3"
CIPHER = "TLS_AES_128_GCM_SHA256"
USER = "bench"
HS_SLOTS = 64            # S13: handshakes in progress at once
HS_MAX = 2000000         # S13: bound on cycles per run (the duration ends it first)
AUTH_TARGET = 0.9        # S3A / S3, hamqtt


def scenarios(s1_args, s3_args):
    """The scenario table entries (merged into bench.py's SCENARIOS)."""
    hs = ["hs", "-c", HS_SLOTS, "--count", HS_MAX, "--bind-spread"]
    return {
        "S1T": dict(title="S1 over TLS 1.3 (%s, EC P-256 certificate)" % CIPHER,
                    args=list(s1_args), kind="rate", tls="ec"),
        "S3T": dict(title="S3 over TLS 1.3 (%s, EC P-256 certificate)" % CIPHER,
                    args=list(s3_args), kind="rate", tls="ec"),
        "S13": dict(title="full TLS 1.3 handshakes/s, %d at once, EC P-256 certificate "
                    "(connect, handshake, CONNECT/CONNACK, DISCONNECT)" % HS_SLOTS,
                    args=hs, kind="hs", tls="ec"),
        "S13R": dict(title="S13 with an RSA 2048 certificate", args=hs, kind="hs", tls="rsa"),
        "S3A": dict(title="S3 with a password file and an ACL file (clients log in)",
                    args=list(s3_args), kind="rate", auth=True, base=("S3", AUTH_TARGET)),
    }


def needed(scens, table):
    return any(table[s].get("tls") or table[s].get("auth") for s in scens)


def _run(cmd, cwd, stdin=None):
    p = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (p.stderr or p.stdout).strip()))


def _leaf(d, name, newkey):
    _run(["openssl", "req", "-newkey"] + newkey + ["-nodes", "-keyout", name + ".key",
                                                  "-out", name + ".csr", "-subj",
                                                  "/CN=127.0.0.1"], d)
    _run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", "server.ext"], d)


def make_material(d):
    """Certificates, password and ACL files in d; a dict of paths. Raises
    RuntimeError when a tool is missing or fails."""
    for tool in ("openssl", "mosquitto_passwd"):
        if not shutil.which(tool):
            raise RuntimeError("%s not found (scripts/deps.sh installs it)" % tool)
    os.makedirs(d, exist_ok=True)
    ec = ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    _run(["openssl", "req", "-x509", "-newkey"] + ec + [
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _leaf(d, "server-ec", ec)
    _leaf(d, "server-rsa", ["rsa:2048"])
    password = secrets.token_hex(12)
    passwd = os.path.join(d, "passwd")
    _run(["mosquitto_passwd", "-c", "-b", passwd, USER, password], d)
    acl = os.path.join(d, "acl")
    with open(acl, "w") as f:
        f.write("# make bench: the bench user may use the bench topics, nothing else\n"
                "user %s\ntopic readwrite bench/#\n" % USER)
    # Mosquitto started as root drops to its own user: it must be able to read
    # them (throwaway files of this run only)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)
    p = lambda n: os.path.join(d, n)   # noqa: E731
    return dict(ca=p("ca.pem"), ec=(p("server-ec.pem"), p("server-ec.key")),
                rsa=(p("server-rsa.pem"), p("server-rsa.key")), passwd=passwd, acl=acl,
                password=password)


def hamqtt_lines(sc, mat, port):
    """hamqttd config lines for sc; [] for a plain scenario. With TLS the plain
    TCP listener is closed and the ssl listener takes the run's port."""
    out = []
    if sc.get("tls"):
        cert, key = mat[sc["tls"]]
        out += ["listeners.tcp.default.enabled = false",
                "listeners.ssl.default.bind = 127.0.0.1:%d" % port,
                "listeners.ssl.default.certfile = %s" % cert,
                "listeners.ssl.default.keyfile = %s" % key,
                "listeners.ssl.default.tls_versions = %s" % TLS_VERSION,
                "listeners.ssl.default.ciphers = %s" % CIPHER]
    if sc.get("auth"):
        out += ["auth.allow_anonymous = false",
                "auth.password_file = %s" % mat["passwd"],
                "auth.acl_file = %s" % mat["acl"]]
    return out


def mosquitto_lines(sc, mat):
    """Mosquitto lines after its `listener PORT 127.0.0.1` line (the listener
    options must follow it); replaces allow_anonymous with auth."""
    out = []
    if sc.get("tls"):
        cert, key = mat[sc["tls"]]
        out += ["certfile %s" % cert, "keyfile %s" % key,
                "tls_version tlsv%s" % TLS_VERSION, "ciphers_tls1.3 %s" % CIPHER]
    if sc.get("auth"):
        out += ["allow_anonymous false", "password_file %s" % mat["passwd"],
                "acl_file %s" % mat["acl"]]
    else:
        out += ["allow_anonymous true"]
    return out


def bench_args(sc, mat):
    """hamqtt-bench arguments for sc (TLS, credentials)."""
    out = []
    if sc.get("tls"):
        out += ["--cafile", mat["ca"], "--tls-version", TLS_VERSION, "--ciphers", CIPHER]
    if sc.get("auth"):
        out += ["-u", USER, "-P", mat["password"]]
    return out


def auth_facts(m, http_port, timeout=5.0):
    """Into a run's metrics m, the proof that hamqttd checked the clients:
    logins accepted/refused and ACL decisions allowed/denied, from /metrics.
    Returns why the run must count as failed, or ""."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port,
                                    timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError as e:
        return "cannot read /metrics: %s" % e
    for name, result, key in (("authentication", "success", "auth_ok"),
                              ("authentication", "failure", "auth_refused"),
                              ("acl_decisions", "allow", "acl_allow"),
                              ("acl_decisions", "deny", "acl_deny")):
        hit = re.search(r'^hamqtt_%s_total\{[^}]*result="%s"\} (\S+)$' % (name, result), text,
                        re.M)
        if hit:
            m[key] = float(hit.group(1))
    if not m.get("auth_ok") or not m.get("acl_allow"):
        return "no login or ACL decision in /metrics: auth was not on?"
    if m.get("auth_refused") or m.get("acl_deny"):
        return "hamqttd refused %d logins and denied %d ACL checks" % (
            m.get("auth_refused", 0), m.get("acl_deny", 0))
    return ""


def auth_table(by, scens, table, med, fmt):
    """Markdown rows: each auth scenario against its plain base (S3A / S3) in
    the same table, and against Mosquitto with the same files."""
    rows = [s for s in scens if table[s].get("auth")]
    if not rows:
        return []
    out = ["", "Authentication (password file + ACL on both brokers, clients log in) against "
           "plain S3 of the same run (target: hamqtt / hamqtt base, i.e. auth costs at most "
           "10 %):", "",
           "| scenario | hamqtt msg/s | base | base msg/s | ratio to base | target | met | "
           "Mosquitto msg/s | Mosquitto base msg/s | Mosquitto ratio to base | ratio H/M | "
           "lost H |",
           "|---|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for scen in rows:
        base, target = table[scen]["base"]
        h, m = by.get((scen, "hamqtt"), []), by.get((scen, "mosquitto"), [])
        hb, mb = by.get((base, "hamqtt"), []), by.get((base, "mosquitto"), [])
        hv, bv, mv, mbv = med(h, "rate"), med(hb, "rate"), med(m, "rate"), med(mb, "rate")
        ratio = hv / bv if hv is not None and bv else None
        met = ""
        if ratio is not None:
            met = "yes" if ratio >= target and not (med(h, "lost") or 0) else "**no**"
        out.append("| %s | %s | %s | %s | %s | ratio >= %g | %s | %s | %s | %s | %s | %s |" % (
            scen, fmt(hv, "msg/s"), base, fmt(bv, "msg/s"),
            "%.2f" % ratio if ratio is not None else "-", target, met, fmt(mv, "msg/s"),
            fmt(mbv, "msg/s"), "%.2f" % (mv / mbv) if mv is not None and mbv else "-",
            "%.2fx" % (hv / mv) if hv is not None and mv else "-",
            fmt(med(h, "lost")) if h else "-"))
    return out
