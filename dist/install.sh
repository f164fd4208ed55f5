#!/bin/sh
# Installs mathison-host and its plugins under a prefix, from what is already built (`make
# install` builds first, then calls this):
#   PREFIX/bin/mathison-host
#   PREFIX/share/mathison-host/plugins/NAME.wasm, with NAME.cwasm precompiled by that binary
#   PREFIX/share/man/man1/mathison-host.1, and a page per command
#   PREFIX/share/bash-completion/completions/mathison-host
#   PREFIX/share/zsh/site-functions/_mathison-host
#   PREFIX/share/fish/vendor_completions.d/mathison-host.fish
# A plugin file mathison_plugin_NAME.wasm (cargo's name) is installed as NAME.wasm.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 PREFIX BINARY [PLUGIN.wasm...]" >&2
    exit 2
fi
prefix=$1 binary=$2
shift 2

bin=$prefix/bin/mathison-host
plugins=$prefix/share/mathison-host/plugins
share=$prefix/share

# install(1) unlinks a file before writing it anew: a running mathison-host keeps its old one.
install -D -m 755 "$binary" "$bin"
for plugin in "$@"; do
    name=$(basename "$plugin" .wasm)
    name=${name#mathison_plugin_}
    install -D -m 644 "$plugin" "$plugins/$name.wasm"
    # Precompiled by the installed binary itself, so that the code fits exactly it; it loads
    # this code without --allow-precompiled because it sits beside it (README.md, Installing).
    "$bin" compile "$plugins/$name.wasm"
done

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
"$bin" man --out-dir "$staging/man"
install -d "$share/man/man1"
install -m 644 "$staging"/man/*.1 "$share/man/man1"
# The scripts call back `mathison-host` by name, as found on PATH when completing, like other
# installed completions: the one installed first on PATH here.
for shell in bash zsh fish; do
    PATH="$prefix/bin:$PATH" mathison-host completions "$shell" > "$staging/$shell"
done
install -D -m 644 "$staging/bash" "$share/bash-completion/completions/mathison-host"
install -D -m 644 "$staging/zsh" "$share/zsh/site-functions/_mathison-host"
install -D -m 644 "$staging/fish" "$share/fish/vendor_completions.d/mathison-host.fish"

echo "installed $bin, its plugins in $plugins, man pages and bash, zsh and fish completions"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on PATH; add it to run mathison-host by name" >&2 ;;
esac
