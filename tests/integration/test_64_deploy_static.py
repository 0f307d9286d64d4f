"""64 the container deploy files (issue 12 part 4), checked without a container
engine (this machine has the docker client only, no engine and no compose
plugin; docs/operator/containers.md says what was and was not run):

  - every YAML file under deploy/ parses;
  - deploy/k8s: the StatefulSet (3 replicas, Parallel, volumeClaimTemplates on
    /var/lib/hamqtt, probes on /api/v5/status at the dashboard port, preStop,
    grace period, non-root and read-only root fs, the pod-DNS node name), the
    headless Service (publishNotReadyAddresses, the SRV port "cluster"), the
    client and dashboard Services, the PDB, every container port a listener of
    the ConfigMap's hamqtt.conf, the kustomization's files;
  - deploy/compose.yaml: its services, depends_on, mounted files, node names
    = service names, seeds, Prometheus targets, HAProxy servers (haproxy -c);
  - deploy/docker/Dockerfile: the two stages, USER non-root, HEALTHCHECK,
    EXPOSE, VOLUME, ENTRYPOINT, every apt package known to Debian 12
    (apt-cache show), every library hamqttd links against installed in the
    runtime stage;
  - the configuration a container gets really starts hamqttd: the image's
    hamqtt.conf alone; a compose node's environment; a Kubernetes pod's
    ConfigMap + environment (with $(POD_NAME) expanded) through the
    container's own start script. Each runs in a network namespace of its own
    whose /etc/hosts (/etc/netns/<ns>/hosts) maps the service / pod names, on
    the ports the files give, with a real redis-server for the compose node's
    session.store = redis; /api/v5/status must answer 200 and SIGTERM exit 0.
"""

import http.client
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import REPO, broker_env, hamqttd_path, require, wait_until

import netns
from mqttraw import T

DEPLOY = os.path.join(REPO, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
DOCKER = os.path.join(DEPLOY, "docker")
_seq = itertools.count(1)

_why = netns.unavailable_reason()


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_docs():
    docs = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            docs += load_all(os.path.join(K8S, name))
    return docs


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name or "", len(found))
    return found[0]


def conf_items(text):
    """{key: value} of a hamqtt.conf text (the subset of the syntax the deploy files use)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, _, v = line.partition("=")
        v = v.split(" #")[0].strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        out[k.strip()] = v
    return out


def listen_ports(conf):
    """Ports a hamqtt.conf listens on: every *.bind, and cluster.port."""
    ports = {int(v.rsplit(":", 1)[1]) for k, v in conf.items() if k.endswith(".bind")}
    if int(conf.get("cluster.port", "4370")):
        ports.add(int(conf.get("cluster.port", "4370")))
    return ports


def k8s_conf():
    cm = one(k8s_docs(), "ConfigMap", "hamqtt-config")
    return cm["data"]["hamqtt.conf"]


def pod_spec():
    return one(k8s_docs(), "StatefulSet", "hamqtt")["spec"]["template"]["spec"]


def archive_known():
    """The archive keys exist in this build (issue 12's archive part merged)."""
    with open(os.path.join(REPO, "etc", "hamqtt.conf")) as f:
        return re.search(r"^#?\s*archive\.", f.read(), re.M) is not None


# ---- static checks ----

def test_every_deploy_yaml_parses():
    n = 0
    for root, _dirs, files in os.walk(DEPLOY):
        for name in files:
            if name.endswith((".yaml", ".yml")):
                load_all(os.path.join(root, name))
                n += 1
    assert n >= 10, "only %d YAML files under deploy/" % n


def test_k8s_manifests():
    docs = k8s_docs()
    kust = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
    for r in kust["resources"]:
        assert os.path.exists(os.path.join(K8S, r)), "kustomization: %s missing" % r
    assert [g["name"] for g in kust["secretGenerator"]] == ["hamqtt-cookie"]
    for d in docs:
        assert "namespace" not in d["metadata"], "%s %s names a namespace" % (
            d["kind"], d["metadata"]["name"])

    sts = one(docs, "StatefulSet", "hamqtt")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    [c] = pod["containers"]
    conf = conf_items(k8s_conf())

    # the volume: a claim per pod, on node.data_dir
    [vct] = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts[vct["metadata"]["name"]] == conf["node.data_dir"] == "/var/lib/hamqtt"
    assert mounts["config"] == "/etc/hamqtt"

    # every container port is a listener of the ConfigMap's hamqtt.conf, and back
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert set(ports.values()) == listen_ports(conf), (ports, listen_ports(conf))
    assert ports["dashboard"] == int(conf["dashboard.listeners.http.bind"].rsplit(":", 1)[1])
    assert ports["cluster"] == int(conf["cluster.port"])

    # probes: GET /api/v5/status on the dashboard port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        g = c[probe]["httpGet"]
        assert g["path"] == "/api/v5/status", probe
        assert ports.get(g["port"], g["port"]) == ports["dashboard"], probe

    # graceful stop: preStop, then SIGTERM's drain, within the grace period
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    pre_s = int(pre[1]) if pre[0] == "sleep" else 0
    grace = int(re.match(r"(\d+)s?$", conf["node.shutdown_grace"]).group(1))
    assert pod["terminationGracePeriodSeconds"] >= pre_s + grace + 30

    # non-root, read-only root fs
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False

    # node.name = the pod's DNS name under the headless Service; SRV discovery
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    head = spec["serviceName"]
    assert env["HAMQTT_NODE__NAME"]["value"] == \
        "hamqtt@$(POD_NAME).%s.$(POD_NAMESPACE).svc.cluster.local" % head
    assert env["HAMQTT_CLUSTER__DNS__NAME"]["value"] == \
        "_cluster._tcp.%s.$(POD_NAMESPACE).svc.cluster.local" % head
    assert env["HAMQTT_NODE__COOKIE"]["valueFrom"]["secretKeyRef"]["name"] == "hamqtt-cookie"
    assert (conf["cluster.discovery_strategy"], conf["cluster.dns.record_type"]) == ("dns", "srv")
    for name in env:  # env overrides: HAMQTT_ + the key, "." as "__" (DESIGN.md)
        assert name in ("POD_NAME", "POD_NAMESPACE") or re.match(r"HAMQTT_[A-Z0-9_]+$", name)

    # Services: the headless one (DNS, SRV on port "cluster"), clients, dashboard
    hl = one(docs, "Service", head)["spec"]
    assert hl["clusterIP"] == "None" and hl["publishNotReadyAddresses"] is True
    assert [(p["name"], p["targetPort"]) for p in hl["ports"]] == [("cluster", "cluster")]
    for name, want in (("hamqtt", {"mqtt", "ws"}), ("hamqtt-dashboard", {"dashboard"})):
        s = one(docs, "Service", name)["spec"]
        assert {p["targetPort"] for p in s["ports"]} == want, name
        for p in s["ports"]:
            assert p["port"] == ports[p["targetPort"]], (name, p)
    for s in [d for d in docs if d["kind"] == "Service"]:
        assert s["spec"]["selector"].items() <= labels.items()

    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def compose():
    return load_all(os.path.join(DEPLOY, "compose.yaml"))[0]


NODES = ["hamqtt1", "hamqtt2", "hamqtt3"]


def test_compose_file():
    doc = compose()
    sv = doc["services"]
    assert set(sv) == set(NODES) | {"haproxy", "redis", "postgres", "prometheus", "grafana"}
    for name, s in sv.items():
        deps = s.get("depends_on", [])
        for d in deps:
            assert d in sv, "%s depends on unknown %s" % (name, d)
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert os.path.exists(os.path.join(DEPLOY, src)), "%s mounts missing %s" % (name, src)
            else:
                assert src in doc["volumes"], "%s: volume %s not declared" % (name, src)
    seeds = None
    for n in NODES:
        s = sv[n]
        env = s["environment"]
        assert env["HAMQTT_NODE__NAME"] == "hamqtt@" + n, "node name from the service name"
        assert env["HAMQTT_SESSION__STORE"] == "redis" and env["HAMQTT_SESSION__REDIS__SERVER"] == "redis:6379"
        assert env["HAMQTT_ARCHIVE__GUIDE__BACKEND"] == "postgresql"
        assert env["HAMQTT_ARCHIVE__GUIDE__SERVER"].split(":")[0] == "postgres"
        assert env["HAMQTT_ARCHIVE__GUIDE__PASSWORD"] == sv["postgres"]["environment"]["POSTGRES_PASSWORD"]
        assert {"redis", "postgres"} <= set(s["depends_on"])
        assert s["read_only"] is True
        assert s["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert os.path.exists(os.path.join(DEPLOY, s["build"]["context"], s["build"]["dockerfile"]))
        seeds = env["HAMQTT_CLUSTER__STATIC__SEEDS"]
    assert sorted(seeds.split(",")) == ["hamqtt@" + n for n in NODES]

    with open(os.path.join(DEPLOY, "haproxy", "haproxy-compose.cfg")) as f:
        servers = re.findall(r"^\s*server (\S+) (\S+):(\d+)", f.read(), re.M)
    assert {(h, int(p)) for _n, h, p in servers} == {(n, p) for n in NODES for p in (1883, 8083)}
    if shutil.which("haproxy"):
        r = subprocess.run(["haproxy", "-c", "-f", os.path.join(DEPLOY, "haproxy", "haproxy-compose.cfg")],
                           capture_output=True, text=True, timeout=T(20))
        assert r.returncode == 0, r.stdout + r.stderr

    prom = load_all(os.path.join(DEPLOY, "prometheus", "prometheus-compose.yml"))[0]
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == ["%s:18083" % n for n in NODES]
    ds = load_all(os.path.join(DEPLOY, "grafana", "compose", "datasources", "hamqtt-prometheus.yml"))[0]
    assert ds["datasources"][0]["url"] == "$PROMETHEUS_URL"
    assert sv["grafana"]["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"


def dockerfile():
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)  # continuation lines
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def stages():
    out = []
    for ln in dockerfile():
        word = ln.split()[0].upper()
        if word == "FROM":
            out.append({"from": ln.split()[1], "lines": []})
        out[-1]["lines"].append(ln)
    return out


def apt_packages(lines):
    pkgs = []
    for ln in lines:
        for m in re.finditer(r"apt-get install ([^&]*)", ln):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def test_dockerfile():
    st = stages()
    assert len(st) == 2 and all(s["from"] == "debian:bookworm-slim" for s in st)
    assert st[0]["lines"][0].upper().endswith("AS BUILD")
    run = st[1]["lines"]
    words = {}
    for ln in run:
        words.setdefault(ln.split()[0].upper(), []).append(ln.split(None, 1)[1])
    assert words["USER"][-1].split(":")[0] not in ("root", "0")
    assert "uid 1000" in " ".join(words["RUN"]) or "--uid 1000" in " ".join(words["RUN"])
    assert "/api/v5/status" in words["HEALTHCHECK"][0]
    assert set(words["EXPOSE"][0].split()) == {"1883", "8883", "8083", "8084", "18083", "4370"}
    assert "/var/lib/hamqtt" in words["VOLUME"][0]
    assert words["ENTRYPOINT"][0] == '["/usr/bin/hamqttd", "-c", "/etc/hamqtt/hamqtt.conf"]'
    assert any("make" in r and "all" in r for r in [" ".join(s["lines"]) for s in st[:1]])
    for ln in st[0]["lines"] + run:  # every COPY source exists in the build context
        if ln.upper().startswith("COPY") and "--from" not in ln:
            for src in ln.split()[1:-1]:
                assert os.path.exists(os.path.join(REPO, src)), ln
    with open(os.path.join(REPO, ".dockerignore")) as f:
        ignored = f.read().split()
    assert "build" in ignored and ".git" in ignored

    # every package exists in Debian 12 (this machine's apt lists)
    build_pkgs, run_pkgs = apt_packages(st[0]["lines"]), apt_packages(run)
    assert "curl" in run_pkgs and "gcc" in build_pkgs
    r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + build_pkgs + run_pkgs,
                       capture_output=True, text=True, timeout=T(60))
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    assert set(build_pkgs + run_pkgs) <= known, "not in Debian 12's apt lists: %s (%s)" % (
        sorted(set(build_pkgs + run_pkgs) - known), r.stderr.strip())

    # every library hamqttd and hamqtt-ctl need comes from a runtime-stage package
    # (or libc6, in every Debian image)
    bins = [hamqttd_path(), os.path.join(os.path.dirname(hamqttd_path()), "hamqtt-ctl")]
    r = subprocess.run(["readelf", "-d"] + bins, capture_output=True, text=True, timeout=T(30))
    libs = {lib for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", r.stdout)
            if not re.search(r"[at]san|ubsan", lib)}
    q = subprocess.run(["dpkg", "-S"] + ["*/" + lib for lib in sorted(libs)],
                       capture_output=True, text=True, timeout=T(60))
    for lib in libs:
        owners = {ln.split(":")[0] for ln in q.stdout.splitlines()
                  if ln.endswith("/" + lib)}
        assert owners & (set(run_pkgs) | {"libc6"}), "hamqttd/hamqtt-ctl need %s (from %s), " \
            "not installed in the runtime stage" % (lib, owners)


# ---- the configurations really start hamqttd ----

class NsHosts:
    """A network namespace whose /etc/hosts maps names to loopback addresses."""

    def __init__(self, hosts):
        self.ns = "hqdep%x%02x" % (os.getpid() & 0xffffff, next(_seq))
        self.etc = os.path.join("/etc/netns", self.ns)
        self.procs = []
        netns.ip("netns", "add", self.ns)
        netns.ip("-n", self.ns, "link", "set", "lo", "up")
        os.makedirs(self.etc, exist_ok=True)
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
            f.write("".join("%s %s\n" % (a, n) for n, a in hosts.items()))

    def popen(self, cmd, log, env=None):
        with open(log, "ab") as logf:
            p = subprocess.Popen(netns.exec_prefix(self.ns) + cmd, stdout=logf,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        self.procs.append(p)
        return p

    def status(self, host, port):
        with netns.entered(self.ns):
            c = http.client.HTTPConnection(host, port, timeout=T(2))
            try:
                c.request("GET", "/api/v5/status")
                return c.getresponse().status
            except (OSError, http.client.HTTPException):
                return None
            finally:
                c.close()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        shutil.rmtree(self.etc, ignore_errors=True)
        netns.ip("netns", "del", self.ns, check=False)


def run_until_ready(ns, cmd, env, log, host, port=18083):
    """Start cmd (hamqttd, or a shell that execs it), wait for /api/v5/status
    200, SIGTERM it and expect exit 0."""
    p = ns.popen(cmd, log, env=broker_env(env))

    def ready():
        if p.poll() is not None:
            with open(log) as f:
                raise AssertionError("hamqttd exited %s:\n%s" % (p.returncode, f.read()[-3000:]))
        return ns.status(host, port) == 200
    wait_until(ready, 20, 0.1, "GET /api/v5/status 200 on %s:%d" % (host, port))
    os.kill(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(T(30))
    except subprocess.TimeoutExpired:
        raise AssertionError("hamqttd did not stop within 30 s of SIGTERM")
    with open(log) as f:
        text = f.read()
    assert rc == 0, "exit %s after SIGTERM:\n%s" % (rc, text[-3000:])
    return text


@require(_why, "network namespaces")
def test_image_config_alone_starts(tmp_path):
    """`docker run hamqtt`: the image's hamqtt.conf, nothing else but a data dir."""
    ns = NsHosts({})
    try:
        run_until_ready(ns, [hamqttd_path(), "-c", os.path.join(DOCKER, "hamqtt.conf")],
                        {"HAMQTT_NODE__DATA_DIR": str(tmp_path / "data"),
                         "HAMQTT_NODE__SHUTDOWN_GRACE": "0s"},
                        str(tmp_path / "hamqttd.log"), "127.0.0.1")
    finally:
        ns.close()


@require(_why, "network namespaces")
def test_compose_node_config_starts(tmp_path):
    """hamqtt1 of compose.yaml: the image's hamqtt.conf + the service's
    environment, its name resolving as in the compose network, a real Redis."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed (scripts/deps.sh)")
    env = dict(compose()["services"]["hamqtt1"]["environment"])
    env = {k: str(v) for k, v in env.items()}
    if not archive_known():  # this build predates the archive (issue 12 part 1)
        env = {k: v for k, v in env.items() if not k.startswith("HAMQTT_ARCHIVE__")}
    env["HAMQTT_NODE__DATA_DIR"] = str(tmp_path / "data")
    env["HAMQTT_NODE__SHUTDOWN_GRACE"] = "0s"
    ns = NsHosts({"hamqtt1": "127.0.0.1", "hamqtt2": "127.0.0.2", "hamqtt3": "127.0.0.3",
                  "redis": "127.0.0.4", "postgres": "127.0.0.5"})
    try:
        rlog = str(tmp_path / "redis.log")
        redis = ns.popen(["redis-server", "--bind", "127.0.0.4", "--port", "6379", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)], rlog)
        wait_until(lambda: redis.poll() is None and "Ready to accept" in open(rlog).read(), 10, 0.1,
                   "redis-server")
        text = run_until_ready(ns, [hamqttd_path(), "-c", os.path.join(DOCKER, "hamqtt.conf")],
                               env, str(tmp_path / "hamqttd.log"), "127.0.0.1")
        assert "hamqtt@hamqtt1" in text
    finally:
        ns.close()


@require(_why, "network namespaces")
def test_k8s_pod_config_starts_through_its_start_script(tmp_path):
    """Pod hamqtt-0 in namespace default: the ConfigMap's hamqtt.conf, the
    StatefulSet's environment ($(VAR) expanded as the kubelet does, the cookie
    from a Secret) and its start script (wait for the pod's DNS name, exec
    hamqttd); the name resolves as the headless Service makes it."""
    pod = pod_spec()
    [c] = pod["containers"]
    conf_path = tmp_path / "hamqtt.conf"
    conf_path.write_text(k8s_conf())
    env = {"POD_NAME": "hamqtt-0", "POD_NAMESPACE": "default"}
    for e in c["env"]:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], e["value"])
        elif "secretKeyRef" in e.get("valueFrom", {}):
            env[e["name"]] = "k8s-test-cookie-%d" % os.getpid()
    env["HAMQTT_NODE__DATA_DIR"] = str(tmp_path / "data")
    env["HAMQTT_NODE__SHUTDOWN_GRACE"] = "0s"  # the drain is not what this checks
    host = env["HAMQTT_NODE__NAME"].split("@", 1)[1]
    assert host == "hamqtt-0.hamqtt-headless.default.svc.cluster.local"
    script = c["command"][2]
    assert c["command"][:2] == ["/bin/sh", "-c"] and "exec /usr/bin/hamqttd -c /etc/hamqtt/hamqtt.conf" in script
    script = script.replace("/usr/bin/hamqttd", shlex.quote(hamqttd_path())) \
                   .replace("/etc/hamqtt/hamqtt.conf", shlex.quote(str(conf_path)))
    ns = NsHosts({host: "127.0.0.1"})
    try:
        text = run_until_ready(ns, ["/bin/sh", "-c", script], env, str(tmp_path / "hamqttd.log"),
                               "127.0.0.1")
        assert "hamqtt@" + host in text
    finally:
        ns.close()
