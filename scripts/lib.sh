# Shell helpers shared by the install scripts; source it after setting CACHE.

# step WHAT: announce a step that does work; step_done says how long it took. install_report
# lists every step of this run with its time (nothing when everything was already there).
STEPS_TAKEN=()
step() { STEP_NAME=$*; STEP_START=$EPOCHREALTIME; printf '==> %s\n' "$*"; }
step_done() {
  local took
  took=$(awk -v a="$STEP_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  printf '    done in %s s\n' "$took"
  STEPS_TAKEN+=("$(printf '%6s s  %s' "$took" "$STEP_NAME")")
}
install_report() {
  ((${#STEPS_TAKEN[@]})) || return 0
  printf '==> install steps (seconds each):\n'
  printf '%s\n' "${STEPS_TAKEN[@]}"
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
    step "building $name $version with go install (once; cached in $cached)"
    local gobin
    gobin=$(mktemp -d)
    GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "$module@$version"
    mv "$gobin"/* "$cached"
    rm -rf "$gobin"
    step_done
  fi
  flock -u "$lock"
  exec {lock}>&-
  mkdir -p .bin
  ln -sfn "$cached" ".bin/$name"
}
