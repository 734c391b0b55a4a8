#!/usr/bin/env bash
# `make demo`: a whole fleet on this machine, on the pipeline in deploy/demo/pipeline.yml.
#   gitlab-sim (GitLab) <- coordinator -> worker-cluster-a -> kube-sim cluster-a
#                                      -> worker-cluster-b -> kube-sim cluster-b
#   workers -> log-shipper -> gitlab-sim
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

render() { # template output [cluster]
  sed -e "s|@WORK@|$work|g" -e "s|@HELPER@|$bin/flotilla-helper|g" -e "s|@CLUSTER@|${3:-}|g" "$1" >"$2"
}

echo "== starting the fleet (work directory $work)"
"$bin/gitlab-sim" --pipeline "$demo/pipeline.yml" --runner-token glrt-flotilla-demo \
  --long-poll 2s --exit-when-done --data-dir "$work/gitlab" \
  >"$work/gitlab-sim.out" 2>"$work/gitlab-sim.log" &
gitlab_pid=$!
pids+=("$gitlab_pid")
gitlab_url=$(wait_for_line "$work/gitlab-sim.out" '^gitlab-sim listening on ' gitlab-sim | awk '{print $4}')
echo "gitlab-sim       $gitlab_url (10 jobs queued for runner glrt-flotilla-demo)"

for cluster in cluster-a cluster-b; do
  "$bin/kube-sim" --name "$cluster" --kubeconfig "$work/$cluster.kubeconfig" --data-dir "$work/$cluster" \
    >"$work/$cluster.out" 2>"$work/kube-sim-$cluster.log" &
  pids+=($!)
done
for cluster in cluster-a cluster-b; do
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
for cluster in cluster-a cluster-b; do
  render "$demo/worker.toml" "$work/worker-$cluster.toml" "$cluster"
  "$bin/flotilla-worker" --config "$work/worker-$cluster.toml" >"$work/worker-$cluster.log" 2>&1 &
  pids+=($!)
  echo "worker           worker-$cluster (capacity 3) on $cluster"
done

export FLEETCTL_COORDINATOR=http://127.0.0.1:17601 FLEETCTL_TOKEN=demo-admin-token
echo
echo "== jobs (fleetctl watch)"
"$bin/fleetctl" watch 2>"$work/fleetctl.log" | sed -u 's/^/  /' &
pids+=($!)

# gitlab-sim exits once every job has ended: 0 if each ended as expected.
set +e
for _ in $(seq 1 "$((timeout_s * 10))"); do
  kill -0 "$gitlab_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$gitlab_pid" 2>/dev/null; then
  "$bin/fleetctl" status
  kill -TERM "$gitlab_pid"
  wait "$gitlab_pid"
  cat "$work/gitlab-sim.out"
  fail "the jobs did not all end within ${timeout_s}s"
fi
wait "$gitlab_pid"
result=$?
set -e

echo
echo "== the fleet at the end (fleetctl status)"
"$bin/fleetctl" status
echo
echo "== GitLab's view (gitlab-sim): each job's state and the end of its trace"
sed -n '/^ID /,$p' "$work/gitlab-sim.out"
if grep -q 's3cr3t-demo-token-42' "$work/gitlab/"* -r 2>/dev/null; then
  fail "the masked variable's value reached GitLab"
fi
[ "$result" = 0 ] || fail "some jobs did not end as the pipeline expects"
ok=1
echo
echo "demo: every job ended as expected"
