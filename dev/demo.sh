#!/usr/bin/env bash
# The demo: Slipway installed by its Helm chart on the dev cluster, a project requested by a user,
# an app made with `slip new-app` from a git repository served over http, then a commit pushed
# whose post-receive hook sends a GitHub-signed webhook: the build log live, the rolling update
# under a loop of requests (none may fail), the new answer, and the time of every stage.
#   dev/demo.sh KUBECONFIG TOOLS_PATH      (make demo runs it after cluster-up and images)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=dev/lib.sh
. "$here/lib.sh"
export KUBECONFIG=$1
repo=$(cd "$here/.." && pwd)
export PATH="$2$repo/target/debug:$PATH"
project=demo
user=alice
work=$SLIPWAY_STATE/demo
builder="$NODE_REGISTRY_ADDR/slipway/s2i-busybox:latest"
local_builder="$REGISTRY_ADDR/slipway/s2i-busybox:latest"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
for tool in jq curl git openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing: run make prereqs"
done
kubectl get node "$NODE_NAME" >/dev/null 2>&1 ||
  die "the dev cluster has no real node: make demo needs one (make cluster-up as root, NODE=real)"

step "Slipway, installed by its Helm chart (charts/slipway, values dev/slipway-values.yaml)"
helm upgrade --install slipway "$repo/charts/slipway" --namespace slipway-system --create-namespace \
  -f "$here/slipway-values.yaml" --set image.tag="$(cat "$SLIPWAY_STATE/images.tag")" --wait --timeout 240s |
  sed -n '1,6p'
"$here/registry-trust.sh"
kubectl get pods -n slipway-system -o wide

step "A project, requested by $user (a kubeconfig that acts as $user)"
rm -rf "$work" && mkdir -p "$work"
kubectl config view --raw --minify --flatten -o json |
  jq --arg u "$user" '.users[0].user.as = $u | .users[0].user["as-groups"] = ["system:authenticated"]' \
    >"$work/$user.kubeconfig"
as_user() { KUBECONFIG="$work/$user.kubeconfig" "$@"; }
# What an earlier demo left (its project, or the request of one that failed) is deleted first.
if kubectl get "namespace/$project" >/dev/null 2>&1 || kubectl get "projectrequest.slipway.dev/$project" >/dev/null 2>&1; then
  echo "(an earlier demo's project $project is deleted first)"
  kubectl delete "projectrequest.slipway.dev/$project" "namespace/$project" --ignore-not-found --wait=false >/dev/null
  kubectl wait --for=delete "namespace/$project" "projectrequest.slipway.dev/$project" --timeout=180s >/dev/null 2>&1 || true
fi
# The first admission calls after an install can fail while the webhook's endpoints spread.
printf 'apiVersion: slipway.dev/v1alpha1\nkind: ProjectRequest\nmetadata: {name: demo-admission-probe}\n' >"$work/probe.yaml"
wait_for "the admission webhook" 60 kubectl create --dry-run=server -o name -f "$work/probe.yaml"
as_user slip new-project "$project" --display-name "The demo"
as_user slip whoami

step "A git repository served over http (git http-backend), with the sample app"
mkdir -p "$work/git"
git init -q --bare -b main "$work/git/web.git"
git -C "$work/git/web.git" config http.receivepack true
slipway-git-http --root "$work/git" --listen "$NODE_IP:0" >"$work/git-http.log" 2>&1 &
git_server=$!
trap 'kill $git_server 2>/dev/null || true; [ -z "${load_pid:-}" ] || kill "$load_pid" 2>/dev/null || true' EXIT
wait_for "the git server" 10 grep -q 'serving' "$work/git-http.log"
url="http://$(sed -n 's|.*http://||p' "$work/git-http.log" | head -n 1)/web.git"
git clone -q "$url" "$work/web" 2>/dev/null
cp -R "$repo/examples/apps/httpd-app/." "$work/web/"
g() { git -C "$work/web" -c user.name=Alice -c user.email=alice@example.com "$@"; }
echo "hello from v1" >"$work/web/html/index.html"
g checkout -q -b main && g add -A && g commit -q -m "the sample app" && g push -q origin main
echo "$url: $(g log --oneline | head -n 1)"

step "slip new-app $builder~$url --name web --replicas 2 --as-deployment-config"
as_user slip -n "$project" new-app "$builder~$url" --name web --replicas 2 --as-deployment-config
wait_for "the first build" 60 as_user kubectl get -n "$project" build/web-1
as_user slip -n "$project" logs bc/web --follow
as_user slip -n "$project" rollout status dc/web
ip=$(kubectl get -n "$project" service web -o jsonpath='{.spec.clusterIP}')
wait_for "the app to answer" 60 curl -fsS "http://$ip:8080/index.html"
echo "curl http://$ip:8080/index.html -> $(curl -fsS "http://$ip:8080/index.html")"

step "A post-receive hook that sends GitHub's push webhook, signed with the BuildConfig's secret"
webhook_ip=$(kubectl get -n slipway-system service slipway-webhook -o jsonpath='{.spec.clusterIP}')
host=slipway-webhook.slipway-system.svc
kubectl get mutatingwebhookconfiguration slipway-admission -o jsonpath='{.webhooks[0].clientConfig.caBundle}' |
  base64 -d >"$work/webhook-ca.crt"
hooks=$work/git/web.git
cp "$here/git/post-receive" "$hooks/hooks/post-receive"
git -C "$hooks" config slipway.webhook.url "https://$host/webhooks/$project/web/github"
git -C "$hooks" config slipway.webhook.secret \
  "$(as_user kubectl get -n "$project" secret web-webhook -o jsonpath='{.data.WebHookSecretKey}' | base64 -d)"
git -C "$hooks" config slipway.webhook.cacert "$work/webhook-ca.crt"
git -C "$hooks" config slipway.webhook.resolve "$host:443:$webhook_ip"
git -C "$hooks" config slipway.webhook.cloneurl "$url"
echo "hooks/post-receive -> https://$host/webhooks/$project/web/github (at $webhook_ip)"

step "A loop of requests (every 50 ms) while a new commit is pushed and rolled out"
: >"$work/load.ok"; : >"$work/load.failed"
(
  while :; do
    if answer=$(curl -sS --max-time 2 -w ' %{http_code}' "http://$ip:8080/index.html" 2>&1) &&
      [ "${answer##* }" = 200 ]; then
      echo "${answer% *}" >>"$work/load.ok"
    else
      echo "$answer" >>"$work/load.failed"
    fi
    sleep 0.05
  done
) &
load_pid=$!
sleep 1
echo "hello from v2" >"$work/web/html/index.html"
g commit -q -am "a new answer"

# The stages, seen by polling every 50 ms in the background while the log streams.
marks=$work/marks
: >"$marks"
t0=$(now)
(
  seen=""
  mark() { case " $seen " in *" $1 "*) ;; *) seen="$seen $1"; echo "$1 $(now)" >>"$marks" ;; esac; }
  while :; do
    phase=$(kubectl get -n "$project" build/web-2 -o jsonpath='{.status.phase}' 2>/dev/null || true)
    # A stage seen implies the ones before it (a poll can miss a short one), so they are marked
    # then too, never after it.
    [ -z "$phase" ] || mark build-created
    case $phase in Running | Complete) mark build-running ;; esac
    [ "$phase" = Complete ] && mark image-pushed
    ready=$(kubectl get -n "$project" rs/web-2 -o jsonpath='{.status.readyReplicas}' 2>/dev/null || echo none)
    [ "$ready" = none ] || { mark build-created; mark build-running; mark image-pushed; mark rollout-started; }
    [ "$ready" = 2 ] && { mark new-pods-ready; break; }
    case $phase in Failed | Error | Cancelled) echo "failed $(now)" >>"$marks"; break ;; esac
    sleep 0.05
  done
) &
watcher=$!
g push origin main 2>&1 | sed 's/^/  /'
echo "pushed $(now)" >>"$marks"
wait_for "build web-2" 30 kubectl get -n "$project" build/web-2
as_user slip -n "$project" logs build/web-2 --follow
# The image trigger raises the DeploymentConfig to version 2 right after the build: the status
# follows that rollout, not the one before it.
kubectl wait -n "$project" --for=jsonpath='{.status.latestVersion}'=2 dc/web --timeout=60s >/dev/null
as_user slip -n "$project" rollout status dc/web
wait "$watcher"
wait_for "the new answer" 60 sh -c "curl -fsS http://$ip:8080/index.html | grep -q v2"
served=$(now)
kubectl wait -n "$project" --for=jsonpath='{.status.replicas}'=0 rs/web-1 --timeout=120s >/dev/null
sleep 2
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
load_pid=

step "What happened"
echo "curl http://$ip:8080/index.html -> $(curl -fsS "http://$ip:8080/index.html")"
ok=$(wc -l <"$work/load.ok") failed=$(wc -l <"$work/load.failed")
echo "requests during the rollout: $((ok + failed)), failed: $failed"
[ "$failed" = 0 ] || { sed 's/^/  /' "$work/load.failed" | head; die "requests failed during the rolling update"; }
grep -q failed "$marks" && die "build web-2 failed"
echo "push to serving (seconds from the push, in the order they happened):"
last=$t0
# The hook delivers while the push runs, so the build can exist before the push returns: the
# stages are listed by when each was seen.
while read -r stage t; do
  awk -v s="$stage" -v t="$t" -v t0="$t0" -v l="$last" 'BEGIN { printf "  %-18s %6.2f s  (+%.2f s)\n", s, t - t0, t - l }'
  last=$t
done < <(grep -E '^(pushed|build-created|build-running|image-pushed|rollout-started|new-pods-ready) ' "$marks" | sort -k2 -n)
awk -v t="$served" -v t0="$t0" -v l="$last" 'BEGIN { printf "  %-18s %6.2f s  (+%.2f s)\n", "new answer served", t - t0, t - l }'

# The build's share, beside buildah bud of the same app on this machine: the Dockerfile OpenShift 4
# runs for a Source build (FROM builder, COPY the source, RUN assemble, CMD run), the builder
# already in buildah's storage (as it is on the node), pushed to the same registry.
created=$(sed -n 's/^build-created //p' "$marks" | head -n 1)
pushed_at=$(sed -n 's/^image-pushed //p' "$marks" | head -n 1)
# The builder's own stages in the pod (pull, assemble, commit, push, ...), from the Build's status.
build=$(kubectl get -n "$project" build/web-2 -o json)
stages=$(jq -r '[.status.stages[]? | "\(.name) \(.durationMilliseconds / 1000)s"] | join(", ")' <<<"$build")
in_pod=$(jq '[.status.stages[]?.durationMilliseconds] | add // 0 | . / 1000' <<<"$build")
bud=$work/bud
mkdir -p "$bud/context"
cp -R "$work/web/." "$bud/context/" && rm -rf "$bud/context/.git"
printf 'FROM %s\nUSER 0\nCOPY . /tmp/src\nRUN chown -R 1001:0 /tmp/src\nUSER 1001\nRUN /usr/libexec/s2i/assemble\nCMD ["/usr/libexec/s2i/run"]\n' \
  "$local_builder" >"$bud/Containerfile"
b() { BUILDAH_ISOLATION=chroot buildah --root "$bud/root" --runroot "$bud/run" --storage-driver vfs "$@"; }
b pull -q --tls-verify=false "$local_builder" >/dev/null
bud_start=$(now)
b bud -q --layers=false --no-cache -f "$bud/Containerfile" -t "$REGISTRY_ADDR/$project/web-bud:latest" "$bud/context" >/dev/null
b push -q --tls-verify=false "$REGISTRY_ADDR/$project/web-bud:latest"
bud_end=$(now)
b rmi -a -f >/dev/null 2>&1 || true
rm -rf "$bud"
awk -v c="$created" -v p="$pushed_at" -v s="$bud_start" -v e="$bud_end" -v b="$in_pod" -v st="$stages" 'BEGIN {
  if (c != "" && p != "") printf "Build created -> image pushed: %.2f s (the pod scheduled and started, the source fetched)\n", p - c
  printf "  of which the S2I build + push in the pod: %.2f s (%s)\n", b, st
  printf "buildah bud of the same app + push, on this machine: %.2f s\n", e - s }'
as_user kubectl get -n "$project" bc,builds,is,dc,rs,pods,svc -o wide 2>/dev/null | cut -c1-150

step "Done"
echo "Slipway and the app keep running: export KUBECONFIG=$KUBECONFIG"
echo "  the app: curl http://$ip:8080/index.html; as $user: KUBECONFIG=$work/$user.kubeconfig slip -n $project ..."
echo "  make cluster-down stops the cluster; helm uninstall slipway -n slipway-system removes Slipway."
