#!/usr/bin/python3
"""make_seeds.py - writes the seed corpora in tests/fuzz/corpus/<target>/ (small,
hand-made inputs that reach deep paths at once; `make fuzz` reads them, the
fuzzer's own finds grow in build-fuzz/corpus/). Run from the repository root
after changing a harness's input format; the files are committed.
"""
import base64
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- MQTT (byte 0: 0 = 3.1, 1 = 3.1.1, 2 = 5.0; then one packet) ----

def vi(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack(">H", len(x)) + x


def pkt(first, body):
    return bytes([first]) + vi(len(body)) + body


def props(*items):
    b = b"".join(items)
    return vi(len(b)) + b


def p_byte(i, v): return bytes([i, v])
def p_u16(i, v): return bytes([i]) + struct.pack(">H", v)
def p_u32(i, v): return bytes([i]) + struct.pack(">I", v)
def p_str(i, v): return bytes([i]) + s(v)
def p_vi(i, v): return bytes([i]) + vi(v)
def p_user(k, v): return bytes([0x26]) + s(k) + s(v)


def mqtt_seeds():
    v5 = {}
    conn_props = props(p_u32(0x11, 3600), p_u16(0x21, 20), p_u32(0x27, 65536),
                       p_u16(0x22, 10), p_byte(0x19, 1), p_byte(0x17, 0),
                       p_user("k", "v"), p_user("k", "v2"), p_str(0x15, "SCRAM-SHA-256"),
                       p_str(0x16, b"\x00\x01client-first"))
    will_props = props(p_u32(0x18, 5), p_byte(0x01, 1), p_u32(0x02, 60), p_str(0x03, "text/plain"),
                       p_str(0x08, "resp/t"), p_str(0x09, b"\x01\x02"), p_user("wk", "wv"))
    # flags: user, pass, will retain, will qos 1, will, clean start
    v5["connect_all_props"] = pkt(0x10, s("MQTT") + bytes([5, 0xEE]) + struct.pack(">H", 30) +
                                  conn_props + s("cid-1") + will_props + s("will/t") + s(b"bye") +
                                  s("user") + s(b"pass"))
    v5["connack_props"] = pkt(0x20, bytes([1, 0]) + props(
        p_u32(0x11, 10), p_u16(0x21, 5), p_byte(0x24, 1), p_byte(0x25, 1), p_u32(0x27, 1000),
        p_str(0x12, "assigned"), p_u16(0x22, 3), p_str(0x1F, "why"), p_user("a", "b"),
        p_byte(0x28, 1), p_byte(0x29, 1), p_byte(0x2A, 0), p_u16(0x13, 60), p_str(0x1A, "info"),
        p_str(0x1C, "other:1883"), p_str(0x15, "m"), p_str(0x16, b"d")))
    v5["publish_props"] = pkt(0x3B, s("a/b") + struct.pack(">H", 7) + props(
        p_byte(0x01, 1), p_u32(0x02, 30), p_u16(0x23, 2), p_str(0x08, "r/t"), p_str(0x09, b"cd"),
        p_user("x", "y"), p_vi(0x0B, 300), p_vi(0x0B, 2), p_str(0x03, "json")) + b'{"v":1}')
    v5["publish_alias_only"] = pkt(0x30, s("") + props(p_u16(0x23, 1)) + b"p")
    v5["subscribe_options"] = pkt(0x82, struct.pack(">H", 9) + props(p_vi(0x0B, 42), p_user("s", "o")) +
                                  s("a/+/c") + bytes([0x2E]) + s("$share/g/x/#") + bytes([0x01]) +
                                  s("#") + bytes([0x1A]))
    v5["unsubscribe"] = pkt(0xA2, struct.pack(">H", 10) + props(p_user("u", "1")) + s("a/+") + s("#"))
    v5["suback"] = pkt(0x90, struct.pack(">H", 9) + props(p_str(0x1F, "ok")) + bytes([0, 1, 2, 0x87]))
    v5["puback_reason"] = pkt(0x40, struct.pack(">H", 7) + bytes([0x10]) + props(p_str(0x1F, "none"),
                                                                                 p_user("a", "b")))
    v5["pubrel"] = pkt(0x62, struct.pack(">H", 7) + bytes([0x92]) + props())
    v5["auth_continue"] = pkt(0xF0, bytes([0x18]) + props(p_str(0x15, "SCRAM-SHA-256"),
                                                           p_str(0x16, b"r=nonce,s=salt,i=4096"),
                                                           p_str(0x1F, "continue"), p_user("a", "b")))
    v5["auth_reauth"] = pkt(0xF0, bytes([0x19]) + props(p_str(0x15, "SCRAM-SHA-256")))
    v5["disconnect_props"] = pkt(0xE0, bytes([0x04]) + props(p_u32(0x11, 0), p_str(0x1F, "bye"),
                                                             p_str(0x1C, "srv"), p_user("a", "b")))
    v3 = {}
    v3["connect_311"] = pkt(0x10, s("MQTT") + bytes([4, 0xF6]) + struct.pack(">H", 60) + s("cid") +
                            s("will/t") + s(b"gone") + s("u") + s(b"p"))
    v3["publish_qos1"] = pkt(0x32, s("a/b") + struct.pack(">H", 1) + b"payload")
    v3["publish_qos2_dup_retain"] = pkt(0x3D, s("x") + struct.pack(">H", 65535) + b"")
    v3["subscribe"] = pkt(0x82, struct.pack(">H", 1) + s("a/#") + bytes([1]) + s("+/b") + bytes([2]))
    v3["unsubscribe"] = pkt(0xA2, struct.pack(">H", 2) + s("a/#"))
    v3["suback"] = pkt(0x90, struct.pack(">H", 1) + bytes([0, 0x80]))
    v3["pingreq"] = b"\xC0\x00"
    v3["disconnect"] = b"\xE0\x00"
    v31 = pkt(0x10, s("MQIsdp") + bytes([3, 0x02]) + struct.pack(">H", 10) + s("c31"))
    for t in ("fuzz_mqtt_roundtrip", "fuzz_mqtt_decode"):
        for k, v in v5.items():
            write(t, "v5_" + k, b"\x02" + v)
        for k, v in v3.items():
            write(t, "v311_" + k, b"\x01" + v)
        write(t, "v31_connect", b"\x00" + v31)


# ---- password file (byte 0: even = a file, odd = one hash field) ----

def passwd_seeds():
    salt = b"0123456789ab"
    h7 = hashlib.pbkdf2_hmac("sha512", b"secret", salt, 2)
    line7 = "$7$2$%s$%s" % (base64.b64encode(salt).decode(), base64.b64encode(h7).decode())
    h6 = hashlib.sha512(b"secret" + salt).digest()
    line6 = "$6$%s$%s" % (base64.b64encode(salt).decode(), base64.b64encode(h6).decode())
    write("fuzz_passwd", "file", ("\x00# users\nalice:%s\nbob:%s\r\n\n" % (line7, line6)).encode())
    write("fuzz_passwd", "hash7", ("\x01" + line7).encode())
    write("fuzz_passwd", "hash6", ("\x01" + line6).encode())


# ---- management API (fuzz_http.c: method|creds<<3|bodies<<5, route, seg\nauth\nbody) ----

def http_seeds():
    GET, POST, PUT, DELETE = 0, 1, 2, 3
    ADMIN_KEY, ADMIN_TOKEN, VIEWER = 1 << 3, 2 << 3, 3 << 3
    seeds = {
        "status": (GET, 0, "", "", ""),
        "login": (POST, 2, "", "", '{"username":"admin","password":"public"}'),
        "users_add": (POST | ADMIN_TOKEN, 4, "", "", '{"username":"u1","password":"pass-word-1","role":"viewer","description":"d"}'),
        "user_put": (PUT | ADMIN_KEY, 5, "view", "", '{"role":"administrator","description":"x"}'),
        "change_pwd": (POST | ADMIN_TOKEN, 6, "admin", "", '{"old_pwd":"public","new_pwd":"another-pass"}'),
        "key_create": (POST | ADMIN_KEY, 7, "", "", '{"name":"k2","desc":"d","enable":true,"expired_at":"2030-01-01T00:00:00Z"}'),
        "key_put": (PUT | ADMIN_KEY, 8, "fz", "", '{"enable":false,"expired_at":"infinity"}'),
        "viewer_post": (POST | VIEWER, 7, "", "", '{"name":"k3"}'),
        "basic_bad": (GET, 4, "", "Basic Zm9vOmJhcg==", ""),
        "bearer_bad": (GET, 4, "", "Bearer v1.eyJ1IjoiYSJ9.AAAA", ""),
        "banned_body": (0x20, 0, "", "", '{"as":"clientid","who":"c1","by":"me","reason":"r","until":"2099-01-01T00:00:00+01:00"}'),
        "banned_number": (0x20, 0, "", "", '{"as":"peerhost","who":"127.0.0.1","until":4102444800}'),
        "join_body": (0x20, 0, "", "", '{"node":"hamqtt@127.0.0.2"}'),
        "raw_path": (DELETE | ADMIN_KEY, 200, "/api/v5/cluster/n%40h/force_leave", "", ""),
        # bit 6: the header line is the claims of a token the harness signs
        "signed_claims": (GET | 0x40, 4, "", '{"u":"admin","r":"administrator","c":false,"iat":1,'
                          '"exp":4102444800,"j":"0123456789abcdef","n":"fz@127.0.0.1"}', ""),
        "signed_gone_user": (POST | 0x40, 7, "", '{"u":"gone","r":"viewer","c":true,"iat":1e300,'
                             '"exp":-1e999,"j":"x","n":"other@h"}', '{"name":"k"}'),
    }
    for name, (m, r, seg, auth, body) in seeds.items():
        write("fuzz_http", name, bytes([m, r]) + ("%s\n%s\n%s" % (seg, auth, body)).encode())


# ---- server answers (fuzz_auth_answer.c: byte 0 % 4 = mode) ----

def auth_seeds():
    write("fuzz_auth_answer", "tmpl", b"\x00" + b'{"c":"${clientid}","u":"${username}","p":"${password}","h":"${peerhost}"}'
          b"\x00cid\"1\x00us er\x00pa\\ss\x01")
    write("fuzz_auth_answer", "tmpl_url", b"\x00/auth?u=${username}&c=${clientid}&x=${bad}\x00c\x00\xc3\xa9/?&\x00pw")
    write("fuzz_auth_answer", "http_allow", b"\x01\x00\x00" + b'{"result":"allow","is_superuser":true}')
    write("fuzz_auth_answer", "http_deny", b"\x01\x00\x00" + b'{"result":"deny"}')
    write("fuzz_auth_answer", "http_204", b"\x01\x01\x00")
    sha = hashlib.sha256(b"salt" + b"pw").hexdigest().encode()
    # rule byte: f_hash 0, f_salt 1 (bits 2-3 = 2), f_super 2 (bits 4-5 = 3), alg sha256 (1 << 6)
    rule = 0 | (2 << 2) | (3 << 4) | (1 << 6)
    write("fuzz_auth_answer", "redis_sha256", b"\x02" + bytes([rule]) +
          b"*3\r\n$%d\r\n%s\r\n$4\r\nsalt\r\n$1\r\n1\r\n" % (len(sha), sha))
    write("fuzz_auth_answer", "redis_nil", b"\x02\x00*3\r\n$-1\r\n$-1\r\n$-1\r\n")
    write("fuzz_auth_answer", "redis_err", b"\x02\x00-ERR wrong type\r\n")
    write("fuzz_auth_answer", "hash_pbkdf2", b"\x03\x13salt\x00" +
          hashlib.pbkdf2_hmac("sha512", b"pw", b"salt", 2).hex().encode() + b"\x00pw")


# ---- session blobs (sess_serial.h) and store values (store_lmdb_codec.c) ----

def vstr(x):
    x = x.encode() if isinstance(x, str) else x
    return vi(len(x)) + x


def wire_msg(topic, payload, qos=1, retain=False, expiry=None, props=b""):
    flags = (1 if retain else 0) | (2 if expiry is not None else 0)
    out = s(topic) + bytes([qos, flags])
    if expiry is not None:
        out += struct.pack(">I", expiry)
    return out + struct.pack(">I", 0x1234) + struct.pack(">I", len(props)) + props + \
        struct.pack(">I", len(payload)) + payload


def sess_seeds():
    body = vstr("cid-1") + bytes([5]) + struct.pack(">I", 3600) + bytes([0x07]) + \
        struct.pack(">Q", 5000) + struct.pack(">H", 3)
    body += struct.pack(">I", 10) + struct.pack(">Q", 2000) + wire_msg("will/t", b"bye", 1, True, 60)
    subs = [("a/+/c", 0x2E, 7), ("$share/g/x/#", 0x01, 0), ("#", 0x1A, 300)]
    body += vi(len(subs)) + b"".join(vstr(f) + bytes([o]) + vi(i) for f, o, i in subs)
    infl = struct.pack(">H", 1) + bytes([1, 0x02, 1]) + vi(7) + wire_msg("a/b/c", b"x", 1, False, None, b"\x01\x01")
    infl += struct.pack(">H", 2) + bytes([2, 0x06, 0])
    body += vi(2) + infl
    q = struct.pack(">H", 0) + bytes([1, 0x08, 0]) + vstr("$share/g/x/#") + wire_msg("x/y", b"q", 1)
    body += vi(1) + q
    body += vi(2) + struct.pack(">H", 9) + struct.pack(">H", 10)
    body += vi(1) + struct.pack(">H", 9) + bytes([0]) + vi(2) + vstr("cother") + vstr("g$share/g/x/#")
    write("fuzz_sess_serial", "full", b"HQSS\x03" + body)
    write("fuzz_sess_serial", "empty", b"HQSS\x03" + vstr("") + bytes([0]) + struct.pack(">I", 0) +
          bytes([0]) + struct.pack(">H", 1) + b"\x00\x00\x00\x00\x00")

    def u32s(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack(">I", len(x)) + x

    def lmsg(topic, payload):
        return u32s(topic) + struct.pack(">Q", 42) + u32s(b"\x01\x01") + u32s(payload) + \
            struct.pack(">q", 99) + struct.pack(">I", 30) + struct.pack(">I", 7) + \
            struct.pack(">Q", 1700000000000) + struct.pack(">H", 3) + u32s("node1") + bytes([1, 3])
    # byte 0 < 128: LMDB, kind = 1 + byte % 13 (1 session, 3 sub, 5 msg, 6 qent, 11 retain, 13 mark)
    write("fuzz_store_codec", "lmdb_session", bytes([0, 1]) + u32s("cid") + u32s("node1") +
          struct.pack(">qqII", 5, 6, 3600, 10) + bytes([5, 1]) + lmsg("will/t", b"w"))
    write("fuzz_store_codec", "lmdb_sub", bytes([2, 1]) + u32s("a/+") + struct.pack(">I", 7) + bytes([0x2E]))
    write("fuzz_store_codec", "lmdb_msg", bytes([4, 1]) + lmsg("a/b", b"payload"))
    write("fuzz_store_codec", "lmdb_qent", bytes([5, 1]) + struct.pack(">QH", 42, 1) + bytes([1, 1, 0]) +
          struct.pack(">III", 2, 7, 300) + u32s("$share/g/#"))
    write("fuzz_store_codec", "lmdb_mark", bytes([12, 1]) + u32s("ctarget"))
    # byte 0 >= 128: Redis, decoder = byte % 6; [n1][a][n2][b][value]
    write("fuzz_store_codec", "redis_sess", bytes([132, 3]) + b"cid" + bytes([0]) + u32s("node1") +
          struct.pack(">qqII", 5, 6, 3600, 10) + bytes([5, 0]))
    write("fuzz_store_codec", "redis_qent", bytes([134, 3]) + b"cid" + bytes([8]) + struct.pack(">Q", 9) +
          struct.pack(">QH", 42, 1) + bytes([1, 1, 0]) + u32s(struct.pack(">II", 7, 300)) + u32s("$share/g/#"))
    write("fuzz_store_codec", "redis_msg", bytes([137, 8]) + struct.pack(">Q", 42) + bytes([0]) +
          u32s("a/b") + u32s(b"") + u32s(b"p") + u32s("n") + struct.pack(">qIIQH", 1, 2, 3, 4, 5) + bytes([1, 0, 1]))


# ---- the archive's INSERT template: the text, NUL, a payload ----

def arc_tmpl_seeds():
    write("fuzz_arc_tmpl", "seed1", b"INSERT INTO t (a,b,c) VALUES (${topic}, ${payload.temp}, ${payload.a.0})\0"
          b'{"temp": 21.5, "a": [1, {"x": true}]}')
    write("fuzz_arc_tmpl", "seed2", b"insert into `x` values ('it''s', ${id}, ${payload}, ${qos}, ${retain}, "
          b"${timestamp}, ${node}, ${username}, ${clientid}, ${payload.b.c})\0not json")


if __name__ == "__main__":
    mqtt_seeds()
    passwd_seeds()
    http_seeds()
    auth_seeds()
    sess_seeds()
    arc_tmpl_seeds()
