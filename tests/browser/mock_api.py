#!/usr/bin/python3
"""mock_api.py PORT WEB_DIR - a stand-in node for the dashboard's browser test.

Serves the files of WEB_DIR (with the node's Content-Security-Policy, so a
CSP violation shows up here too) and answers the /api/v5 routes the pages use
in the shapes the issue-11 briefs give (EMQX 5's): nodes, monitor,
monitor_current, clients, subscriptions, topics, retained, publish, alarms,
log_level, plus login/users/api_key/cluster like http_mgmt.c. State is in
memory; every mutating call is recorded and served at GET /_mock/actions so
the test can check what the page did. Used by test_56 to exercise the pages
whose routes other branches build, before they are merged. Loopback only.
"""
import base64
import json
import mimetypes
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
NODES = ["hamqtt@127.0.0.1", "hamqtt@127.0.0.2", "hamqtt@127.0.0.3"]
START = time.time()

state = {
    "password": "public", "must_change": True, "tokens": {}, "revoked": set(),
    "users": [{"username": "admin", "role": "administrator", "description": "",
               "password_change_required": True}],
    "keys": [], "level": "debug", "actions": [],
    "clients": [{"clientid": "dash-kick-me", "username": "u1", "ip_address": "127.0.0.1",
                 "port": 40000 + i, "proto_ver": 5, "connected": True,
                 "conn_state": "connected", "node": NODES[i % 3],
                 "connected_at": "2026-01-01T00:00:00Z", "subscriptions_cnt": 1,
                 "mqueue_len": 0, "inflight_cnt": 0} for i in range(1)]
    + [{"clientid": "c%02d" % i, "username": None, "ip_address": "127.0.0.1", "port": 41000 + i,
        "proto_ver": 4, "connected": i % 4 != 0, "conn_state": "connected" if i % 4 else
        "disconnected", "node": NODES[i % 3], "connected_at": "2026-01-01T00:00:00Z",
        "subscriptions_cnt": 0} for i in range(30)],
    "subs": [{"clientid": "dash-kick-me", "topic": "dash/sub/#", "qos": 1, "node": NODES[0],
              "nl": 0, "rap": 0, "rh": 0}],
    "retained": {"dash/ret/%d" % i: "retained-%d" % i for i in (1, 2, 3)},
}


def paged(items, q):
    page = int(q.get("page", ["1"])[0])
    limit = int(q.get("limit", ["100"])[0])
    window = items[(page - 1) * limit: page * limit]
    return {"data": window, "meta": {"page": page, "limit": limit, "count": len(items),
                                     "hasnext": page * limit < len(items)}}


class H(BaseHTTPRequestHandler):
    web = "."

    def log_message(self, *a):
        pass

    def send(self, status, doc=None, ctype="application/json", body=None, headers=()):
        if body is None:
            body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def err(self, status, code, msg, headers=()):
        self.send(status, {"code": code, "message": msg}, headers=headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}") if n else {}

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def static(self, path):
        rel = "index.html" if path == "/" else path.lstrip("/")
        full = os.path.realpath(os.path.join(self.web, rel))
        if not full.startswith(os.path.realpath(self.web) + os.sep) or not os.path.isfile(full):
            return self.err(404, "NOT_FOUND", "no such file")
        ctype = mimetypes.guess_type(full)[0] or "text/plain"
        if full.endswith((".js", ".mjs")):
            ctype = "text/javascript"
        with open(full, "rb") as f:
            self.send(200, ctype=ctype, body=f.read(), headers=[("Content-Security-Policy", CSP)])

    def who(self):
        a = self.headers.get("Authorization") or ""
        t = a[7:] if a.startswith("Bearer ") else None
        if not t or t not in state["tokens"] or t in state["revoked"]:
            return None
        return state["tokens"][t]

    def route(self, m):
        u = urlsplit(self.path)
        path, q = u.path, parse_qs(u.query)
        if path == "/_mock/actions":  # for the test: what the page asked for
            return self.send(200, state["actions"])
        if not path.startswith("/api/v5/"):
            return self.static(path)
        p = path[len("/api/v5"):]
        if p == "/login" and m == "POST":
            b = self.body()
            user = next((x for x in state["users"] if x["username"] == b.get("username")), None)
            pw = state["password"] if b.get("username") == "admin" else (user or {}).get("_pw")
            if not user or b.get("password") != pw:
                return self.err(401, "BAD_USERNAME_OR_PWD", "wrong username or password")
            tok = "tok%d" % len(state["tokens"])
            must = state["must_change"] if user["username"] == "admin" else False
            state["tokens"][tok] = {"user": user["username"], "role": user["role"], "must": must}
            return self.send(200, {"token": tok, "version": "mock", "role": user["role"],
                                   "password_change_required": must, "expires_in": 3600})
        who = self.who()
        if not who:
            return self.err(401, "UNAUTHORIZED", "credentials required",
                            headers=[("WWW-Authenticate", "Basic, Bearer")])
        if p == "/logout":
            state["revoked"].add(self.headers["Authorization"][7:])
            return self.send(204)
        if p.endswith("/change_pwd") and m == "POST":
            b = self.body()
            if b.get("old_pwd") != state["password"]:
                return self.err(400, "BAD_USERNAME_OR_PWD", "wrong password")
            state["password"], state["must_change"] = b["new_pwd"], False
            state["users"][0]["password_change_required"] = False
            state["revoked"].update(t for t, w in state["tokens"].items() if w["user"] == "admin")
            return self.send(204)
        if who["must"]:
            return self.err(403, "PASSWORD_CHANGE_REQUIRED", "change the password first")
        if m != "GET" and who["role"] != "administrator":
            return self.err(403, "FORBIDDEN", "administrators only")
        if m != "GET":
            state["actions"].append([m, unquote(p)])
        return self.api(m, p, q)

    def api(self, m, p, q):
        now = int(time.time() * 1000)
        if p == "/cluster":
            return self.send(200, {"name": "mock", "self": NODES[0], "nodes": [
                {"node": n, "addr": "127.0.0.%d:4370" % (i + 1), "status": "running",
                 "self": i == 0, "incarnation": 1} for i, n in enumerate(NODES)]})
        if p == "/nodes":
            return self.send(200, [{"node": n, "node_status": "running", "version": "mock",
                                    "uptime": int((time.time() - START) * 1000) + 3600000,
                                    "connections": 10 + i, "memory_used": 50 << 20,
                                    "memory_total": 8 << 30, "load1": 0.5, "load5": 0.4,
                                    "load15": 0.3} for i, n in enumerate(NODES)])
        if p == "/monitor":
            return self.send(200, [{"time_stamp": now - (5 - k) * 10000, "connections": 10 + k,
                                    "received": 100 * k, "sent": 90 * k, "dropped": 0}
                                   for k in range(5)])
        if p == "/monitor_current":
            t = time.time()
            return self.send(200, {"connections": 10 + int(t) % 5, "received_msg_rate": 12.5,
                                   "sent_msg_rate": 11.0, "dropped_msg_rate": 0})
        if p == "/clients" and m == "GET":
            items = state["clients"]
            like = (q.get("like_clientid") or [""])[0]
            items = [c for c in items if like in c["clientid"]]
            return self.send(200, paged(items, q))
        if p.startswith("/clients/"):
            rest = p[len("/clients/"):]
            cid = unquote(rest.split("/")[0])
            c = next((x for x in state["clients"] if x["clientid"] == cid), None)
            if not c:
                return self.err(404, "CLIENTID_NOT_FOUND", "no such client")
            if rest.endswith("/subscriptions"):
                return self.send(200, [s for s in state["subs"] if s["clientid"] == cid])
            if m == "DELETE":
                state["clients"].remove(c)
                return self.send(204)
            return self.send(200, c)
        if p == "/subscriptions":
            return self.send(200, paged(state["subs"], q))
        if p == "/topics":
            return self.send(200, paged([{"topic": s["topic"], "node": s["node"]}
                                         for s in state["subs"]], q))
        if p == "/mqtt/retainer/messages":
            return self.send(200, paged([{"topic": t, "qos": 1, "from_clientid": "pub",
                                          "publish_at": "2026-01-01T00:00:00Z"}
                                         for t in sorted(state["retained"])], q))
        if p.startswith("/mqtt/retainer/message/"):
            t = unquote(p[len("/mqtt/retainer/message/"):])
            if t not in state["retained"]:
                return self.err(404, "NOT_FOUND", "no retained message")
            if m == "DELETE":
                del state["retained"][t]
                return self.send(204)
            return self.send(200, {"topic": t, "qos": 1, "from_clientid": "pub",
                                   "payload": base64.b64encode(state["retained"][t].encode()).decode()})
        if p == "/publish" and m == "POST":
            b = self.body()
            state["actions"][-1].append(b)
            return self.send(200, {"id": "0005A1B2C3D4E5F6"})
        if p == "/alarms":
            act = (q.get("activated") or ["true"])[0] == "true"
            items = [{"node": NODES[2], "name": "node_down:hamqtt@127.0.0.9", "message": "a node is down",
                      "activated": act, "activate_at": "2026-01-01T00:00:00Z", "duration": 65000}]
            return self.send(200, paged(items, q))
        if p == "/log_level":
            if m == "PUT":
                state["level"] = self.body().get("level")
            return self.send(200, {"level": state["level"]})
        if p == "/users":
            if m == "POST":
                b = self.body()
                state["users"].append({"username": b["username"], "role": b.get("role", "administrator"),
                                       "description": "", "password_change_required": False,
                                       "_pw": b["password"]})
            return self.send(200, [{k: v for k, v in x.items() if not k.startswith("_")}
                                   for x in state["users"]])
        if p == "/api_key":
            if m == "POST":
                b = self.body()
                k = {"name": b["name"], "api_key": "k%d" % len(state["keys"]), "enable": True,
                     "expired_at": 0, "created_at": int(time.time()), "desc": b.get("desc", "")}
                state["keys"].append(k)
                return self.send(200, dict(k, api_secret="s3cr3t"))
            return self.send(200, state["keys"])
        if p.startswith("/api_key/") and m == "DELETE":
            name = unquote(p[len("/api_key/"):])
            state["keys"] = [k for k in state["keys"] if k["name"] != name]
            return self.send(204)
        return self.err(404, "NOT_FOUND", "no such path")


def main():
    port, web = int(sys.argv[1]), sys.argv[2]
    H.web = web
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    print("mock api on %d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
