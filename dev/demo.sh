#!/usr/bin/env bash
# The demo, for now: the dev cluster runs, Slipway's CRDs are installed (by make), and the example
# objects of examples/manifests/ are applied and listed with kubectl's printer columns.
# Later issues turn this into git push -> build -> rollout -> curl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
export KUBECONFIG=$1
repo=$(cd "$here/.." && pwd)
export PATH="$2$repo/target/debug:$PATH"
ns=slipway-demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The cluster"
kubectl version | sed 's/^/  /'
kubectl get nodes

step "Slipway's API (category slipway)"
kubectl api-resources --categories slipway

step "Applying examples/manifests/ into namespace $ns"
# A fresh namespace each time: what an earlier run left (pods, builds) does not carry over.
kubectl delete namespace "$ns" --ignore-not-found --wait --timeout=120s >/dev/null
kubectl create namespace "$ns" >/dev/null
for f in "$repo"/examples/manifests/*.yaml; do
  kubectl apply --server-side --force-conflicts --field-manager slipway-demo -n "$ns" -f "$f"
done

step "kubectl get bc,builds,is,dc,templates,templateinstances -n $ns"
kubectl get bc,builds,is,dc,templates,templateinstances -n "$ns"

step "kubectl get projectrequests,projects"
kubectl get projectrequests,projects

step "kubectl explain deploymentconfig.spec.strategy.rollingParams"
kubectl explain deploymentconfig.spec.strategy.rollingParams | sed -n '1,40p'

step "The API server rejects nonsense by itself"
if kubectl apply --server-side --dry-run=server -n "$ns" -f - 2>&1 <<'YAML'; then
apiVersion: slipway.dev/v1alpha1
kind: DeploymentConfig
metadata: {name: broken}
spec:
  replicas: 1
  selector: {app: web}
  template: {metadata: {labels: {app: other}}, spec: {containers: [{name: web, image: busybox}]}}
  triggers: [{type: ImageChange}]
YAML
  die "the invalid DeploymentConfig was accepted"
fi

step "slip process: an OpenShift template, translated (stderr says what became what)"
slip process -f "$repo/examples/templates/hello-openshift.yaml" -p NAME=greeter -p GIT_URI=https://git.example.com/hello.git -o name
slip process -f "$repo/examples/templates/hello-openshift.yaml" -p NAME=greeter -p GIT_URI=https://git.example.com/hello.git \
  | kubectl apply --server-side --dry-run=server -n "$ns" -f -

step "The operator: TemplateInstances, created as the user who asked"
slipway-operator --namespace "$ns" --metrics-listen 127.0.0.1:18081 >"$SLIPWAY_STATE/logs/demo-operator.log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true' EXIT
# The requester is stamped by hand here, as Slipway's admission webhook will stamp it.
kubectl apply --server-side --field-manager slipway-demo -n "$ns" -f - <<YAML
apiVersion: slipway.dev/v1alpha1
kind: TemplateInstance
metadata: {name: hello-stamped}
spec:
  templateRef: {name: hello}
  parameters: {NAME: hello-ti, REPLICAS: "2"}
  requester: {username: slipway-admin, groups: ["system:masters"]}
YAML
kubectl wait -n "$ns" --for=condition=Ready --timeout=60s templateinstance/hello-stamped
kubectl get -n "$ns" templateinstances
echo "(hello has no requester, so the operator refused to act for nobody; see its InstantiateFailure condition)"
kubectl get -n "$ns" deployment,secret -l slipway.dev/template-instance=hello-stamped
echo "The operator's metrics (curl 127.0.0.1:18081/metrics):"
curl -fsS 127.0.0.1:18081/metrics | grep -E '^slipway_(reconciliations|reconcile_failures)_total' || true

step "Done"
echo "The dev cluster keeps running: export KUBECONFIG=$KUBECONFIG (make cluster-down stops it)."
