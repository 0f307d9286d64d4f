#!/usr/bin/python3
"""Run the hamqtt integration suite against a build directory.

    run.py --build DIR [-k EXPR] [-j N] [extra pytest args...]

Runs `/usr/bin/python3 -m pytest -q -n N tests/integration` with
HAMQTT_BUILD=DIR and exits with pytest's status. Default -j 3.
HAMQTT_TEST_WORKERS=N (default 2) runs every broker with node.workers = N;
CI=true makes a test that would be skipped fail (see conftest.py).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="directory holding hamqttd")
    ap.add_argument("-k", dest="expr", help="pytest -k expression")
    ap.add_argument("-j", dest="jobs", type=int, default=3, help="parallel workers (default 3)")
    args, rest = ap.parse_known_args()
    build = os.path.abspath(args.build)
    if not os.access(os.path.join(build, "hamqttd"), os.X_OK):
        sys.stderr.write("run.py: %s/hamqttd not found or not executable\n" % build)
        return 2
    env = dict(os.environ, HAMQTT_BUILD=build)
    cmd = ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "-n", str(max(1, args.jobs)), os.path.join("tests", "integration")]
    if args.expr:
        cmd += ["-k", args.expr]
    cmd += rest
    os.chdir(REPO)
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(main())
