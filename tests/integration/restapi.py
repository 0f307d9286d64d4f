"""A node's REST API (/api/v5) for the tests: JSON in, (status, JSON) out,
with the node's own API key (conftest.api_headers) unless told otherwise."""

import json
import urllib.error
import urllib.request

from conftest import api_headers
from mqttraw import T


def api(node, method, path, body=None, headers=None):
    """(status, parsed JSON or None) of a request to node's REST API, with its
    local API key unless headers are given."""
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json"}
    h.update(api_headers(node.data_dir) if headers is None else headers)
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.http_port, path),
                                 data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=T(5)) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None
