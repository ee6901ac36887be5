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

# debian_packages COMMAND=PACKAGE...: apt-get install the PACKAGE of each COMMAND not on PATH.
debian_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  if ((${#missing[@]})); then
    step "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    step_done
  fi
}

# cached_tool NAME VERSION BUILD...: run `BUILD... OUT` once to make $CACHE/bin/NAME@VERSION (OUT is
# where BUILD writes the binary), then link it as .bin/NAME.
cached_tool() {
  local name=$1 version=$2
  shift 2
  local cached="$CACHE/bin/$name@$version"
  # Checkouts installing at the same time wait for one build instead of each compiling it.
  exec {lock}>"$cached.lock"
  flock "$lock"
  if [ ! -x "$cached" ]; then
    step "building $name $version (once; cached in $cached; log in $cached.log)"
    # The build's output goes to the log, so that builds beside other steps stay readable.
    "$@" "$cached.partial" >"$cached.log" 2>&1 || { tail -n 30 "$cached.log" >&2; return 1; }
    mv "$cached.partial" "$cached"
    step_done
  fi
  flock -u "$lock"
  exec {lock}>&-
  mkdir -p .bin
  ln -sfn "$cached" ".bin/$name"
}

# go_install MODULE@VERSION OUT: go install names the binary after the module path, less any
# major-version suffix; it is the only file in a fresh GOBIN, so it is taken whatever its name.
go_install() {
  local gobin
  gobin=$(mktemp -d)
  GOBIN="$gobin" GOFLAGS=-buildvcs=false go install "$1"
  mv "$gobin"/* "$2"
  rm -rf "$gobin"
}

# go_tool MODULE VERSION NAME: build MODULE@VERSION with go install once; see cached_tool.
go_tool() {
  cached_tool "$3" "$2" go_install "$1@$2"
}

# podman with the project's settings, and the name of the base image the Dockerfiles build FROM
# (its tag changes with its package list, so a changed list makes a new base).
export CONTAINERS_CONF="$PWD/scripts/containers.conf"
base_image() {
  printf 'localhost/ragplane/base:%s-%s\n' "$BASE_SUITE" \
    "$(printf '%s' "$BASE_PACKAGES" | sha256sum | cut -c1-12)"
}
