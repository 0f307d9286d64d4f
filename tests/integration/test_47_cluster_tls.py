"""47 TLS on cluster links (issue 10 item 5, cluster.tls.*, ARCHITECTURE.md
"Cluster link TLS"): real hamqttd nodes (cluster.py) with certificates made
at test time by the openssl command line (certs.py, as test_40).

  - three nodes with mutual TLS join, route QoS 1 across nodes and hand a
    session over from one node to another (DISCONNECT 0x8E, session present);
  - a node whose certificate comes from another CA, a node without TLS, and a
    node with a certificate of the right CA naming another host are refused,
    with a log line on both sides; the TLS nodes stay linked;
  - the links are encrypted: two nodes talk through TCP relays that record
    the bytes both ways; a payload marker crosses in the clear without TLS
    (the control) and never with it."""

import os
import re
import socket
import threading
import uuid

import pytest

import mqttraw as m
from certs import CertDir

EXPIRY_300 = [(m.SESSION_EXPIRY, 300)]


def _node_cert(certs, name, ca, ip):
    """A node certificate: IP SAN of its host, usable as server and client."""
    certs.leaf(name, ca, name, san="IP:" + ip, eku="serverAuth,clientAuth")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = CertDir(tmp_path_factory.mktemp("clucerts"))
    c.ca("ca")
    c.ca("otherca")
    for i in (1, 2, 3):
        _node_cert(c, "node%d" % i, "ca", "127.0.0.%d" % i)
    _node_cert(c, "stranger3", "otherca", "127.0.0.3")
    return c


def tls_conf(certs, cert=None, ca="ca"):
    """cluster.tls.* of a node: its own certificate (node<i> by default)."""
    def c(node):
        return certs((cert or "node%d" % node.index) + ".pem")

    def k(node):
        return certs((cert or "node%d" % node.index) + ".key")
    return {"cluster.tls.enable": "true", "cluster.tls.certfile": c, "cluster.tls.keyfile": k,
            "cluster.tls.cacertfile": certs(ca + ".pem")}


def client(node, cid, **kw):
    c = node.raw(version=5, auto_ack=True)
    c.connect(cid, **kw)
    return c


def test_three_tls_nodes_route_and_take_over(cluster, certs):
    """Three nodes with cluster.tls join (the cookie challenge runs inside
    TLS); QoS 1 crosses nodes both ways; a session moves from node 1 to
    node 2 (0x8E on the old connection, session present on the new)."""
    cl = cluster(3, tls_conf(certs))
    cl.join_all()
    n1, n2, n3 = cl.nodes
    for n in cl.nodes:
        n.wait_log(r"listening for links on .* TLS\)")
        n.wait_log(r"cluster: linked with")
    sub = client(n2, "tls-sub")
    assert sub.subscribe("tls/+", qos=1).codes == [1]
    pubs = [client(n, "tls-pub%d" % n.index) for n in (n1, n3)]
    for i in range(20):
        for j, p in enumerate(pubs):
            p.publish("tls/%d" % j, b"m%02d" % i, qos=1)
    got = sub.publishes(40)
    assert sorted(p.payload for p in got) == sorted([b"m%02d" % i for i in range(20)] * 2)
    assert {p.qos for p in got} == {1}
    # takeover across TLS links
    old = client(n1, "tls-x", props=EXPIRY_300)
    assert old.subscribe("to/t", qos=1).codes == [1]
    pubs[1].publish("to/t", b"before", qos=1)
    assert old.expect(m.PUBLISH).payload == b"before"
    new = n2.raw(version=5, auto_ack=True)
    assert new.connect("tls-x", clean=False, props=EXPIRY_300).session_present
    old.expect_disconnect(m.RC_SESSION_TAKEN_OVER)
    pubs[1].publish("to/t", b"after", qos=1)
    p = new.expect(m.PUBLISH)
    if p.payload == b"before":  # resent: its PUBACK may not have reached node 1
        assert p.dup, p
        p = new.expect(m.PUBLISH)
    assert p.payload == b"after"


def _refused_join(cl, n1, n3, log1, log3):
    """n3's `cluster join n1` fails; both logs say why; n1 and n2 stay linked."""
    since = (n1.log_size(), n3.log_size())
    rc, out, err = n3.ctl("cluster", "join", n1.name, timeout=30)
    assert rc == 1, "join -> %d: %s%s" % (rc, out, err)
    n1.wait_log(log1, since=since[0], timeout=5)
    n3.wait_log(log3, since=since[1], timeout=5)
    n2 = cl.nodes[1]
    cl.assert_members_stay(n1, cl.view(running=[n1, n2]), duration=0.5)
    cl.assert_members_stay(n3, cl.view(running=[n3]), duration=0.3)


def test_wrong_certificate_or_no_tls_is_refused(cluster, certs):
    """Nodes 1 and 2 link with TLS. Node 3 is refused, each time with a line
    in both logs: with a certificate of another CA, without TLS at all, and
    with a certificate of the right CA that names node 2's host
    (cluster.tls.verify_hostname). Nodes 1 and 2 keep their link."""
    cl = cluster(3, tls_conf(certs),
                 node_overrides={3: tls_conf(certs, cert="stranger3", ca="otherca")})
    n1, n2, n3 = cl.nodes
    rc, out, err = n2.ctl("cluster", "join", n1.name)
    assert rc == 0, out + err
    cl.wait_members(n1, cl.view(running=[n1, n2]), timeout=10)
    # another CA: node 3 does not trust node 1 and node 1 does not trust node 3
    _refused_join(cl, n1, n3,
                  r"refused link from .*TLS handshake failed: .*(unknown ca|certificate)",
                  r"link to hamqtt@127\.0\.0\.1 .*TLS handshake failed: .*certificate verify "
                  r"failed")
    # no TLS at all
    assert n3.stop() == 0
    n3.overrides = {"cluster.tls.enable": "false"}
    n3.restart()
    _refused_join(cl, n1, n3, r"refused link from hamqtt@127\.0\.0\.3 .*does not use TLS",
                  r"refused the link: TLS .*requires TLS")
    # the right CA, but the certificate names 127.0.0.2
    assert n3.stop() == 0
    n3.overrides = tls_conf(certs, cert="node2")
    n3.restart()
    _refused_join(cl, n1, n3, r"refused link from hamqtt@127\.0\.0\.3 .*does not name 127\.0\.0\.3",
                  r"refused the link: TLS .*does not name")
    for n in (n1, n2, n3):
        assert not n.sanitizer_reports()


# ---- the links are encrypted --------------------------------------------------

class Relay:
    """A TCP relay on host:ephemeral port to target, recording every byte
    both ways (bounded: 8 MiB)."""

    def __init__(self, host, target):
        self.target = target
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, 0))
        self.ls.listen(8)
        self.addr = "%s:%d" % self.ls.getsockname()
        self.data = bytearray()
        self.conns = 0
        self.lock = threading.Lock()
        self.stopped = False
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=5)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += 1
                self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            try:
                d = src.recv(65536)
            except OSError:
                d = b""
            if not d:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self.lock:
                if len(self.data) < 8 << 20:
                    self.data += d
            try:
                dst.sendall(d)
            except OSError:
                return

    def bytes(self):
        with self.lock:
            return bytes(self.data)

    def close(self):
        self.stopped = True
        self.ls.close()
        with self.lock:
            for s in self.socks:
                s.close()


def _point_members_at(node, other, relay):
    """Rewrite node's member list so that it reaches other through relay."""
    path = os.path.join(node.data_dir, "cluster.members")
    with open(path) as f:
        text = f.read()
    text, k = re.subn(r"^(member %s )\S+" % re.escape(other.name), r"\g<1>" + relay.addr,
                      text, flags=re.M)
    assert k == 1, text
    with open(path, "w") as f:
        f.write(text)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-control"])
def test_links_are_encrypted(cluster, certs, tls):
    """Two nodes whose only way to each other is a pair of recording relays
    (their member lists point there; hostname checks off, as the relay is a
    different address): a QoS 1 message whose topic and payload carry a
    marker crosses; the relays saw the link's bytes, and the marker is among
    them only without TLS."""
    over = dict(tls_conf(certs), **{"cluster.tls.verify_hostname": "false"}) if tls else {}
    cl = cluster(2, over)
    n1, n2 = cl.nodes
    cl.join_all()
    assert n2.stop() == 0 and n1.stop() == 0
    relays = [Relay(n1.host, (n1.host, cl.port)), Relay(n2.host, (n2.host, cl.port))]
    try:
        _point_members_at(n2, n1, relays[0])
        _point_members_at(n1, n2, relays[1])
        n1.restart()
        n2.restart()
        cl.wait_all_running(timeout=15)
        marker = ("MARKER%s" % uuid.uuid4().hex).encode()
        sub = client(n2, "enc-sub")
        assert sub.subscribe("enc/" + marker.decode(), qos=1).codes == [1]
        pub = client(n1, "enc-pub")
        pub.publish("enc/" + marker.decode(), marker * 4, qos=1)
        assert sub.expect(m.PUBLISH).payload == marker * 4
        seen = b"".join(r.bytes() for r in relays)
        assert sum(r.conns for r in relays) >= 1
        assert len(seen) > 200, "the link did not go through the relays"
        if tls:
            assert marker not in seen
            for r in relays:  # each recorded link began with a TLS handshake record
                assert r.bytes()[:1] in (b"", b"\x16")
        else:
            assert marker in seen       # the control: a plain link shows it
    finally:
        for r in relays:
            r.close()


def test_sighup_reloads_cluster_certificates(cluster, certs, tmp_path):
    """SIGHUP reads cluster.tls.* files again (logged); a broken file keeps
    the previous certificates (logged) and the node keeps running."""
    import shutil
    import signal
    own = {}
    for ext in ("pem", "key"):
        own[ext] = str(tmp_path / ("own." + ext))
        shutil.copy(certs("node1." + ext), own[ext])
    over = dict(tls_conf(certs), **{"cluster.tls.certfile": own["pem"],
                                    "cluster.tls.keyfile": own["key"]})
    cl = cluster(1, over)
    n1 = cl.nodes[0]
    since = n1.log_size()
    os.kill(n1.pid, signal.SIGHUP)
    n1.wait_log(r"cluster: TLS certificates reloaded", since=since)
    with open(own["pem"], "w") as f:
        f.write("not a certificate\n")
    since = n1.log_size()
    os.kill(n1.pid, signal.SIGHUP)
    n1.wait_log(r"cluster: TLS reload failed.*cluster\.tls\.certfile", since=since)
    assert n1.alive() and n1.health() == 200
