"""12 configuration: `key = value` file, HAMQTT_* environment overrides,
--set overrides, refusal of unknown keys and bad values with file:line, the
key and what is expected; the shipped etc/hamqtt.conf; log level and format."""

import json
import os
import subprocess

import pytest

import mqttraw as m
from conftest import (EXIT_REFUSED, REPO, SANITIZER_MARKERS, broker_env, free_port,
                      hamqttd_path, pid_listens_on)
from mqttraw import T

SHIPPED = os.path.join(REPO, "etc", "hamqtt.conf")

# every key this suite sets; each must be documented in etc/hamqtt.conf
KEYS_USED = [
    "node.name", "node.data_dir", "node.workers", "listeners.tcp.default.bind",
    "dashboard.listeners.http.bind", "log.level", "log.format", "sys.interval",
    "mqtt.max_qos", "mqtt.max_packet_size", "mqtt.receive_maximum", "mqtt.max_inflight",
    "mqtt.max_queued_messages", "mqtt.topic_alias_maximum", "mqtt.server_keepalive",
    "mqtt.connect_timeout", "mqtt.max_connections", "mqtt.max_subscriptions",
    "mqtt.max_topic_levels", "mqtt.max_clientid_len", "mqtt.shared_subscription_strategy",
    "cluster.port",
]


def base_config(tmp_path):
    return [
        "# line 1: a comment",
        "node.name = hamqtt@127.0.0.1",
        "node.data_dir = %s" % tmp_path,
        "node.workers = 2",
        "",
        "listeners.tcp.default.bind = 127.0.0.1:%d   # trailing comment" % free_port(),
        "dashboard.listeners.http.bind = 127.0.0.1:%d" % free_port(),
    ]


def assert_refused(r):
    """r (a finished hamqttd) refused its configuration the way main.c does:
    exit status EXIT_REFUSED (not a signal, not a crash) and stderr exactly
    one line `hamqttd: WHERE: ...` with no sanitizer report (an ASan or
    UBSan abort also exits 1, but says so on stderr)."""
    assert r.returncode == EXIT_REFUSED, (
        "exit status %r, expected %d (a refused configuration):\n%s"
        % (r.returncode, EXIT_REFUSED, r.stderr))
    assert not [s for s in SANITIZER_MARKERS if s in r.stderr], r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hamqttd: "), (
        "expected one 'hamqttd: ...' line on stderr, got:\n%s" % r.stderr)
    return lines[0]


def run_expect_failure(tmp_path, lines, args=(), env=None):
    """Run hamqttd on a config expected to be refused; returns (path, result).
    The refusal is checked by assert_refused."""
    path = str(tmp_path / "test.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run([hamqttd_path(), "-c", path] + list(args), capture_output=True,
                           text=True, timeout=T(10), env=broker_env(env), cwd=str(tmp_path))
    except subprocess.TimeoutExpired:
        pytest.fail("hamqttd did not refuse the configuration (still running after %.0fs)" % T(10))
    assert_refused(r)
    return path, r


def error_line(stderr, needle):
    lines = [ln for ln in stderr.splitlines() if needle in ln]
    assert lines, "no line with %r in stderr:\n%s" % (needle, stderr)
    return lines[0]


@pytest.mark.parametrize("key", ["mqtt.no_such_key", "nosuchsection.key", "listeners.tcp.default.nonsense"])
def test_unknown_key_refused(tmp_path, key):
    """An unknown key stops the start: non-zero exit, stderr names FILE:LINE
    and the key."""
    lines = base_config(tmp_path)
    lines.append("%s = 1" % key)
    path, r = run_expect_failure(tmp_path, lines)
    line = error_line(r.stderr, key)
    assert line == "hamqttd: %s:%d: %s: unknown key" % (path, len(lines), key), line


BAD_VALUES = [
    ("mqtt.max_qos", "7", ["2"]),
    ("node.workers", "many", []),
    ("log.level", "loud", ["debug"]),
    ("session.store", "floppy", ["memory"]),
    ("listeners.tcp.default.bind", "nowhere", []),
    ("mqtt.max_packet_size", "-5", []),
    ("mqtt.shared_subscription_strategy", "fastest", ["round_robin"]),
]


@pytest.mark.parametrize("key,value,hints", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_value_refused(tmp_path, key, value, hints):
    """A bad value stops the start: non-zero exit, stderr names FILE:LINE, the
    key and what is expected."""
    lines = base_config(tmp_path)
    lines.insert(3, "%s = %s" % (key, value))
    path, r = run_expect_failure(tmp_path, lines)
    line = error_line(r.stderr, key)
    prefix = "hamqttd: %s:4: %s: " % (path, key)
    assert line.startswith(prefix), "expected %r... got %r" % (prefix, line)
    explanation = line[len(prefix):]
    assert len(explanation) >= 5, "no statement of what is expected: %r" % line
    for h in hints:
        assert h in line, "expected %r in %r" % (h, line)


def test_syntax_error_refused(tmp_path):
    """A line that is not `key = value` is refused with FILE:LINE."""
    lines = base_config(tmp_path)
    lines.append("this line has no equals sign")
    path, r = run_expect_failure(tmp_path, lines)
    assert r.stderr.startswith("hamqttd: %s:%d: " % (path, len(lines))), r.stderr


def test_missing_config_file(tmp_path):
    """A config file that does not exist: non-zero exit naming the path."""
    path = str(tmp_path / "absent.conf")
    r = subprocess.run([hamqttd_path(), "-c", path], capture_output=True, text=True,
                       timeout=T(10), env=broker_env())
    assert assert_refused(r).startswith("hamqttd: %s: " % path), r.stderr


def test_env_override_moves_port(broker, raw):
    """HAMQTT_LISTENERS__TCP__DEFAULT__BIND overrides the file."""
    port = free_port()
    b = broker(env={"HAMQTT_LISTENERS__TCP__DEFAULT__BIND": "127.0.0.1:%d" % port}, wait=False)
    b.wait_listening(port)
    assert not pid_listens_on(b.pid, b.port)
    c = raw(port, version=5)
    c.connect("env-client")


def test_env_bad_value_refused(tmp_path):
    """A bad environment override is refused naming the variable or key."""
    _, r = run_expect_failure(tmp_path, base_config(tmp_path), env={"HAMQTT_MQTT__MAX_QOS": "9"})
    assert r.stderr.startswith("hamqttd: env HAMQTT_MQTT__MAX_QOS: mqtt.max_qos: "), r.stderr


def test_set_override_moves_port(broker, raw):
    """--set key=value overrides the file."""
    port = free_port()
    b = broker(args=["--set", "listeners.tcp.default.bind=127.0.0.1:%d" % port], wait=False)
    b.wait_listening(port)
    assert not pid_listens_on(b.pid, b.port)
    raw(port).connect("set-client")


def test_set_beats_env(broker, raw):
    """Order of precedence: file, then environment, then --set."""
    env_port, set_port = free_port(), free_port()
    b = broker(env={"HAMQTT_LISTENERS__TCP__DEFAULT__BIND": "127.0.0.1:%d" % env_port},
               args=["--set", "listeners.tcp.default.bind=127.0.0.1:%d" % set_port], wait=False)
    b.wait_listening(set_port)
    assert not pid_listens_on(b.pid, env_port)


@pytest.mark.parametrize("kv,needle", [("mqtt.max_qos=9", "mqtt.max_qos"),
                                       ("mqtt.bogus=1", "mqtt.bogus")])
def test_set_bad_refused(tmp_path, kv, needle):
    """A bad or unknown --set is refused naming --set and the key."""
    _, r = run_expect_failure(tmp_path, base_config(tmp_path), args=["--set", kv])
    line = error_line(r.stderr, needle)
    assert line.startswith("hamqttd: --set: %s: " % needle), line


def test_shipped_config_parses_and_runs(broker, raw, tmp_path):
    """etc/hamqtt.conf (the default of `make run`) is valid: hamqttd starts on
    it (binds overridden to free ports) and serves MQTT."""
    assert os.path.exists(SHIPPED), "etc/hamqtt.conf is missing"
    data = tmp_path / "shipped-data"
    data.mkdir()

    def args(b):
        return ["--set", "listeners.tcp.default.bind=127.0.0.1:%d" % b.port,
                "--set", "dashboard.listeners.http.bind=127.0.0.1:%d" % b.http_port,
                "--set", "cluster.port=%d" % free_port(),
                # the shipped file enables ws on 8083: tests must not take it
                "--set", "listeners.ws.default.bind=127.0.0.1:%d" % free_port(),
                "--set", "node.data_dir=%s" % data]
    b = broker(config_file=SHIPPED, args=args)
    c = raw(b, version=5)
    c.connect("shipped")
    c.subscribe("shipped/t", qos=1)
    c.publish("shipped/t", b"ok", qos=1)
    assert c.expect(m.PUBLISH).payload == b"ok"


def test_every_key_used_is_documented():
    """DESIGN.md: every key is documented in etc/hamqtt.conf (checked for the
    keys this suite relies on)."""
    with open(SHIPPED) as f:
        text = f.read()
    missing = [k for k in KEYS_USED if k not in text]
    assert not missing, "keys not documented in etc/hamqtt.conf: %s" % missing


def test_log_level_filters(broker, raw):
    """log.level = error suppresses the (info) connect lines."""
    b = broker({"log.level": "error"})
    c = raw(b, version=5)
    c.connect("quiet-client")
    c.disconnect()
    other = raw(b, version=5)
    other.connect("quiet-other")
    assert other.ping().type == m.PINGRESP
    assert "client_id=quiet-client" not in b.log_text()


def test_log_format_json(broker, raw):
    """log.format = json: one JSON object per line; the connect line carries
    the client id."""
    b = broker({"log.format": "json"})
    c = raw(b, version=5)
    c.connect("json-client")
    b.wait_log("json-client")
    objs = []
    for line in b.log_text().splitlines():
        if not line.strip() or not line.lstrip().startswith("{"):
            continue
        objs.append(json.loads(line))
    assert objs, b.log_text()
    assert any("json-client" in json.dumps(o) for o in objs)
