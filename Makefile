# Flotilla: the two commands a fresh machine needs are `make demo` and `make test`.
CARGO ?= cargo

.PHONY: all build test demo bench lint fmt

all: build

build:
	$(CARGO) build --workspace --all-targets

# Unit and end-to-end tests (kube-sim needs root for mount namespaces, and kubectl).
test:
	scripts/install-kubectl.sh
	# End-to-end tests start the real binaries (flotilla-helper runs inside kube-sim Pods).
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace -- --test-threads=4

# A whole fleet (gitlab-sim, two kube-sim clusters, coordinator, two workers, log-shipper)
# running deploy/demo/pipeline.yml.
demo:
	scripts/install-kubectl.sh
	$(CARGO) build --workspace --bins
	scripts/demo.sh

bench:
	$(CARGO) bench -p kube-sim -p flotilla-log-shipper

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
