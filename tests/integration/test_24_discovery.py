"""24 discovery strategies (issue 4 point 2; DESIGN.md cluster.discovery_strategy):
nodes that find each other without `hamqtt-ctl cluster join`.

  - static: every node lists the others in cluster.static.seeds; started one
    after the other they form one cluster, a message crosses, and a node
    killed and restarted is running again on every node;
  - dns: every node resolves cluster.dns.name (all its A records are the
    nodes' addresses, as a Kubernetes headless service gives) through a DNS
    server the test runs (dnsserver.py) in its own network namespaces
    (/etc/netns/<ns>/resolv.conf points each node's resolver at it).
"""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import require

import mqttraw as m
import netns
from cluster import Cluster, finish
from mqttraw import T

HERE = os.path.dirname(os.path.abspath(__file__))


def client(node, cid):
    c = node.raw(version=5, auto_ack=True)
    c.connect(cid)
    return c


def crosses(cl, a, b, tag):
    """A QoS 1 message published on node a reaches a subscriber on node b."""
    sub = client(cl[b], "%s-sub" % tag)
    assert sub.subscribe("disc/%s" % tag, qos=1).codes == [1]
    pub = client(cl[a], "%s-pub" % tag)
    pub.publish("disc/%s" % tag, b"found", qos=1)
    got = sub.expect(m.PUBLISH)
    assert (got.topic, got.payload) == ("disc/%s" % tag, b"found")


def test_static_seeds_form_a_cluster_and_a_restart_rejoins(cluster):
    """cluster.discovery_strategy = static with all three names as seeds: no
    join command, every node lists all three running, a message published on
    node 1 reaches node 3; node 2 killed is listed stopped, restarted it is
    running everywhere again."""
    seeds = lambda node: ", ".join(n.name for n in node.cluster.nodes)  # noqa: E731
    cl = cluster(3, overrides={"cluster.discovery_strategy": "static",
                               "cluster.static.seeds": seeds})
    cl.wait_all_running(timeout=15)
    crosses(cl, 1, 3, "static")
    cl[2].kill()
    cl.wait_members(cl[1], cl.view(running=[cl[1], cl[3]], stopped=[cl[2]]), timeout=10)
    cl[2].restart()
    cl.wait_all_running(timeout=15)
    crosses(cl, 2, 1, "static2")


_why = netns.unavailable_reason()


@require(_why, "network namespaces")
def test_dns_records_form_a_cluster(tmp_path, request):
    """cluster.discovery_strategy = dns: the three nodes (each in its own
    network namespace, node.name = hamqtt@<its address>) resolve
    hamqtt-headless.test to the three addresses through the test's DNS
    server and join each other with no command; a message crosses."""
    net = netns.Lab(3)
    dns = None
    etc = []
    cl = None
    try:
        name = "hamqtt-headless.test"
        # the resolver each node uses: `ip netns exec` binds /etc/netns/<ns>/*
        for ns in net.node_ns:
            d = os.path.join("/etc/netns", ns)
            os.makedirs(d, exist_ok=True)
            etc.append(d)
            with open(os.path.join(d, "resolv.conf"), "w") as f:
                f.write("nameserver %s\noptions timeout:1 attempts:2\n" % net.addrs[0])
        dns = subprocess.Popen(
            netns.exec_prefix(net.node_ns[0]) +
            [sys.executable, os.path.join(HERE, "dnsserver.py"), net.addrs[0], "53",
             "%s=%s" % (name, ",".join(net.addrs))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = dns.stdout.readline()
        assert line.strip() == b"ready", "dns server: %r" % line
        cl = Cluster(tmp_path / "dns", 3, hosts=net.addrs, netns=net.node_ns,
                     overrides={"cluster.discovery_strategy": "dns",
                                "cluster.dns.name": name})
        cl.start()
        cl.wait_all_running(timeout=20)
        crosses(cl, 1, 2, "dns")
    finally:
        def cleanup():
            problems = []
            if dns is not None:
                try:
                    dns.stdin.close()
                    dns.wait(T(5))
                except (OSError, subprocess.TimeoutExpired):
                    dns.kill()
                    dns.wait()
            for d in etc:
                shutil.rmtree(d, ignore_errors=True)
            problems += ["netns %s: %s" % (net.tag, p) for p in net.teardown()]
            return problems
        finish([cl] if cl else [], request, after=cleanup)
