"""A node's GET /metrics (Prometheus text format) read for assertions: every
sample by its name and labels, or the node-wide counters by reason."""

import re
import urllib.request

from mqttraw import T


def scrape(b):
    """The text of b's /metrics (b: a conftest Broker or a cluster node)."""
    b.wait_listening(b.http_port)
    url = "http://127.0.0.1:%d/metrics" % b.http_port
    with urllib.request.urlopen(url, timeout=T(5)) as r:
        return r.read().decode()


def samples(b):
    """{'name{labels}': value} of every sample line of b's /metrics."""
    vals = {}
    for line in scrape(b).splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            f = float(v)  # some samples are fractional (process_cpu_seconds_total)
            vals[k] = int(f) if f.is_integer() else f
    return vals


def value(b, name, **labels):
    """The first sample of name carrying every label="value" given, None if
    there is none (a counter the node does not export)."""
    want = ['%s="%s"' % kv for kv in labels.items()]
    for k, v in samples(b).items():
        if k.startswith(name + "{") and all(w in k for w in want):
            return v
    return None


def metric(b, name, **labels):
    """value(), failing the test where the sample is missing."""
    v = value(b, name, **labels)
    if v is None:
        raise AssertionError("no %s{%s}" % (name, ",".join("%s=%s" % kv for kv in labels.items())))
    return v


def by_reason(b):
    """{(name, reason or None): value} of the samples labelled with the node
    only or the node and a reason."""
    out = {}
    for line in scrape(b).splitlines():
        mt = re.match(r'^(\w+)\{node="[^"]*"(?:,reason="(\w+)")?\} (\d+)$', line)
        if mt:
            out[(mt.group(1), mt.group(2))] = int(mt.group(3))
    return out
