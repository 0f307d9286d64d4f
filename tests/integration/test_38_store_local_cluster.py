"""
test_38_store_local_cluster.py - session.store = local in a cluster: what
happens to a dead node's sessions (ARCHITECTURE.md, "Persistence").

Each node keeps its sessions on its own disk. While node 2 is down its
sessions are unavailable: a client that reconnects to another node starts a
new session there (session present 0) and must subscribe again. When node 2
returns it loads its sessions; a client id that has a newer session on
another node keeps the newer one: the copy node 2 loaded is replaced when
the client next connects (to any node), so the client never falls back to
the state it had before the crash.
"""

import time

from mqttraw import PUBLISH, T


def drain(c, n, timeout=10.0):
    got = []
    deadline = time.monotonic() + T(timeout)
    while len(got) < n and time.monotonic() < deadline:
        p = c.try_recv(0.3)
        if p is not None and p.type == PUBLISH:
            got.append(bytes(p.payload))
            c.ack(p)
    return got


def test_dead_node_sessions_while_down_and_after(cluster):
    cl = cluster(2, {"session.store": "local"})
    cl.join_all()
    cl.wait_all_running()
    n1, n2 = cl.nodes
    s = n2.raw()
    s.connect("lc-sub", clean=False)
    s.subscribe("lc/#", qos=1)
    s.close()
    time.sleep(0.3)
    n2.kill()
    # while node 2 is down: a new session elsewhere
    s = n1.raw()
    assert not s.connect("lc-sub", clean=False).session_present
    s.subscribe("lc/#", qos=1)
    s.close()
    pub = n1.raw()
    pub.connect("lc-pub")
    pub.publish("lc/a", b"queued-on-n1", qos=1)
    # node 2 returns with its old copy of the session
    n2.restart()
    cl.wait_all_running()
    n2.wait_log(r"store local: loaded 1 sessions")
    # the client comes back through node 2: it gets the newer session, with
    # what was queued for it on node 1, not the copy from before the crash
    s = n2.raw()
    assert s.connect("lc-sub", clean=False).session_present
    assert drain(s, 1) == [b"queued-on-n1"]
    n2.wait_log(r"client_id=lc-sub the session stored here before this node stopped is replaced")
    pub.publish("lc/b", b"live", qos=1)
    assert drain(s, 1) == [b"live"]
