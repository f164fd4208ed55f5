# The two front-door commands (see README.md):
#   make render   renders the PostgreSQL and Redis manifests to stdout
#   make test     runs every test: lints, unit, integration, golden, oracle and contract tests
# Both set themselves up: the wasm32-wasip2 target, the builds, the test tools.

CARGO ?= cargo
PLUGINS := -p mathison-plugin-postgres -p mathison-plugin-redis -p mathison-plugin-postgres-backup

.PHONY: render plugins host wasm-target install test lint test-rust test-oracles deps bench pgbouncer publish

# Recipes of the render path are silent (@): stdout carries only the manifests, so that
# `make render | kubectl apply -f -` works. Builds report on stderr.
render: plugins
	@./target/release/mathison-host render --allow-precompiled --plugin postgres --plugin redis

# The official plugins ship precompiled for this host (postgres.cwasm beside postgres.wasm), so
# that even a first render, with an empty cache, does not compile them.
plugins: wasm-target host
	@$(CARGO) build --quiet --profile plugin --target wasm32-wasip2 $(PLUGINS)
	@./target/release/mathison-host compile --plugin-path target/wasm32-wasip2/plugin postgres redis postgres-backup

host:
	@$(CARGO) build --quiet --release -p mathison-host

# Installs the binary, the official plugins (precompiled), man pages and shell completions:
#   make install [PREFIX=~/.local]
PREFIX ?= $(HOME)/.local
install: plugins
	@dist/install.sh "$(PREFIX)" target/release/mathison-host \
	    target/wasm32-wasip2/plugin/mathison_plugin_postgres.wasm \
	    target/wasm32-wasip2/plugin/mathison_plugin_redis.wasm \
	    target/wasm32-wasip2/plugin/mathison_plugin_postgres_backup.wasm

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

test: lint test-rust test-oracles

lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --quiet --release --workspace --all-targets -- -D warnings

# The integration tests run real OCI registries with independent clients (tests/integration/
# registry): docker-registry, htpasswd, skopeo and wkg come from `deps`.
test-rust: wasm-target deps
	$(CARGO) test --release --workspace

# The oracles judge what the real binary renders from the plugins test-rust built, and the
# Python pgbouncer plugin.
test-oracles: deps test-rust pgbouncer
	tests/oracles/run

# The pgbouncer plugin is Python: plugins/pgbouncer/build installs componentize-py into a venv
# under target/ and packs the plugin with CPython into a component.
PGBOUNCER_WASM := target/pgbouncer/pgbouncer.wasm

pgbouncer: $(PGBOUNCER_WASM)

$(PGBOUNCER_WASM): plugins/pgbouncer/build $(wildcard plugins/pgbouncer/*.py) wit/world.wit
	plugins/pgbouncer/build $@

# Publishes the official plugins as Wasm OCI artifacts, tagged with their versions:
#   make publish REGISTRY=oci://registry.example.com/mathison
publish: plugins
	@test -n "$(REGISTRY)" || { echo "usage: make publish REGISTRY=oci://HOST[:PORT]/PATH" >&2; exit 2; }
	@for plugin in postgres redis postgres-backup; do \
	    file=target/wasm32-wasip2/plugin/mathison_plugin_$$(echo $$plugin | tr - _).wasm; \
	    version=$$(./target/release/mathison-host inspect --format json $$file | sed -n 's/^  "version": "\(.*\)",$$/\1/p'); \
	    ./target/release/mathison-host push $$file "$(REGISTRY)/$$plugin:$$version" || exit 1; \
	done

# Debian packages, the oracles' venv, and wkg built into target/tools (see .ci/install-deps).
deps:
	bash .ci/install-deps

# Whole-process benchmarks (BENCHMARKS.md); the hostile fixture's `many` behaviour is the
# 1000-object plugin.
bench: wasm-target host
	$(CARGO) build --quiet --profile plugin --target wasm32-wasip2 $(PLUGINS) -p mathison-fixture-hostile
	bash tests/bench/render.sh
