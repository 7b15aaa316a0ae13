#!/bin/sh
# Installs the Debian 12 packages m2pg needs to build, test, run and benchmark, skipping those
# already installed so that a second run costs nothing and needs no network.
set -eu
# libjs-dygraphs is embedded in the binary (the chart page); chromium runs the page's browser test.
PKGS="gcc make pkg-config libevent-dev libjansson-dev libpq-dev libcmocka-dev clang libclang-rt-14-dev
      postgresql-15 postgresql-client-15 python3 python3-pytest wrk hyperfine curl util-linux
      libjs-dygraphs chromium"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The server packages create a cluster of their own by default; m2pg starts its own instead.
if [ ! -e /etc/postgresql-common/createcluster.d/m2pg.conf ]; then
	$SUDO mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/m2pg.conf >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
