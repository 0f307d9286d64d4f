"""65 the documentation cannot drift: every command of docs/guide.md (the HA
guide: build, three nodes, cluster join, HAProxy, Redis, TLS + password file +
ACL, dashboard and REST API, Prometheus, kill a node under load and watch it
come back) and of every docs/operator/*.md page with runnable blocks is run,
in order, by one bash per document in a network namespace of its own
(docrunner.py: conventions, what is substituted), against the build under
test; and every `key = ` a page mentions exists in the key table
(src/core/conf_keys.c, etc/hamqtt.conf).

Blocks marked `<!-- requires: FEATURE -->` run only when FEATURE is in
FEATURES below (features merged later: the lead adds them here)."""

import glob
import os
import re

import pytest

import docrunner
from conftest import REPO, SANITIZER_MARKERS, build_dir, require
from mqttraw import T
from netns import unavailable_reason

# features whose blocks the documents mark `<!-- requires: X -->`, once merged
FEATURES = ("archive", "bridge")
# keys of those features: checked against the table only once merged
FEATURE_PREFIXES = {"archive": "archive.", "bridge": "bridges."}

DOCS = os.path.join(REPO, "docs")

pytestmark = require(unavailable_reason(), "network namespaces")


def runnable_docs():
    pages = [os.path.join(DOCS, "guide.md")]
    pages += sorted(glob.glob(os.path.join(DOCS, "operator", "*.md")))
    return [p for p in pages if docrunner.runnable(
        [b for b in docrunner.parse(p) if not b.skip])]


@pytest.mark.parametrize("doc", runnable_docs(), ids=lambda p: os.path.relpath(p, REPO))
def test_doc_commands_run(doc, tmp_path):
    """The document's commands all succeed, in order, within the time box
    (the guide: 90 s on an idle machine; the bound is generous for a loaded one),
    and no server log the document wrote holds a sanitizer report."""
    log = docrunner.run(doc, REPO, build_dir(), features=FEATURES, timeout=T(240),
                        keep_log=str(tmp_path / "doc.log"), forbid=SANITIZER_MARKERS)
    assert ">>> done" in log


def known_keys():
    """Every key of the table: the literals of conf_keys.c (the ws/wss rows
    built by a macro are taken from etc/hamqtt.conf, which a unit test keeps
    equal to the table), with listener names normalised to <name>."""
    keys = set()
    with open(os.path.join(REPO, "src", "core", "conf_keys.c")) as f:
        keys |= set(re.findall(r'\.name = "([a-z0-9_.]+)"', f.read()))
    with open(os.path.join(REPO, "etc", "hamqtt.conf")) as f:
        keys |= set(re.findall(r"^#? ?([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+) =", f.read(), re.M))
    return {normalise(k) for k in keys}


def normalise(key):
    """listeners.<type>.<any name>.x and archive.<n>.x / bridges.mqtt.<n>.x
    compare with their <name> form."""
    p = key.split(".")
    if p[0] == "listeners" and len(p) >= 4:
        p[2] = "<name>"
    elif p[0] == "archive" and len(p) >= 3:
        p[1] = "<name>"
    elif p[:2] == ["bridges", "mqtt"] and len(p) >= 4:
        p[2] = "<name>"
    return ".".join(p)


KEY_USE = re.compile(r"(?<![\w.$/\\-])([a-z][a-z0-9_]*(?:\.(?:[a-z0-9_-]+|<[a-z]+>)){1,5}) ?= ")


def test_doc_keys_exist():
    """Every `a.b.c = ` in docs/*.md names a key of the table (modulo <name>
    sections; keys of features not merged yet are skipped until they are)."""
    known = known_keys()
    pending = [pre for feat, pre in FEATURE_PREFIXES.items()
               if not any(k.startswith(pre) for k in known)]
    bad = []
    pages = glob.glob(os.path.join(DOCS, "*.md")) + glob.glob(os.path.join(DOCS, "*", "*.md"))
    for page in sorted(pages):
        with open(page) as f:
            for n, line in enumerate(f, 1):
                for key in KEY_USE.findall(line):
                    if key.startswith(tuple(pending)):
                        continue
                    if normalise(key) not in known:
                        bad.append("%s:%d: %s" % (os.path.relpath(page, REPO), n, key))
    assert not bad, "keys the table does not have:\n" + "\n".join(bad)
