# Shell helpers shared by the install scripts; source it after setting CACHE.

# step WHAT: announce a step that does work; step_done says how long it took, on the clock and
# in CPU seconds (user + system time of the processes it ran: on a machine shared with other
# work, the steadier figure). Steps may run in background subshells, so each one is recorded in
# a file; install_report lists every step of this run (nothing when everything was already there).
STEPS_FILE=$(mktemp)
INSTALL_START=$EPOCHREALTIME
# CPU seconds used so far by the finished children of the (sub)shell PID.
children_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($16 + $17) / hz }' "/proc/$1/stat"; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }
step() {
  local shell=$BASHPID
  STEP_NAME=$* STEP_START=$EPOCHREALTIME STEP_CPU=$(children_cpu "$shell")
  printf '==> %s\n' "$*"
}
step_done() {
  local shell=$BASHPID took cpu
  took=$(seconds_since "$STEP_START")
  cpu=$(($(children_cpu "$shell") - STEP_CPU))
  printf '    done in %s s (%s CPU s): %s\n' "$took" "$cpu" "$STEP_NAME"
  printf '%6s s %6s s  %s\n' "$took" "$cpu" "$STEP_NAME" >>"$STEPS_FILE"
}
install_report() {
  if [ -s "$STEPS_FILE" ]; then
    printf '==> install steps (seconds each, on the clock and of CPU):\n'
    cat "$STEPS_FILE"
    printf '%6s s           in all (steps may overlap)\n' "$(seconds_since "$INSTALL_START")"
  fi
  rm -f "$STEPS_FILE"
}

# go_tool MODULE VERSION NAME: build MODULE@VERSION once (cached as $CACHE/bin/NAME@VERSION)
# and link it as .bin/NAME. go install names the binary after the module path, less any
# major-version suffix; it is the only file in a fresh GOBIN, so it is taken whatever its name.
go_tool() {
  local module=$1 version=$2 name=$3
  local cached="$CACHE/bin/$name@$version"
  # Checkouts installing at the same time wait for one build instead of each compiling it.
  exec {lock}>"$cached.lock"
  flock "$lock"
  if [ ! -x "$cached" ]; then
    step "building $name $version with go install (once; cached in $cached; log in $cached.log)"
    local gobin
    gobin=$(mktemp -d)
    # Go's download lines go to the log, so that builds beside other steps stay readable.
    GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "$module@$version" >"$cached.log" 2>&1 ||
      { tail -n 30 "$cached.log" >&2; return 1; }
    mv "$gobin"/* "$cached"
    rm -rf "$gobin"
    step_done
  fi
  flock -u "$lock"
  exec {lock}>&-
  mkdir -p .bin
  ln -sfn "$cached" ".bin/$name"
}
