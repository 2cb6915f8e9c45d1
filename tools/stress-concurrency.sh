#!/usr/bin/env bash
# Runs ConcurrencyStressTest and GarbageCollectionTest N times in a row (default 20), each time in
# fresh JVMs on both engines, and counts the runs that failed. Not part of `mvn verify`: issue 11's
# check that the garbage-collection bug behind "garbage diagonals from two threads" stays fixed.
set -u
cd "$(dirname "$0")/.."
runs=${1:-20}
failed=0
mkdir -p engine-tests/target
for i in $(seq 1 "$runs"); do
    if mvn -B -q -pl api,engine-tests -am verify -Dspotless.check.skip=true -Dcheckstyle.skip=true \
        -Dtest='ConcurrencyStressTest,GarbageCollectionTest' -Dsurefire.failIfNoSpecifiedTests=false \
        > "engine-tests/target/stress-$i.log" 2>&1; then
        echo "run $i: passed"
        rm -f "engine-tests/target/stress-$i.log"
    else
        failed=$((failed + 1))
        echo "run $i: FAILED (see engine-tests/target/stress-$i.log)"
    fi
done
echo "$failed of $runs runs failed"
[ "$failed" -eq 0 ]
