#!/usr/bin/env bash
# `make demo`: a whole fleet on this machine, on the pipeline in deploy/demo/pipeline.yml.
#   gitlab-sim (GitLab) <- coordinator -> worker-cluster-a  -> kube-sim cluster-a   (prod)
#                                      -> worker-cluster-b  -> kube-sim cluster-b   (prod)
#                                      -> worker-qa-cluster -> kube-sim qa-cluster  (overflow)
#   workers -> log-shipper -> gitlab-sim
# DEMO_KEEP=1 keeps the fleet up afterwards, to try fleetctl on it (Ctrl-C stops it).
# Progress comes from `fleetctl watch` (which cluster took which job, its state); at the end
# gitlab-sim prints every job's state and the tail of its trace. Exits 0 when every job ended
# as the pipeline expects. The processes' logs stay in the work directory when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=${BIN:-$top/target/debug}
demo=$top/deploy/demo
timeout_s=${DEMO_TIMEOUT:-300}
work=$(mktemp -d /tmp/flotilla-demo.XXXXXX)
pids=()
ok=0

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$ok" = 1 ]; then rm -rf "$work"; else echo "demo: logs kept in $work"; fi
}
trap cleanup EXIT

fail() {
  echo "demo: $*" >&2
  for log in "$work"/*.log; do
    [ -s "$log" ] && { echo "--- tail of $log"; tail -n 15 "$log"; }
  done
  exit 1
}

for port in 17600 17601 17700; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is taken (another demo still running?); the demo's fleet listens on 17600, 17601 and 17700"
  fi
done

# Waits until FILE has a line matching PATTERN, printing that line.
wait_for_line() { # file pattern what
  for _ in $(seq 1 200); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  fail "$3 did not start"
}

render() { # template output [cluster pool token capacity]
  sed -e "s|@WORK@|$work|g" -e "s|@HELPER@|$bin/flotilla-helper|g" -e "s|@CLUSTER@|${3:-}|g" \
    -e "s|@POOL@|${4:-}|g" -e "s|@TOKEN@|${5:-}|g" -e "s|@CAPACITY@|${6:-}|g" "$1" >"$2"
}
clusters=(cluster-a cluster-b qa-cluster)
declare -A pool=([cluster-a]=prod [cluster-b]=prod [qa-cluster]=qa)
declare -A capacity=([cluster-a]=3 [cluster-b]=3 [qa-cluster]=2)

echo "== starting the fleet (work directory $work)"
"$bin/gitlab-sim" --pipeline "$demo/pipeline.yml" --runner-token glrt-flotilla-demo \
  --long-poll 2s --state-file "$work/gitlab-state.json" --data-dir "$work/gitlab" \
  >"$work/gitlab-sim.out" 2>"$work/gitlab-sim.log" &
gitlab_pid=$!
pids+=("$gitlab_pid")
gitlab_url=$(wait_for_line "$work/gitlab-sim.out" '^gitlab-sim listening on ' gitlab-sim | awk '{print $4}')
echo "gitlab-sim       $gitlab_url (10 jobs queued for runner glrt-flotilla-demo)"

for cluster in "${clusters[@]}"; do
  "$bin/kube-sim" --name "$cluster" --kubeconfig "$work/$cluster.kubeconfig" --data-dir "$work/$cluster" \
    >"$work/$cluster.out" 2>"$work/kube-sim-$cluster.log" &
  pids+=($!)
done
for cluster in "${clusters[@]}"; do
  for _ in $(seq 1 200); do [ -s "$work/$cluster.kubeconfig" ] && break; sleep 0.05; done
  [ -s "$work/$cluster.kubeconfig" ] || fail "kube-sim $cluster did not start"
  echo "kube-sim         $cluster (kubectl --kubeconfig $work/$cluster.kubeconfig get pods)"
done

render "$demo/coordinator.toml" "$work/coordinator.toml"
render "$demo/log-shipper.toml" "$work/log-shipper.toml"
GITLAB_URL=$gitlab_url "$bin/flotilla-coordinator" --config "$work/coordinator.toml" \
  >"$work/coordinator.out" 2>"$work/coordinator.log" &
pids+=($!)
wait_for_line "$work/coordinator.out" 'listening' coordinator >/dev/null
echo "coordinator      127.0.0.1:17600 (admin 127.0.0.1:17601)"
"$bin/flotilla-log-shipper" --config "$work/log-shipper.toml" \
  >"$work/log-shipper.out" 2>"$work/log-shipper.log" &
pids+=($!)
wait_for_line "$work/log-shipper.out" 'listening' log-shipper >/dev/null
echo "log-shipper      127.0.0.1:17700"
for cluster in "${clusters[@]}"; do
  p=${pool[$cluster]}
  render "$demo/worker.toml" "$work/worker-$cluster.toml" "$cluster" "$p" "demo-$p-pool-token" "${capacity[$cluster]}"
  "$bin/flotilla-worker" --config "$work/worker-$cluster.toml" >"$work/worker-$cluster.log" 2>&1 &
  pids+=($!)
  echo "worker           worker-$cluster (pool $p, capacity ${capacity[$cluster]}) on $cluster"
done

export FLEETCTL_COORDINATOR=http://127.0.0.1:17601 FLEETCTL_TOKEN=demo-admin-token
echo
echo "== jobs (fleetctl watch)"
"$bin/fleetctl" watch 2>"$work/fleetctl.log" | sed -u 's/^/  /' &
pids+=($!)

# gitlab-sim writes its state file each time every job has ended.
finished() { grep -q '"all_finished": true' "$work/gitlab-state.json" 2>/dev/null; }
for _ in $(seq 1 "$((timeout_s * 10))"); do
  finished && break
  kill -0 "$gitlab_pid" 2>/dev/null || fail "gitlab-sim stopped"
  sleep 0.1
done
if ! finished; then
  "$bin/fleetctl" status
  fail "the jobs did not all end within ${timeout_s}s"
fi
# The summary table follows the state file on gitlab-sim's output.
for _ in $(seq 1 50); do grep -q 'jobs ended as expected' "$work/gitlab-sim.out" && break; sleep 0.1; done

echo
echo "== the fleet at the end (fleetctl status)"
"$bin/fleetctl" status
echo
echo "== GitLab's view (gitlab-sim): each job's state and the end of its trace"
sed -n '/^ID /,$p' "$work/gitlab-sim.out"
if grep -q 's3cr3t-demo-token-42' "$work/gitlab/"* -r 2>/dev/null; then
  fail "the masked variable's value reached GitLab"
fi
grep -q '"all_as_expected": true' "$work/gitlab-state.json" || fail "some jobs did not end as the pipeline expects"
echo
echo "demo: every job ended as expected"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo
  echo "The fleet stays up; try, in another shell:"
  echo "  export FLEETCTL_COORDINATOR=$FLEETCTL_COORDINATOR FLEETCTL_TOKEN=$FLEETCTL_TOKEN"
  echo "  $bin/fleetctl workers; $bin/fleetctl jobs; $bin/fleetctl job 1004; $bin/fleetctl overflow status"
  echo "  curl -X POST -H 'Content-Type: application/json' -d '{\"name\":\"more\",\"script\":[\"echo more\"]}' $gitlab_url/sim/jobs"
  echo "Ctrl-C stops it."
  trap 'exit 0' INT TERM
  while kill -0 "$gitlab_pid" 2>/dev/null; do sleep 1; done
fi
ok=1
