#!/usr/bin/env bash
# tsoverlay's whole test suite -- what `npm test` runs (README).
#
#   1. npm run build, npm run typecheck   (the integration tests run dist/cli.js)
#   2. unit, component and contract tests (src/**/*.test.ts, test/component, test/contract)
#   3. integration tests                  (test/integration: real dockerd hosts in
#                                          network namespaces, see test/lab)
#   4. the cross-host cases again on a current Docker engine (28.5 from Debian
#      sid, fetched and cached by scripts/docker-engine.sh), then with
#      docker-in-docker hosts
#                                         (npm run test:dind: builds or reuses the
#                                          cached node image, scripts/dind-image.sh)
#
# Needs root and the tools from scripts/install-deps.sh. TSOVERLAY_IT=1 is set
# for steps 2 and 3, so contract and integration tests really run.
# Ends with one line "N passed, N failed" (tap assertion counts, summed) and
# exits non-zero if anything failed.
#
# Environment:
#   TSL_LOG_DIR   where the logs of a failed lab are kept (default test-results/lab-logs)
#   TSL_KEEP_LOGS=1 keep every lab's logs there, not only those of a failed one
#   TSL_SKIP_IT=1 skip the integration tests (steps 3 and 4)
#   TSL_SKIP_NEW_ENGINE=1 skip the run on a current engine (step 4)
#   TSL_NEW_ENGINE_SUITE  Debian suite of that engine: sid (28.5, default) or trixie (26.1)
#   TSL_SKIP_DIND=1 skip the docker-in-docker run (step 4)
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

passed=0
failed=0
problems=()

summary() {
  echo
  if [ "${#problems[@]}" -gt 0 ]; then
    echo "run-all: problems:"
    printf '  - %s\n' "${problems[@]}"
  fi
  echo "${passed} passed, ${failed} failed"
}

die() {
  echo "run-all: $*" >&2
  failed=$((failed + 1))
  problems+=("$*")
  summary
  exit 1
}

# ------------------------------------------------------------------ preflight
if [ "$(id -u)" != 0 ]; then
  die "the tests need root (network namespaces, dockerd); run as root after scripts/install-deps.sh"
fi
missing=()
for tool in node npm npx docker dockerd containerd runc nsenter unshare ip iptables ping tar mount umount java; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x /bin/busybox ] || missing+=("/bin/busybox (busybox-static)")
[ -f /usr/share/java/zookeeper.jar ] || missing+=("/usr/share/java/zookeeper.jar (zookeeper)")
[ -d node_modules ] || missing+=("node_modules (npm ci)")
if [ "${#missing[@]}" -gt 0 ]; then
  die "missing: ${missing[*]} -- run scripts/install-deps.sh first"
fi

export TSOVERLAY_IT=1
if [ -z "${TSL_LOG_DIR:-}" ]; then
  export TSL_LOG_DIR=$ROOT/test-results/lab-logs
  rm -rf "$TSL_LOG_DIR" # logs of the previous run's failed labs
fi
# the cross-host cases run a second time with docker-in-docker hosts (step 4);
# package.json's test:dind runs the same files
DIND_TESTS=(test/integration/multi-host.test.ts)
# and a third time on a current engine (Debian sid's docker.io 28.5,
# scripts/docker-engine.sh), with what changed for remote drivers since 20.10
# (current-engine.test.ts; in the ordinary run too, its 28-only cases skip there)
# and the managed plugin (docker plugin create/push/install/upgrade)
NEW_ENGINE_TESTS=(test/integration/multi-host.test.ts test/integration/current-engine.test.ts test/integration/managed-plugin.test.ts)
LOGS=$(mktemp -d /tmp/tsoverlay-run-all.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

# Run tap on the given files; add its assertion counts to the totals.
run_tap() {
  local name=$1
  shift
  local out="$LOGS/$name.tap"
  echo
  echo "==== $name: $# file(s)"
  npx tap --reporter=tap "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local line p f
  line=$(grep -E '^# \{ total: [0-9]+' "$out" | tail -n 1)
  p=$(grep -oE 'pass: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || true)
  f=$(grep -oE 'fail: [0-9]+' <<<"$line" | grep -oE '[0-9]+' || true)
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    # tap failed without counting a failed assertion (crash, timeout, no tests)
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" != 0 ]; then
    problems+=("$name: tap exited $rc ($p passed, $f failed)")
  fi
  echo "==== $name: $p passed, $f failed (tap exit $rc)"
}

# ---------------------------------------------------------------------- build
echo "==== build"
build_ok=1
if ! npm run build; then
  build_ok=0
  failed=$((failed + 1))
  problems+=("npm run build failed")
fi
echo "==== typecheck (sources and tests, strict)"
if ! npm run typecheck; then
  failed=$((failed + 1))
  problems+=("npm run typecheck failed")
fi

# --------------------------------------------------- unit, component, contract
mapfile -t unit_files < <(
  { find src -name '*.test.ts' -o -name '*.test.js' -o -name '*.test.mts' 2>/dev/null
    find test/component test/contract \( -name '*.test.ts' -o -name '*.test.js' -o -name '*.test.mts' \) 2>/dev/null
  } | sort
)
if [ "${#unit_files[@]}" -gt 0 ]; then
  run_tap "unit+component+contract" "${unit_files[@]}"
else
  echo "run-all: no unit/component/contract test files found"
fi

# ---------------------------------------------------------------- integration
if [ "${TSL_SKIP_IT:-0}" = 1 ]; then
  echo "run-all: TSL_SKIP_IT=1: integration tests skipped"
elif [ "$build_ok" != 1 ]; then
  failed=$((failed + 1))
  problems+=("integration tests not run: the build failed")
else
  # leftovers of an earlier run whose test process was killed
  bash scripts/lab-sweep.sh || true
  mapfile -t it_files < <(find test/integration \( -name '*.test.ts' -o -name '*.test.js' \) | sort)
  if [ "${#it_files[@]}" -gt 0 ]; then
    run_tap "integration" "${it_files[@]}"
  else
    failed=$((failed + 1))
    problems+=("no integration test files found")
  fi
  # ------------------------------------------- a current Docker engine (28.5)
  if [ "${TSL_SKIP_NEW_ENGINE:-0}" = 1 ]; then
    echo "run-all: TSL_SKIP_NEW_ENGINE=1: the run on a current engine skipped"
  else
    echo
    echo "==== current Docker engine (scripts/docker-engine.sh ${TSL_NEW_ENGINE_SUITE:-sid}; cached)"
    if engine_dir=$(bash scripts/docker-engine.sh "${TSL_NEW_ENGINE_SUITE:-sid}"); then
      TSL_ENGINE_DIR=$engine_dir run_tap "integration (dockerd $(awk '$1 == "docker.io" { print $2 }' "$engine_dir/VERSIONS"))" "${NEW_ENGINE_TESTS[@]}"
    else
      failed=$((failed + 1))
      problems+=("the current Docker engine could not be fetched (scripts/docker-engine.sh); its tests not run")
    fi
  fi
  # ------------------------------------------------------ docker-in-docker
  if [ "${TSL_SKIP_DIND:-0}" = 1 ]; then
    echo "run-all: TSL_SKIP_DIND=1: docker-in-docker run skipped"
  else
    echo
    echo "==== docker-in-docker node image (scripts/dind-image.sh; cached)"
    t0=$SECONDS
    if bash scripts/dind-image.sh; then
      echo "==== node image ready after $((SECONDS - t0)) s"
      TSL_BACKEND=dind run_tap "integration (docker-in-docker)" "${DIND_TESTS[@]}"
    else
      failed=$((failed + 1))
      problems+=("docker-in-docker node image could not be built (scripts/dind-image.sh); dind tests not run")
    fi
  fi
  # the test processes are gone now: any lab still on disk or in `ip netns`
  # was left behind by this run -- a failure, cleaned up here
  if ! stale=$(bash scripts/lab-sweep.sh --check 2>&1); then
    failed=$((failed + 1))
    problems+=("integration tests left labs behind: $(grep -v 'in use by' <<<"$stale" | tr '\n' ' ')")
    bash scripts/lab-sweep.sh || true
  fi
  if leftover=$(ps -eo pid=,args= | grep -E '(dockerd|containerd).*/tsl-[0-9a-f]{6}/' | grep -v grep); then
    echo "run-all: processes of test labs still running:" >&2
    echo "$leftover" >&2
  fi
fi

summary
[ "$failed" = 0 ]
