#!/usr/bin/env python3
"""Converts public linearizability test histories into Trellis's history format.

Sources (fetched as git checkouts; nothing is downloaded by this script):
  - Porcupine (github.com/anishathalye/porcupine, MIT): test_data/jepsen/etcd_*.log (etcd
    under Jepsen, a compare-and-set register) and test_data/kv/*.txt (a key-value map with
    append). The expected verdicts are the ones Porcupine's porcupine_test.go asserts.
  - Knossos (github.com/jepsen-io/knossos, EPL 1.0): data/cas-register/{good,bad}/*.edn. The
    expected verdict is the folder (Knossos's core_test.clj test-examples: good = valid).

Usage:
  convert_histories.py --porcupine PORCUPINE_CHECKOUT --knossos KNOSSOS_CHECKOUT \
      --out tests/data/histories

Parsing follows each project's own test parser, so every history means what it means there:
  - Porcupine etcd: its regular expressions; a timed-out read returns at once with an unknown
    value; any call never matched by a return line (":info" timeouts) is indeterminate.
  - Porcupine kv: its regular expressions; a call never returned is indeterminate.
  - Knossos: :ok completes, :fail means the operation did not happen (dropped), :info or no
    completion is indeterminate; a read that completed with value nil tells nothing (dropped,
    as Knossos's cas-register model accepts it anywhere). The register starts at 0.

Output format, one history per file, UTF-8 text:
  # comment lines (source, licence)
  model <register|cas-register|kv-append|queue>
  initial <value>          (optional; "" when absent)
  expect <linearizable|not-linearizable>
  then one operation per line, tab-separated:
  client  invoked  completed|?  kind  key  value  expected  output  ok(1|0)
  kind is read|write|cas|append|enqueue|dequeue; invoked/completed are positions in one
  total order of events (here: the index of the event in the log).
"""

import argparse
import os
import re
import subprocess
import sys

ETCD_EXPECT = {}  # filled from porcupine_test.go


def git_files(repo, prefix):
    out = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD", prefix],
                         check=True, capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines() if line)


def git_show(repo, path):
    return subprocess.run(["git", "--git-dir", repo, "show", "HEAD:" + path], check=True,
                          capture_output=True, text=True).stdout


def git_head(repo):
    return subprocess.run(["git", "--git-dir", repo, "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


class Op:
    def __init__(self, client, invoked, kind, key="", value="", expected="", output="", ok=True):
        self.client, self.invoked, self.kind, self.key = client, invoked, kind, key
        self.value, self.expected, self.output, self.ok = value, expected, output, ok
        self.completed = None
        self.drop = False

    def line(self):
        for field in (self.key, self.value, self.expected, self.output):
            assert "\t" not in field and "\n" not in field, field
        completed = "?" if self.completed is None else str(self.completed)
        return "\t".join([str(self.client), str(self.invoked), completed, self.kind, self.key,
                          self.value, self.expected, self.output, "1" if self.ok else "0"])


def write_history(path, header, model, initial, expect, ops):
    with open(path, "w", encoding="utf-8") as f:
        for line in header:
            f.write("# " + line + "\n")
        f.write("model " + model + "\n")
        if initial is not None:
            f.write("initial " + initial + "\n")
        f.write("expect " + expect + "\n")
        for op in ops:
            if not op.drop:
                f.write(op.line() + "\n")


def porcupine_expectations(repo):
    text = git_show(repo, "porcupine_test.go")
    etcd = {int(n): v == "true" for n, v in re.findall(r"checkJepsen\(t, (\d+), (true|false)\)", text)}
    kv = {}
    for name, v, part in re.findall(r'checkKv\(t, "([^"]+)", (true|false), (true|false)\)', text):
        kv[name] = v == "true"
    return etcd, kv


def convert_etcd(text):
    """Porcupine's parseJepsenLog, with an unknown read output dropped instead of matched."""
    util = r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+"
    invoke_read = re.compile(util + r":invoke\s+:read\s+nil$")
    invoke_write = re.compile(util + r":invoke\s+:write\s+(\d+)$")
    invoke_cas = re.compile(util + r":invoke\s+:cas\s+\[(\d+)\s+(\d+)\]$")
    return_read = re.compile(util + r":ok\s+:read\s+(nil|\d+)$")
    return_write = re.compile(util + r":ok\s+:write\s+(\d+)$")
    return_cas = re.compile(util + r":(ok|fail)\s+:cas\s+\[(\d+)\s+(\d+)\]$")
    timeout_read = re.compile(util + r":fail\s+:read\s+:timed-out$")
    ops, pending, t = [], {}, 0
    for line in text.splitlines():
        m = None
        for kind, regex in (("read", invoke_read), ("write", invoke_write), ("cas", invoke_cas)):
            m = regex.match(line)
            if m:
                proc = int(m.group(1))
                op = Op(proc, t, kind)
                if kind == "write":
                    op.value = m.group(2)
                elif kind == "cas":
                    op.expected, op.value = m.group(2), m.group(3)
                ops.append(op)
                pending[proc] = op
                t += 1
                break
        if m:
            continue
        m = return_read.match(line) or return_write.match(line) or return_cas.match(line)
        if m:
            op = pending.pop(int(m.group(1)))
            op.completed = t
            t += 1
            if op.kind == "read":
                op.output = "" if m.group(2) == "nil" else m.group(2)  # nil: the initial ""
            elif op.kind == "cas":
                op.ok = m.group(2) == "ok"
            continue
        m = timeout_read.match(line)
        if m:
            op = pending.pop(int(m.group(1)))
            op.completed = t
            t += 1
            op.drop = True  # a read whose value is unknown constrains nothing
    return ops  # calls still pending are indeterminate (completed None)


def convert_kv(text):
    """Porcupine's parseKvLog."""
    head = r'{:process (\d+), :type '
    invoke_get = re.compile(head + r':invoke, :f :get, :key "(.*)", :value nil}')
    invoke_put = re.compile(head + r':invoke, :f :put, :key "(.*)", :value "(.*)"}')
    invoke_append = re.compile(head + r':invoke, :f :append, :key "(.*)", :value "(.*)"}')
    return_get = re.compile(head + r':ok, :f :get, :key ".*", :value "(.*)"}')
    return_other = re.compile(head + r':ok, :f :(put|append), :key ".*", :value ".*"}')
    ops, pending, t = [], {}, 0
    for line in text.splitlines():
        m = invoke_get.search(line)
        if m:
            op = Op(int(m.group(1)), t, "read", key=m.group(2))
        else:
            m = invoke_put.search(line) or invoke_append.search(line)
            if m:
                kind = "write" if ":f :put" in line else "append"
                op = Op(int(m.group(1)), t, kind, key=m.group(2), value=m.group(3))
        if m:
            ops.append(op)
            pending[int(m.group(1))] = op
            t += 1
            continue
        m = return_get.search(line)
        if m:
            op = pending.pop(int(m.group(1)))
            op.completed, op.output = t, m.group(2)
            t += 1
            continue
        m = return_other.search(line)
        if m:
            op = pending.pop(int(m.group(1)))
            op.completed = t
            t += 1
    return ops


# ---- a small EDN reader: vectors, lists, maps, keywords, integers, strings, nil, comments ----

EDN_TOKEN = re.compile(r'\s+|,|;[^\n]*|"(?:\\.|[^"\\])*"|[\[\]{}()]|[^\s,\[\]{}()";]+')


def edn_parse(text):
    tokens = [t for t in EDN_TOKEN.findall(text) if t.strip() and t != "," and not t.startswith(";")]
    pos = 0

    def value():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok in "[(":
            items = []
            while tokens[pos] not in "])":
                items.append(value())
            pos += 1
            return items
        if tok == "{":
            items = []
            while tokens[pos] != "}":
                items.append(value())
            pos += 1
            return dict(zip(items[0::2], items[1::2]))
        if tok.startswith('"'):
            return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
        if tok == "nil":
            return None
        if tok in ("true", "false"):
            return tok == "true"
        if re.fullmatch(r"-?\d+", tok):
            return int(tok)
        return tok  # keywords (":ok") and symbols stay strings

    out = value()
    return out


def convert_knossos(text):
    history = edn_parse(text)
    ops, pending = [], {}
    for t, event in enumerate(history):
        proc, kind, f = event.get(":process"), event.get(":type"), event.get(":f")
        if not isinstance(proc, int) or f not in (":read", ":write", ":cas"):
            continue
        if kind == ":invoke":
            assert proc not in pending, ("process reused while pending", event)
            op = Op(proc, t, f[1:])
            v = event.get(":value")
            if f == ":write":
                op.value = str(v)
            elif f == ":cas":
                op.expected, op.value = str(v[0]), str(v[1])
            ops.append(op)
            pending[proc] = op
        elif kind in (":ok", ":fail", ":info"):
            op = pending.pop(proc, None)
            if op is None:
                continue
            if kind == ":fail":
                op.drop = True  # it did not happen
            elif kind == ":ok":
                op.completed = t
                if op.kind == "read":
                    v = event.get(":value")
                    if v is None:
                        op.drop = True  # an unknown value constrains nothing
                    else:
                        op.output = str(v)
            # :info: indeterminate, completed stays None
    return ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--porcupine", required=True, help="git dir of a Porcupine checkout")
    parser.add_argument("--knossos", help="git dir of a Knossos checkout")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    porcupine_head = git_head(args.porcupine)
    etcd_expect, kv_expect = porcupine_expectations(args.porcupine)
    licence = "Porcupine (github.com/anishathalye/porcupine, MIT licence, see LICENSE-porcupine.md)"
    count = 0
    for path in git_files(args.porcupine, "test_data/jepsen"):
        n = int(re.search(r"etcd_(\d+)\.log$", path).group(1))
        if n not in etcd_expect:
            print("skipping %s: porcupine_test.go asserts no verdict for it" % path)
            continue
        ops = convert_etcd(git_show(args.porcupine, path))
        expect = "linearizable" if etcd_expect[n] else "not-linearizable"
        header = ["converted by tests/check/convert_histories.py from " + licence,
                  "file " + path + " at commit " + porcupine_head]
        write_history(os.path.join(args.out, "porcupine-etcd_%03d.txt" % n), header,
                      "cas-register", None, expect, ops)
        count += 1
    for path in git_files(args.porcupine, "test_data/kv"):
        name = os.path.basename(path)[:-4]
        ops = convert_kv(git_show(args.porcupine, path))
        expect = "linearizable" if kv_expect[name] else "not-linearizable"
        header = ["converted by tests/check/convert_histories.py from " + licence,
                  "file " + path + " at commit " + porcupine_head]
        write_history(os.path.join(args.out, "porcupine-kv-%s.txt" % name), header, "kv-append",
                      None, expect, ops)
        count += 1
    if args.knossos:
        knossos_head = git_head(args.knossos)
        licence = ("Knossos (github.com/jepsen-io/knossos), Copyright 2013, 2016, 2017 Kyle "
                   "Kingsbury, Eclipse Public License 1.0, see LICENSE-knossos.txt")
        for folder, expect in (("good", "linearizable"), ("bad", "not-linearizable")):
            for path in git_files(args.knossos, "data/cas-register/" + folder):
                if not path.endswith(".edn"):
                    continue
                ops = convert_knossos(git_show(args.knossos, path))
                header = ["converted by tests/check/convert_histories.py from " + licence,
                          "file " + path + " at commit " + knossos_head]
                name = "knossos-cas-%s-%s.txt" % (folder, os.path.basename(path)[:-4])
                write_history(os.path.join(args.out, name), header, "cas-register", "0", expect,
                              ops)
                count += 1
    print("wrote %d histories to %s" % (count, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
