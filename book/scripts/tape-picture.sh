#!/bin/sh
# Regenerates the picture of chapter 2: book/src/img/tape.dot from the example
# `tape_picture` of the book crate, then book/src/img/tape.svg from it, with Graphviz's
# `dot` where installed, else the WebAssembly build of Graphviz from npm (needs node).
# Run from anywhere: `sh book/scripts/tape-picture.sh`.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
img=book/src/img
cargo run --quiet --release -p mclrec-book --example tape_picture -- "$img/tape.dot"
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$img/tape.dot" -o "$img/tape.svg"
else
    npx -y @hpcc-js/wasm-graphviz-cli -T svg "$img/tape.dot" > "$img/tape.svg"
fi
echo "wrote $img/tape.svg"
