"""
docrunner.py - run the commands of a Markdown document (docs/guide.md,
docs/operator/*.md) so that the document cannot drift from the code.

Conventions of the documents (the one place they are defined):

  ```sh                 a block of commands: run, in document order, by ONE
                        bash per document (`set -euo pipefail`); a block may
                        start servers in the background (`... &`)
  ```conf file=PATH     (any language, then file=PATH) the block's text is
                        written to PATH, relative to the shell's working
                        directory at that point (`~/` = $HOME), before the
                        next block runs: configuration files the reader
                        creates with an editor
  ```text, ```conf ...  any other block: shown, never run (output, excerpts)

  An HTML comment on the line right above a block changes it:
  <!-- docrunner: skip -->       not run: installing packages, `make` (the
                                 test runs the build under test, see below)
  <!-- requires: FEATURE -->     run only when FEATURE is enabled (a feature
                                 merged later: archive, bridge); the caller
                                 passes the enabled set

Where it runs: in a network namespace of its own (`ip netns add`, lo up; all
of 127/8 is local there), so the documents' real ports (1883, 18083, 4370,
8404, 6379, 9090...) never collide with parallel tests or the machine's own
servers. The working directory is a stand-in for the source tree: `build` is
a symlink to the build under test (HAMQTT_BUILD, e.g. build-asan) and every
other top-level entry of the repository (deploy, etc, docs...) a symlink to
the real one, so `export PATH="$PWD/build:$PATH"` in a document puts the
tested binaries first. HOME is a fresh directory (documents work in ~/...).
At the end every process in the namespace is killed (`ip netns pids`: the
background servers a document started, whatever they forked) and the
namespace deleted; then the *.log files the document wrote under HOME are
searched for the strings the caller forbids (sanitizer reports of the servers
it ran under ASan). A failing command is reported with the document's
file:line; the whole run is bounded (timeout). DOCRUNNER_KEEP=1 keeps the
temporary directory (the document's files and logs) for debugging.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

FENCE = re.compile(r"^(```+)\s*([^\s`]*)\s*(.*)$")
MARK = re.compile(r"^\s*<!--\s*(docrunner:\s*skip|requires:\s*([\w, -]+?))\s*-->\s*$")
FILE_ATTR = re.compile(r"""\bfile=("([^"]+)"|(\S+))""")
EOF_WORD = "__DOCRUNNER_EOF__"
ERR_TAG = "__DOCRUNNER_ERR__"


class Block:
    def __init__(self, kind, line, text, path=None, requires=None, skip=False):
        self.kind = kind          # "sh" | "file" | "show"
        self.line = line          # line of the first text line in the document
        self.text = text
        self.path = path
        self.requires = requires  # set of features, or None
        self.skip = skip


def parse(doc_path):
    """Every fenced block of the document, in order (Block objects)."""
    with open(doc_path) as f:
        lines = f.read().split("\n")
    blocks, i, mark = [], 0, None
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            mk = MARK.match(lines[i])
            if mk:
                mark = mk
            elif lines[i].strip():
                mark = None
            i += 1
            continue
        fence, lang, rest = m.group(1), m.group(2), m.group(3)
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        if j >= len(lines):
            raise ValueError("%s:%d: unclosed code block" % (doc_path, i + 1))
        text = "\n".join(lines[i + 1:j])
        fa = FILE_ATTR.search(rest)
        kind = "file" if fa else "sh" if lang == "sh" else "show"
        b = Block(kind, i + 2, text, path=fa and (fa.group(2) or fa.group(3)))
        if mark and mark.group(2):
            b.requires = {w.strip() for w in mark.group(2).split(",") if w.strip()}
        elif mark:
            b.skip = True
        blocks.append(b)
        mark = None
        i = j + 1
    return blocks


def runnable(blocks):
    return [b for b in blocks if b.kind in ("sh", "file")]


def script(doc_path, blocks, features=()):
    """The bash script of a document, and its map: script line -> doc line."""
    rel = os.path.relpath(doc_path)
    out = ["set -Eeuo pipefail",
           "trap 'echo \"%s $LINENO ${BASH_LINENO[*]}\" >&2' ERR" % ERR_TAG]
    lmap = {}
    for b in runnable(blocks):
        if b.skip or (b.requires and not b.requires <= set(features)):
            continue
        out.append("echo '>>> %s:%d' >&2" % (rel, b.line))
        if b.kind == "file":
            if EOF_WORD in b.text:
                raise ValueError("%s:%d: block holds %s" % (rel, b.line, EOF_WORD))
            p = b.path
            p = '"$HOME"/' + shlex_quote(p[2:]) if p.startswith("~/") else shlex_quote(p)
            lmap[len(out) + 1] = b.line - 1
            out.append("mkdir -p \"$(dirname %s)\" && cat > %s <<'%s'" % (p, p, EOF_WORD))
            out.extend(b.text.split("\n"))
            out.append(EOF_WORD)
        else:
            for k, ln in enumerate(b.text.split("\n")):
                lmap[len(out) + 1] = b.line + k
                out.append(ln)
    out.append("echo '>>> done' >&2")
    return "\n".join(out) + "\n", lmap


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


def source_standin(repo, build, where):
    """A directory that looks like the source tree with `build` = the tested build."""
    os.makedirs(where)
    for name in os.listdir(repo):
        if name.startswith(".") or name == "build" or name.startswith("build-"):
            continue
        os.symlink(os.path.join(repo, name), os.path.join(where, name))
    os.symlink(os.path.abspath(build), os.path.join(where, "build"))
    return where


class Failed(AssertionError):
    pass


def netns_kill_all(ns):
    """Kill every process in the namespace: TERM, then KILL after 3 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True).stdout.split()
        if not pids:
            return
        for p in pids:
            try:
                os.kill(int(p), sig)
            except (ProcessLookupError, ValueError):
                pass
        end = time.time() + 3
        while time.time() < end and subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            time.sleep(0.1)


def scan_logs(home, markers):
    """(file, line) of the first line holding one of markers in any *.log file
    the document wrote under home (the servers' logs: a sanitizer report)."""
    for root, _dirs, files in os.walk(home):
        for name in files:
            if not name.endswith(".log"):
                continue
            with open(os.path.join(root, name), errors="replace") as f:
                for ln in f:
                    if any(m in ln for m in markers):
                        return os.path.join(root, name), ln.strip()
    return None


def run(doc_path, repo, build, features=(), timeout=150, keep_log=None, forbid=()):
    """Run the document's runnable blocks; returns the bash output (stdout +
    stderr) on success, raises Failed naming doc:line otherwise, or when a
    *.log file the document wrote holds one of the strings in forbid."""
    blocks = parse(doc_path)
    text, lmap = script(doc_path, blocks, features)
    tmp = tempfile.mkdtemp(prefix="hqdoc-")
    ns = "hqdoc%x" % os.getpid() + "%x" % (int(time.time() * 1000) % 0xffff)
    try:
        src = source_standin(repo, build, os.path.join(tmp, "src"))
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        with open(os.path.join(tmp, "doc.sh"), "w") as f:
            f.write(text)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAMQTT_")}
        env.update(HOME=home, PWD=src, LC_ALL="C.UTF-8")
        try:
            r = subprocess.run(["ip", "netns", "exec", ns, "bash", os.path.join(tmp, "doc.sh")],
                               cwd=src, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=timeout)
            log, rc = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            last = [ln for ln in out.splitlines() if ln.startswith(">>> ")]
            raise Failed("%s: timed out after %d s in the block at %s\n%s" % (
                doc_path, timeout, last[-1][4:] if last else "?", out[-4000:]))
        if keep_log:
            with open(keep_log, "w") as f:
                f.write(log)
        if rc != 0:
            where = "?"
            for ln in log.splitlines():  # the last one: a background job may fail first
                if ln.startswith(ERR_TAG):
                    # $LINENO ${BASH_LINENO[*]}: the outermost frame is the
                    # document's line that called the function that failed
                    sl = [int(w) for w in ln.split()[1:] if w != "0"][-1]
                    where = "%s:%s" % (os.path.relpath(doc_path), lmap.get(sl, "?"))
            raise Failed("%s: command failed (exit %d) at %s\n%s" % (
                doc_path, rc, where, log[-6000:]))
        netns_kill_all(ns)  # the servers' last words are in their logs now
        bad = scan_logs(home, forbid) if forbid else None
        if bad:
            raise Failed("%s: %s: %s" % (doc_path, os.path.relpath(bad[0], home), bad[1]))
        return log
    finally:
        netns_kill_all(ns)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if os.environ.get("DOCRUNNER_KEEP"):  # debugging a document: look at its files
            print("docrunner: kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
