#!/bin/sh
# Run each libFuzzer target named for FUZZ_TIME seconds on its seeds
# (BUILD/fuzzcorpus/T), its crash reproducers (tests/fuzz/regress/T, all
# replayed first) and what earlier runs of `make fuzz` found
# (BUILD/fuzzwork/T, with FUZZ_KEEP=1).  Usage: run.sh BUILD TARGET...
# A crash leaves its input in BUILD/fuzzcrash/T/ and fails the run; copy
# it into tests/fuzz/regress/T/ with the fix.  FUZZ_RUNS=N also ends a
# target after N executions (make fuzz FUZZ_RUNS=10000000), whichever of
# the two limits comes first.
set -u
build=$1
shift
time=${FUZZ_TIME:-5}
fail=0
for t in "$@"; do
	# make fuzz keeps what it finds; the smoke run starts afresh.
	if [ "${FUZZ_KEEP:-0}" = 1 ]; then
		work=$build/fuzzwork/$t
		log=$build/fuzzlog/$t.log
	else
		work=$build/fuzzsmoke/$t
		log=$build/fuzzlog/$t.smoke.log
		rm -rf "$work"
	fi
	crash=$build/fuzzcrash/$t
	mkdir -p "$work" "$crash" "$build/fuzzlog"
	set -- "$work" "$build/fuzzcorpus/$t"
	[ -d "tests/fuzz/regress/$t" ] && set -- "$@" "tests/fuzz/regress/$t"
	# Seeds and reproducers are short; a fuzzed input may not grow past
	# a frame's default maximum.
	nice -n "${FUZZ_NICE:-0}" "$build/fuzz/bin/fuzz_$t" \
	    -max_total_time="$time" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -timeout=20 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix="$crash/" \
	    "$@" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	printf '  FUZZ   %-8s %ss: %s execs, %s/s, %s\n' "$t" "$time" \
	    "${execs:-?}" "${rate:-?}" "${cov:-?}"
	if [ $rc -ne 0 ]; then
		echo "fuzz: $t failed (exit $rc); log $log, inputs in $crash:" >&2
		grep -A30 '^==[0-9]*==ERROR\|^SUMMARY\|runtime error' "$log" |
		    head -40 >&2
		fail=1
	fi
done
exit $fail
