#!/usr/bin/env bash
# The `trellis` tool end to end: list, a sweep that finds the WAL scenario's planted bug
# (exit 1) and writes a replay file that `replay` reproduces (exit 1, twice), a clean sweep
# (exit 0), a sharded sweep and its merge, and bad input (unknown scenario, bad option,
# malformed replay file, a bad shard: exit 2).
set -u
trellis=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$trellis" list | grep -q '^wal$' || fail "list does not show wal"

out=$("$trellis" sweep wal --seeds=1000 --j=2 --options=planted_bug=on --replay_dir="$work" 2>&1)
[ $? -eq 1 ] || fail "sweep with the planted bug should exit 1: $out"
echo "$out" | grep -q 'acknowledged as durable' || fail "no invariant message: $out"
replay=$(echo "$out" | sed -n 's/.*replay it: *trellis replay \(.*\)$/\1/p')
[ -f "$replay" ] || fail "no replay file ($replay): $out"
for i in 1 2; do
  again=$("$trellis" replay "$replay" 2>&1)
  [ $? -eq 1 ] || fail "replay should reproduce the failure: $again"
  echo "$again" | grep -q 'the failure reproduced' || fail "replay output: $again"
done

out=$("$trellis" trace "$replay" --out="$work/trace.json" 2>&1)
[ $? -eq 0 ] || fail "trace failed: $out"
grep -q '"traceEvents"' "$work/trace.json" || fail "no traceEvents in the Chrome trace"
grep -q '"host db"' "$work/trace.json" || fail "the Chrome trace names no host"
if command -v python3 >/dev/null; then
  python3 -m json.tool "$work/trace.json" >/dev/null || fail "the Chrome trace is not valid JSON"
fi

# The actor-tree scenario (issue 19): actors on two simulated hosts; a clean sweep passes,
# the planted duplicate is found and its replay reproduces it.
out=$("$trellis" sweep actor-tree --seeds=200 --j=2 2>&1)
[ $? -eq 0 ] || fail "clean actor-tree sweep should exit 0: $out"
mkdir -p "$work/actors"
out=$("$trellis" sweep actor-tree --seeds=300 --j=2 --options=planted_bug=on \
  --replay_dir="$work/actors" 2>&1)
[ $? -eq 1 ] || fail "actor-tree sweep with the planted bug should exit 1: $out"
echo "$out" | grep -q 'delivered twice' || fail "no actor-tree invariant message: $out"
replay=$(echo "$out" | sed -n 's/.*replay it: *trellis replay \(.*\)$/\1/p')
again=$("$trellis" replay "$replay" 2>&1)
[ $? -eq 1 ] || fail "actor-tree replay should reproduce the failure: $again"

out=$("$trellis" sweep wal --seeds=300 --j=2 --junit="$work/junit.xml" 2>&1)
[ $? -eq 0 ] || fail "clean sweep should exit 0: $out"
grep -q '<testsuite name="trellis sweep wal" tests="300" failures="0"' "$work/junit.xml" ||
  fail "JUnit report: $(head -c 300 "$work/junit.xml")"
# Not a terminal: plain progress lines, never a carriage return that redraws one long line.
case "$out" in *$'\r'*) fail "sweep progress wrote a carriage return to a pipe: $out" ;; esac
echo "$out" | grep -q '^  300/300 seeds' || fail "no final progress line on its own line: $out"

out=$("$trellis" sweep wal --seeds=50 --j=2 --keep_going --options=planted_bug=on \
  --replay_dir="$work" --junit="$work/junit-bug.xml" 2>&1)
[ $? -eq 1 ] || fail "sweep with the planted bug should exit 1: $out"
grep -q '<failure message="invariant violated' "$work/junit-bug.xml" ||
  fail "JUnit report has no failure: $(head -c 300 "$work/junit-bug.xml")"
if command -v python3 >/dev/null; then
  python3 -c "import sys, xml.etree.ElementTree as e; e.parse(sys.argv[1])" \
    "$work/junit-bug.xml" || fail "the JUnit report is not valid XML"
fi
"$trellis" trace "$replay" --format=svg >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad format should exit 2"

# A sweep in three shards merges to every seed; a missing shard or a bad --shard is exit 2
# (tests/cli/ has the thorough checks).
for i in 0 1 2; do
  out=$("$trellis" sweep wal --seeds=30 --shard=$i/3 --junit="$work/shard$i.xml" 2>&1)
  [ $? -eq 0 ] || fail "clean shard $i/3 should exit 0: $out"
done
out=$("$trellis" sweep-merge "$work"/shard0.xml "$work"/shard1.xml "$work"/shard2.xml 2>&1)
[ $? -eq 0 ] || fail "sweep-merge of three clean shards should exit 0: $out"
echo "$out" | grep -q '^30 of 30 seeds run: 0 failed' || fail "sweep-merge output: $out"
"$trellis" sweep-merge "$work/shard0.xml" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing shards: exit 2"
"$trellis" sweep wal --seeds=30 --shard=3/3 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--shard=3/3: exit 2"

"$trellis" run nope >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown scenario should exit 2"
"$trellis" run wal --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown flag should exit 2"
"$trellis" sweep wal --seeds=abc >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad flag value should exit 2"
out=$("$trellis" sweep wal --seeds 20 --keep-going -j 2 --options=planted_bug=on \
  --replay_dir="$work" 2>&1)
[ $? -eq 1 ] || fail "--keep-going (dashes) and -j N should work: $out"
echo "$out" | grep -q "20 seeds in" || fail "--keep-going did not run every seed: $out"
"$trellis" run wal --options=colour=red >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad option should exit 2"
printf 'trellis-replay 1\nseed x\n' > "$work/bad.replay"
out=$("$trellis" replay "$work/bad.replay" 2>&1); [ $? -eq 2 ] || fail "bad replay should exit 2"
echo "$out" | grep -q 'line 2' || fail "bad replay message should name the line: $out"
"$trellis" replay "$work/missing.replay" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing replay should exit 2"
# `trellis serve actor-tree`: real child actor processes square what a client sends; SIGINT
# stops it and leaves no child actor behind.
if command -v python3 >/dev/null; then
  out=$(timeout 60 python3 - "$trellis" <<'PY' 2>&1
import os, signal, socket, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "serve", "actor-tree"], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
line = p.stdout.readline().decode()
port = int(line.split("127.0.0.1:")[1].split()[0])
worker = int(line.split("pid ")[1].split(")")[0])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"7\nabc\n-12\n")
buf = b""
while buf.count(b"\n") < 3:
    chunk = s.recv(100)
    if not chunk:
        break
    buf += chunk
s.close()
p.send_signal(signal.SIGINT)
rest = p.communicate(timeout=30)[0].decode()
time.sleep(0.5)
gone = not os.path.exists("/proc/%d" % worker) or open("/proc/%d/stat" % worker).read().split(")")[1].split()[0] == "Z"
print(buf.decode().replace("\n", "|"), rest.strip(), "exit=%d" % p.returncode, "gone=%s" % gone)
PY
)
  echo "$out" | grep -q "49|error: not an integer: 'abc'|144|" || fail "actor-tree serve answers: $out"
  echo "$out" | grep -q "stopped by SIGINT exit=0 gone=True" || fail "actor-tree serve stop: $out"
fi
echo "cli ok"
