# Sourced by scripts/test.d/*.sh: fuzz PKG FUZZER [TIME] runs one fuzzer for a bounded time.
# On a loaded machine the Go fuzzing engine sometimes ends a time-bounded run with "context
# deadline exceeded" from a worker that did not stop in time, without any failing input; that
# run is retried once. A real finding ("Failing input written") is never retried.
fuzz() {
  local pkg=$1 name=$2 t=${3:-${FUZZTIME:-15s}} out
  echo "-- fuzz $pkg $name ($t)"
  for attempt in 1 2; do
    if out=$(go test -run '^$' -fuzz "^$name\$" -fuzztime "$t" -parallel 2 "$pkg" 2>&1); then
      echo "$out" | tail -n 3
      return 0
    fi
    if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      echo "-- $name: the fuzzing engine timed out a worker (no failing input); retrying once"
      continue
    fi
    echo "$out"
    return 1
  done
}
