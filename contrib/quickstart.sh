#!/bin/sh
# quickstart.sh [DIR]: install what is missing, build myshim, make a busybox
# bundle in DIR (default ./mycontainer) with `myshim spec`, and run it. On a
# terminal you get runc's default: an interactive sh (exit to leave); without
# one, the container prints where it runs and exits.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-mycontainer}
"$here/contrib/install-deps.sh"
(cd "$here" && cargo build --release -q)
myshim=$here/target/x86_64-unknown-linux-gnu/release/myshim
rm -rf "$dir"
"$here/contrib/make-bundle.sh" "$dir"
"$myshim" spec --bundle "$dir"
if [ ! -t 0 ]; then
  sed -i 's/"terminal": true/"terminal": false/; s/^\( *\)"sh"$/\1"sh", "-c", "echo hello from $(hostname), pid $$"/' "$dir/config.json"
fi
echo "myshim run (bundle $dir):"
cd "$dir" && exec "$myshim" run "quickstart-$$"
