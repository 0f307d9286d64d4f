"""58 The OpenAPI 3 document at /api-docs (issue 11 item 1): served open (like
EMQX's) from the binary, the same bytes as src/http/apidocs/openapi.json;
structurally valid OpenAPI 3.0 (checked by hand: openapi, info, paths,
operations with responses, path parameters declared, every $ref resolves,
security schemes known); and it matches the route table: every route of
src/http/http_api.c (parsed from the C) is documented with its method and
no documented operation is missing from the table, open routes are the
ones documented with `security: []`. On a live node every documented
path+method answers something other than 404 "no such path" or 405 (GETs
called as they are; POST/PUT/DELETE with an invalid body or an unknown id),
so a route added without documentation, or documented wrongly, fails."""

import gzip
import http.client
import json
import os
import re

from conftest import REPO, api_headers
from mqttraw import T

DOC_FILE = os.path.join(REPO, "src", "http", "apidocs", "openapi.json")
API_C = os.path.join(REPO, "src", "http", "http_api.c")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# the tests' own paged route (404 "no such path" without HQ_TEST_FANOUT_ITEMS)
UNDOCUMENTED_PREFIX = "/api/v5/_test/"


def route_table():
    """[(METHOD, pattern, flags)] of http_api.c's `routes`, the C parsed:
    string macros (#define NAME "...") expanded, adjacent literals joined."""
    src = open(API_C).read()
    macros = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', src))
    body = src[src.index("routes[] = {"):]
    body = body[:body.index("\n};")]
    # comments stand on their own lines ("/*" also occurs inside paths)
    body = re.sub(r"(?m)^\s*/\*.*?\*/", "", body, flags=re.S)
    rows = []
    for m in re.finditer(r'\{\s*"(\w+)",\s*([^,]+),\s*(\w+),\s*([^}]+)\}', body):
        method, pexpr, _fn, flags = m.groups()
        parts = re.findall(r'"([^"]*)"|(\w+)', pexpr)
        path = "".join(lit if lit else macros[name] for lit, name in parts)
        rows.append((method, path, flags.strip()))
    assert len(rows) > 50, rows  # the parse found the table
    return rows


def norm(path):
    """A route pattern or a documented path with every parameter as '*'."""
    return "/".join("*" if s in ("*", "**") or re.fullmatch(r"\{[^}]+\}", s) else s
                    for s in path.split("/"))


def load_doc():
    with open(DOC_FILE) as f:
        return json.load(f)


def resolve(doc, ref):
    assert ref.startswith("#/"), "only local $refs: %s" % ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, "$ref %s does not resolve" % ref
        node = node[part]
    return node


def walk_refs(doc, node, where="#"):
    n = 0
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                assert isinstance(v, str), where
                resolve(doc, v)
                n += 1
            else:
                n += walk_refs(doc, v, where + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            n += walk_refs(doc, v, "%s/%d" % (where, i))
    return n


def deref(doc, o):
    return resolve(doc, o["$ref"]) if isinstance(o, dict) and "$ref" in o else o


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_document_is_valid_openapi_3():
    doc = load_doc()
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"]), doc.get("openapi")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {**schemes["basicAuth"], "type": "http", "scheme": "basic"}
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert walk_refs(doc, doc) > 50
    for req in doc.get("security", []):
        assert set(req) <= set(schemes), req
    ops = 0
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        assert set(item) <= set(METHODS) | {"parameters", "summary", "description"}, path
        for method, op in item.items():
            ops += 1
            where = "%s %s" % (method.upper(), path)
            assert op.get("summary"), where
            assert op["responses"], where
            for code, r in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|default", code), where
                assert "description" in deref(doc, r), (where, code)
            for req in op.get("security", []):
                assert set(req) <= set(schemes), where
            params = [deref(doc, p) for p in op.get("parameters", [])]
            for p in params:
                assert p["in"] in ("path", "query", "header", "cookie") and p["name"], where
                assert "schema" in p, (where, p["name"])
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert all(p["required"] is True for p in params if p["in"] == "path"), where
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), where
            if "requestBody" in op:
                assert "application/json" in deref(doc, op["requestBody"])["content"], where
    assert ops > 50
    # the paged shape is one shared component
    page = doc["components"]["schemas"]["Page"]
    assert set(page["properties"]) == {"data", "meta"}
    assert set(resolve(doc, page["properties"]["meta"]["$ref"])["properties"]) == \
        {"page", "limit", "count", "hasnext"}


def test_every_route_documented():
    doc = load_doc()
    documented = {}
    for path, method, op in operations(doc):
        documented[(method.upper(), norm(path))] = op
    table = {(m, norm(p)): flags for m, p, flags in route_table()
             if not p.startswith(UNDOCUMENTED_PREFIX)}
    missing = sorted(set(table) - set(documented))
    assert not missing, "routes of http_api.c not in openapi.json: %s" % missing
    extra = sorted(set(documented) - set(table))
    assert not extra, "documented but not in http_api.c's table: %s" % extra
    # open routes (HTTP_R_OPEN) are the ones documented without credentials
    for key, flags in table.items():
        is_open = "HTTP_R_OPEN" in flags
        assert (documented[key].get("security") == []) == is_open, (key, flags)
    # list routes take page and limit, by the shared parameters
    for (m, p), op in documented.items():
        refs = {x.get("$ref") for x in op.get("parameters", [])}
        if "#/components/parameters/page" in refs:
            assert "#/components/parameters/limit" in refs, p


def request(node, method, path, body=None, headers=None, timeout=8.0):
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=T(timeout))
    try:
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def test_served_open_and_identical(broker):
    b = broker()
    b.wait_listening(b.http_port)
    raw = open(DOC_FILE, "rb").read()
    for path in ("/api-docs", "/api-docs/openapi.json"):
        st, body, h = request(b, "GET", path)  # no credentials: open
        assert st == 200, (path, st, body[:200])
        assert h["Content-Type"].startswith("application/json")
        assert body == raw
        st, body, h = request(b, "GET", path, headers={"Accept-Encoding": "gzip"})
        assert st == 200 and h.get("Content-Encoding") == "gzip"
        assert gzip.decompress(body) == raw
        st, body, _ = request(b, "GET", path, headers={"If-None-Match": h["ETag"]})
        assert st == 304 and body == b""
    st, _, _ = request(b, "POST", "/api-docs", body="{}", headers=api_headers(b.data_dir))
    assert st == 405


def fill(path, node_name):
    """A concrete path for a documented one: known objects where a route
    needs one to answer at all, else names that do not exist."""
    vals = {"node": node_name, "file": "app.js", "lib": "uplot",
            "clientid": "no-such-client", "topic": "no/such/topic"}
    out = re.sub(r"\{([^}]+)\}", lambda m: vals.get(m.group(1), "no-such-" + m.group(1)), path)
    return out.replace("/vendor/uplot/app.js", "/vendor/uplot/uPlot.min.css")


def test_every_documented_operation_answers(broker):
    b = broker()
    b.wait_listening(b.http_port)
    creds = api_headers(b.data_dir)
    assert creds
    doc = load_doc()
    st, body, _ = request(b, "GET", "/api/v5/status")
    node_name = json.loads(body)["node"]
    seen = 0
    for path, method, op in operations(doc):
        target = fill(path, node_name)
        where = "%s %s" % (method.upper(), target)
        if method == "get":
            st, body, _ = request(b, "GET", target, headers=creds)
        else:  # an invalid body: nothing is changed, the route still answers
            st, body, _ = request(b, method.upper(), target, body="{not json", headers=creds)
        assert st != 405, (where, body[:200])
        if st == 404:
            assert json.loads(body)["message"] != "no such path", where
        assert st < 500 and st not in (401, 403), (where, st, body[:200])
        assert str(st) in op["responses"] or (st == 304), \
            "%s answered %d, not documented (%s)" % (where, st, sorted(op["responses"]))
        if st == 200 and op.get("security") != [] and "json" in str(op["responses"]["200"]):
            json.loads(body)
        # without credentials a protected route answers 401 before anything
        if op.get("security") != []:
            st, _, _ = request(b, method.upper(), target, headers={})
            assert st == 401, (where, st)
        seen += 1
    assert seen > 50
