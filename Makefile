# Slipway's two commands are `make demo` and `make test`; the rest are their parts.
#
# Everything a fresh machine lacks is installed on the way (Debian packages, the Go-built
# Kubernetes binaries into a cache outside the repository), or named in a one-line error.
# To run against an existing cluster instead of the dev cluster: EXISTING_CLUSTER=1 with KUBECONFIG.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DEV := dev
# NODE=real (the default) also starts a real node (containerd, kubelet, kube-proxy; needs root);
# NODE=none keeps only kwok's fake nodes.
NODE ?= real
export SLIPWAY_NODE := $(NODE)
STATE = $(shell . $(DEV)/lib.sh && echo $$SLIPWAY_STATE)
ifeq ($(EXISTING_CLUSTER),1)
  CLUSTER_KUBECONFIG := $(KUBECONFIG)
else
  CLUSTER_KUBECONFIG = $(STATE)/kubeconfig
endif
# kubectl and helm built by dev/ (the versions the cluster runs).
TOOLS_PATH = $(shell . $(DEV)/lib.sh && for s in control-plane helm; do printf '%s:' "$$(tool_dir $$s)"; done)
KUBECTL = PATH="$(TOOLS_PATH)$$PATH" KUBECONFIG="$(CLUSTER_KUBECONFIG)" kubectl
# mdbook, installed into the cache by dev/docs-tools.sh (make docs-tools).
MDBOOK = $(shell . $(DEV)/lib.sh && mdbook_dir)/bin/mdbook
# Every shell script of the repository, for shellcheck.
SHELL_SCRIPTS := $(wildcard dev/*.sh) dev/git/post-receive builder/static.sh .ci/run \
  $(shell find dev/catalog -type f \( -perm -u+x -o -name "*.sh" \)) $(shell find examples/quickstarts -name "*.sh") \
  examples/apps/s2i-busybox/build.sh $(wildcard examples/apps/s2i-busybox/s2i/bin/*)

.PHONY: conformance attacks help demo test e2e e2e-builds lint docs docs-check docs-tools unit integration prereqs cluster-up cluster-down crds crds-install images bench bench-push bench-registry builder-static clean-test-namespaces

help:
	@echo "make demo          the dev cluster, Slipway on it (Helm), git push -> build -> rolling update -> curl"
	@echo "make test          lint, unit tests, integration tests against the dev cluster, and the"
	@echo "                   end-to-end run on the real node (make e2e)"
	@echo "make bench         benchmarks (numbers in the README)"
	@echo "make bench-push    push_to_serving alone: 10 pushes of the sample app on the real node, stage by stage"
	@echo "make bench-registry registry_push_to_rollout alone: buildah pushes into the integrated registry, push -> tag -> ReplicaSet"
	@echo "make conformance   OpenShift's quickstart templates the catalog covers, unchanged, on the real node"
	@echo "make attacks       the adversarial suite alone: every tenant-isolation attack, against the dev cluster"
	@echo "make cluster-up    start the dev cluster with a real node (NODE=none: fake nodes only;"
	@echo "                   make cluster-down stops it)"
	@echo "make crds          regenerate charts/slipway/crds/ and the book's API reference from the API types"
	@echo "make docs          the book (docs/): the API reference regenerated, built into docs/book/, links checked"

prereqs:
	@command -v cargo >/dev/null || { echo "error: Rust is not installed: install it with rustup (https://rustup.rs), stable 1.89 or newer" >&2; exit 1; }
	@$(DEV)/prereqs.sh

cluster-up: prereqs
ifneq ($(EXISTING_CLUSTER),1)
	@$(DEV)/cluster-up.sh
else
	@echo "using the existing cluster of KUBECONFIG=$(KUBECONFIG)"
endif

cluster-down:
	@$(DEV)/cluster-down.sh

crds:
	cargo run -q -p slipway-crds --bin crdgen -- --out-dir charts/slipway/crds
	python3 docs/tools/crd_reference.py

crds-install: cluster-up
	@$(KUBECTL) apply --server-side --force-conflicts --field-manager slipway-dev -f charts/slipway/crds/ >/dev/null
	@$(KUBECTL) wait --for condition=Established --timeout 60s -f charts/slipway/crds/ >/dev/null
	@echo "Slipway's CRDs are installed"

demo: crds-install images
	@cargo build -q -p slip -p slipway-testkit --bins
	@$(DEV)/demo.sh "$(CLUSTER_KUBECONFIG)" "$(TOOLS_PATH)"

lint: docs-check
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings

# mdbook and shellcheck (and python3), installed on first use: see dev/docs-tools.sh.
docs-tools:
	@$(DEV)/docs-tools.sh >/dev/null

# The book: the API reference regenerated from the CRDs, the book built into docs/book/, and its
# links checked.
docs: docs-tools
	python3 docs/tools/crd_reference.py
	MDBOOK_LOG=warn $(MDBOOK) build docs
	python3 docs/tools/check_links.py

# What make lint checks besides the Rust code: every shell script (shellcheck), dev/versions.env
# against the go.mod files, the API reference against the CRDs, the book's build and its links
# (offline: links to other sites are not checked).
docs-check: docs-tools
	shellcheck -x $(SHELL_SCRIPTS)
	@. $(DEV)/lib.sh && . $(DEV)/versions.env && \
	  for pair in kubernetes:$$KUBERNETES_VERSION etcd:$$ETCD_VERSION kwok:$$KWOK_VERSION helm:$$HELM_VERSION gateway-api:$$GATEWAY_API_VERSION local-path:$$LOCAL_PATH_PROVISIONER_VERSION; do \
	    pinned=$$(module_version "$${pair%%:*}"); [ "$$pinned" = "$${pair#*:}" ] || \
	      { echo "error: dev/versions.env says $${pair%%:*} $${pair#*:}, dev/go/ pins $$pinned" >&2; exit 1; }; done
	python3 docs/tools/crd_reference.py --check
	MDBOOK_LOG=warn $(MDBOOK) build docs
	python3 docs/tools/check_links.py

unit:
	cargo test -q --workspace --lib --bins

# Test namespaces left behind by an interrupted run are removed first, and so is the aggregated
# API a test registered (with its server gone, namespaces could not finish deleting). Slipway
# installed by `make demo` is uninstalled: the tests run their own controllers, and the end-to-end
# test installs the chart itself.
clean-test-namespaces:
	@PATH="$(TOOLS_PATH)$$PATH" KUBECONFIG="$(CLUSTER_KUBECONFIG)" helm uninstall slipway -n slipway-system --ignore-not-found --wait >/dev/null 2>&1 || true
	@$(KUBECTL) delete apiservice v1alpha1.access.slipway.dev --ignore-not-found >/dev/null 2>&1 || true
	@$(KUBECTL) delete namespace -l slipway.dev/test=true --wait=false >/dev/null 2>&1 || true
	@for c in $$($(KUBECTL) get validatingwebhookconfigurations,mutatingwebhookconfigurations -o name 2>/dev/null | grep '/t-'); do \
	  $(KUBECTL) delete "$$c" >/dev/null 2>&1 || true; done
	@for r in $$($(KUBECTL) get clusterroles,clusterrolebindings -l slipway.dev/project -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}={.metadata.labels.slipway\.dev/project}{"\n"}{end}' 2>/dev/null | grep '=t-'); do \
	  $(KUBECTL) get namespace "$${r#*=}" >/dev/null 2>&1 || $(KUBECTL) delete "$${r%%=*}" >/dev/null 2>&1 || true; done
	@for p in $$($(KUBECTL) get projects.slipway.dev -l slipway.dev/test-run -o name 2>/dev/null); do \
	  $(KUBECTL) patch "$$p" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true; \
	  $(KUBECTL) delete "$$p" --wait=false >/dev/null 2>&1 || true; done

integration: cluster-up clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q --workspace --no-fail-fast --test '*'

# The product end to end on the real node: the chart installed with the images just built, a
# project, slip new-app, a hook-driven push, a rolling update under load, a corpus template,
# helm upgrade and uninstall (cli/tests/e2e.rs); and a Dockerfile build with the slipway-buildah
# image on the real node (operator/tests/docker_real_node.rs). Both need the images just built.
e2e: cluster-up images clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-operator --test docker_real_node --test build_fields_real_node --test corpus_builds_real_node --test private_sources_real_node -- --ignored
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-systests --test binary_real_node --test storage_real_node -- --ignored
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slip --test e2e -- --ignored --nocapture --skip bench_
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-systests --test catalog_images -- --ignored
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" SLIPWAY_CONFORMANCE=$(CONFORMANCE_IN_E2E) \
	  cargo test -q -p slip --test conformance -- --ignored --nocapture

# The quickstarts of the corpus that the catalog covers, instantiated unchanged on the real node
# (cli/tests/conformance.rs); prints the table the README shows (also in target/conformance.md).
# `make e2e` runs CONFORMANCE_IN_E2E of them.
CONFORMANCE_IN_E2E := django-psql-persistent
conformance: cluster-up images clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" SLIPWAY_CONFORMANCE=$${SLIPWAY_CONFORMANCE:-all} \
	  cargo test -q -p slip --test conformance -- --ignored --nocapture

# The adversarial suite alone (it is part of `make integration` too): every attack on tenant
# isolation Slipway has a test for, played against the dev cluster as a tenant would
# (docs/src/architecture/security.md lists each attack and what it asserts).
ATTACKS := cannot forged system_masters gigabytes another_namespace without_rights \
  without_admissions_proof undecodable revoked refused replay two_replicas flood restricted \
  webhook_is_down never_finishes adversarial pathological
attacks: cluster-up clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-operator --test image_boundaries --test template_instance --test project --test undecodable -- $(ATTACKS)
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-webhook --lib --test endpoint --test admission --test git_webhooks --test registry_token -- $(ATTACKS)

# The build rows of `make e2e` alone: every BuildConfig field built on the real node and observed
# in the image (operator/tests/build_fields_real_node.rs), corpus BuildConfigs with contextDir,
# postCommit and incremental (operator/tests/corpus_builds_real_node.rs), a private repository
# over http and ssh (operator/tests/private_sources_real_node.rs), and binary builds
# uploaded by slip (systests/tests/binary_real_node.rs).
e2e-builds: cluster-up images clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-operator --test build_fields_real_node --test corpus_builds_real_node --test private_sources_real_node -- --ignored
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slipway-systests --test binary_real_node -- --ignored

test: prereqs lint unit integration e2e
	@echo "make test: all passed"

# The images of the operator, the webhook and the builder (static binaries, no base image), and
# the catalog's stand-in builder and database images (dev/catalog/, from Debian packages; built
# only when their content changed), pushed to the dev registry.
images: cluster-up
	dev/images.sh
	dev/catalog-images.sh

# Benchmarks; the webhook's and the builder's run against the dev cluster and registry.
bench: cluster-up images
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo bench -q -p slipway-crds -p slip -p slipway-webhook -p slipway-operator -p slipway-systests
	cargo bench -q -p slipway-builder --bench s2i_vs_buildah
	$(MAKE) bench-push
	$(MAKE) bench-registry

# push_to_serving alone (cli/tests/e2e.rs): the chart installed, the sample app pushed
# SLIPWAY_BENCH_PUSHES times (10) on the real node, each stage's p50/p90 beside the floor.
bench-push: cluster-up images clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slip --test e2e bench_push_to_serving -- --ignored --exact --nocapture

# registry_push_to_rollout alone (cli/tests/e2e.rs): the chart installed, a project admin's
# buildah pushes into the integrated registry, push → tag moved → new ReplicaSet, p50/p90.
bench-registry: cluster-up images clean-test-namespaces
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" cargo test -q -p slip --test e2e bench_registry_push_to_rollout -- --ignored --exact --nocapture

# slipway-builder as one static executable (runs in containers of any image; used by its tests).
builder-static:
	@builder/static.sh release
