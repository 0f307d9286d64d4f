"""hamqttd started on a configuration it must refuse (a bad key or file)."""

import subprocess

from conftest import broker_env, free_port, hamqttd_path
from mqttraw import T

def start_fails(tmp_path, extra):
    """Run hamqttd on tmp_path/fail.conf: five lines of a minimal node, then
    extra (from line 6 on); it must exit non-zero at start. Returns its
    output."""
    path = str(tmp_path / "fail.conf")
    with open(path, "w") as f:
        f.write("listeners.tcp.default.bind = 127.0.0.1:%d\n" % free_port())
        f.write("dashboard.listeners.http.bind = 127.0.0.1:%d\n" % free_port())
        f.write("cluster.port = 0\nsession.store = memory\n")
        f.write("node.data_dir = %s\n" % (tmp_path / "faildata"))
        f.write(extra)
    r = subprocess.run([hamqttd_path(), "-c", path], capture_output=True, text=True,
                       timeout=T(20), env=broker_env())
    assert r.returncode != 0, r
    return r.stdout + r.stderr
