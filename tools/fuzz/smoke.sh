#!/usr/bin/env bash
# tools/fuzz/smoke.sh — a short, bounded CI run of the schedule fuzzer (build it first with
# `tools/setup.sh fuzz`; the replay check uses build/release/tools/trellis).
#
# 0. The to_process and actor frame decoders: a few seconds of fuzzing find no crash (ASan + UBSan).
# 1. The kv scenario without its planted bug: 300 fuzzed runs find nothing.
# 2. With the bug: the fuzzer finds it within its time bound, writes a replay file that
#    `trellis replay` reproduces, and running the crash input again converts it to the same
#    replay file.
# 3. The replay-file parser fuzzer, 30 s from tools/fuzz/replay_corpus.
# 4. DtlsEndpoint fed hostile datagrams in a World, 20 s from seeds built on a real
#    ClientHello (ASan + UBSan): no crash, and the legitimate client is served.
# 5. The sweep-report parser behind `trellis sweep-merge`, 20 s from
#    tools/fuzz/sweep_report_corpus (ASan + UBSan): no crash, and what parses reads back.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzzer=build/fuzz/tools/trellis_schedule_fuzzer
trellis=build/release/tools/trellis
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "fuzz smoke: FAILED: $*" >&2; exit 1; }

frame_fuzzer=build/fuzz/tools/trellis_frame_fuzzer
mkdir -p "$work/frames"
echo "fuzz smoke: to_process and actor frame decoders, 5 s"
"$frame_fuzzer" -seed=1 -max_total_time=5 -rss_limit_mb=1024 -artifact_prefix="$work/frames/" \
  >"$work/frames.log" 2>&1 || { tail -30 "$work/frames.log"; fail "the frame fuzzer crashed"; }

mkdir -p "$work/clean" "$work/bug"
echo "fuzz smoke: kv without the planted bug, 300 runs"
TRELLIS_FUZZ_SCENARIO=kv TRELLIS_FUZZ_REPLAY_DIR="$work/clean" \
  "$fuzzer" -seed=1 -runs=300 -max_total_time=300 -artifact_prefix="$work/clean/" \
  >"$work/clean.log" 2>&1 || { tail -30 "$work/clean.log"; fail "a clean run failed"; }

echo "fuzz smoke: kv with the planted bug (at most 300 s)"
set +e
TRELLIS_FUZZ_SCENARIO=kv TRELLIS_FUZZ_OPTIONS=planted_bug=on TRELLIS_FUZZ_REPLAY_DIR="$work/bug" \
  "$fuzzer" -seed=1 -max_total_time=300 -artifact_prefix="$work/bug/" >"$work/bug.log" 2>&1
status=$?
set -e
[ "$status" -ne 0 ] || fail "the fuzzer did not find the planted bug in 300 s"
replay="$work/bug/kv.fuzz.replay"
[ -f "$replay" ] || { tail -30 "$work/bug.log"; fail "no replay file written"; }
grep -A3 "trellis_schedule_fuzzer: kv failed" "$work/bug.log" | cut -c1-200
set +e
"$trellis" replay "$replay" >"$work/replay.log" 2>&1
status=$?
set -e
[ "$status" -eq 1 ] || { cat "$work/replay.log"; fail "the replay did not reproduce (exit $status)"; }

crash=$(ls "$work"/bug/crash-* | head -1)
mv "$replay" "$work/first.replay"
TRELLIS_FUZZ_SCENARIO=kv TRELLIS_FUZZ_OPTIONS=planted_bug=on TRELLIS_FUZZ_REPLAY_DIR="$work/bug" \
  "$fuzzer" "$crash" >/dev/null 2>&1 || true
cmp -s "$work/first.replay" "$replay" || fail "the crash input did not convert to the same replay"
echo "fuzz smoke: ok (bug found, replay reproduces, crash input converts)"

# 3. The replay-file parser on arbitrary bytes, from a small corpus: no crash, and whatever
#    parses writes back as the same file (30 s at most).
echo "fuzz smoke: replay-file parser, 30 s"
mkdir -p "$work/replay_corpus"
cp tools/fuzz/replay_corpus/* "$work/replay_corpus/"
build/fuzz/tools/trellis_replay_file_fuzzer "$work/replay_corpus" -seed=1 -max_total_time=30 -print_final_stats=1 \
  -artifact_prefix="$work/" >"$work/replay_fuzz.log" 2>&1 ||
  { tail -30 "$work/replay_fuzz.log"; fail "the replay-file fuzzer found a problem"; }
echo "fuzz smoke: replay-file parser ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/replay_fuzz.log" | grep -o '[0-9]*$' || echo '?') inputs)"

# 4. DtlsEndpoint fed hostile datagrams in a World (20 s at most), from seeds that the fuzzer
#    writes around a ClientHello it captures in its own run.
dtls_fuzzer=build/fuzz/tools/trellis_dtls_fuzzer
echo "fuzz smoke: DTLS endpoint under hostile datagrams, 20 s"
mkdir -p "$work/dtls_corpus" "$work/dtls_empty"
TRELLIS_DTLS_FUZZ_SEED_DIR="$work/dtls_corpus" "$dtls_fuzzer" -runs=1 "$work/dtls_empty" \
  >"$work/dtls_seed.log" 2>&1 || { tail -30 "$work/dtls_seed.log"; fail "no DTLS seeds"; }
[ -s "$work/dtls_corpus/client_hello_before" ] || fail "the DTLS fuzzer wrote no seeds"
"$dtls_fuzzer" "$work/dtls_corpus" -seed=1 -max_total_time=20 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" >"$work/dtls_fuzz.log" 2>&1 ||
  { tail -40 "$work/dtls_fuzz.log"; fail "the DTLS fuzzer found a problem"; }
echo "fuzz smoke: DTLS endpoint ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/dtls_fuzz.log" | grep -o '[0-9]*$' || echo '?') inputs)"

# 5. The sweep-report parser (`trellis sweep-merge` reads reports from other machines), 20 s
#    from a small corpus of real reports (clean, failing, sharded, unsharded).
echo "fuzz smoke: sweep-report parser, 20 s"
mkdir -p "$work/sweep_report_corpus"
cp tools/fuzz/sweep_report_corpus/* "$work/sweep_report_corpus/"
build/fuzz/tools/trellis_sweep_report_fuzzer "$work/sweep_report_corpus" -seed=1 -max_total_time=20 \
  -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$work/" >"$work/sweep_report_fuzz.log" 2>&1 ||
  { tail -30 "$work/sweep_report_fuzz.log"; fail "the sweep-report fuzzer found a problem"; }
echo "fuzz smoke: sweep-report parser ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/sweep_report_fuzz.log" | grep -o '[0-9]*$' || echo '?') inputs)"
