#!/usr/bin/env bash
# Interim demo (until the coordinator and workers land): two kube-sim "clusters", a few
# job-like Pods on each, watched with the real kubectl until every one has ended as expected.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE_SIM=${KUBE_SIM:-target/debug/kube-sim}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for cluster in cluster-a cluster-b; do
  "$KUBE_SIM" --name "$cluster" --kubeconfig "$work/$cluster.kubeconfig" >"$work/$cluster.out" 2>"$work/$cluster.log" &
  pids+=($!)
done
for cluster in cluster-a cluster-b; do
  for _ in $(seq 1 100); do [ -s "$work/$cluster.kubeconfig" ] && break; sleep 0.1; done
  [ -s "$work/$cluster.kubeconfig" ] || { echo "kube-sim $cluster did not start:"; cat "$work/$cluster.log"; exit 1; }
  cat "$work/$cluster.out"
done

k() { local c=$1; shift; kubectl --kubeconfig "$work/$c.kubeconfig" --cache-dir "$work/cache-$c" "$@"; }

job() { # cluster name script
  k "$1" create -f - <<YAML >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $2, labels: {demo: "yes"}}
spec:
  restartPolicy: Never
  volumes: [{name: builds, emptyDir: {}}]
  initContainers:
  - {name: prepare, image: flotilla-helper, command: [sh, -c, "echo prepared > /builds/state"], volumeMounts: [{name: builds, mountPath: /builds}]}
  containers:
  - {name: build, image: alpine:3.19, command: [sh, -c, "$3"], volumeMounts: [{name: builds, mountPath: /builds}]}
YAML
  echo "created pod $2 on $1"
}

job cluster-a compile 'cat /builds/state; for i in 1 2 3; do echo compiling unit $i; sleep 0.5; done'
job cluster-a unit-tests 'echo running 42 tests; sleep 1; echo 42 passed'
job cluster-b lint 'echo linting; echo no warnings'
job cluster-b flaky 'echo this job fails on purpose; exit 3'

echo "waiting for the pods to finish (kubectl get pods -w on cluster-a):"
k cluster-a get pods -w & watcher=$!
k cluster-a wait --for=jsonpath='{.status.phase}'=Succeeded pod/compile pod/unit-tests --timeout=60s >/dev/null || true
k cluster-b wait --for=jsonpath='{.status.phase}'=Succeeded pod/lint --timeout=60s >/dev/null || true
k cluster-b wait --for=jsonpath='{.status.phase}'=Failed pod/flaky --timeout=60s >/dev/null || true
kill "$watcher" 2>/dev/null || true
status=0
for cluster in cluster-a cluster-b; do
  echo "== $cluster"
  k "$cluster" get pods -o wide
  for pod in $(k "$cluster" get pods -o name); do
    echo "-- ${pod#pod/} log:"; k "$cluster" logs "$pod" -c build | sed 's/^/   /'
  done
done
[ "$(k cluster-a get pods -o jsonpath='{.items[*].status.phase}')" = "Succeeded Succeeded" ] || status=1
[ "$(k cluster-b get pod flaky -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')" = "3" ] || status=1
[ "$(k cluster-b get pod lint -o jsonpath='{.status.phase}')" = "Succeeded" ] || status=1
if [ $status -eq 0 ]; then echo "demo: every pod ended as expected"; else echo "demo: unexpected pod states"; fi
exit $status
