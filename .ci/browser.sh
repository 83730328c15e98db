#!/usr/bin/env bash
# Debian's chromium + chromium-driver for the support desk's browser tests (tests/test_desk.py).
# Present: nothing to do. Missing and root: installed with apt-get. Missing otherwise: a note;
# the browser tests then skip (outside CI) and say why.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "browser.sh: chromium/chromium-driver missing; the desk's browser tests will skip." >&2
  echo "  install them with: sudo apt-get install -y chromium chromium-driver" >&2
  exit 0
fi
echo "browser.sh: installing chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq </dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver </dev/null >/dev/null
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] || {
  echo "browser.sh: chromium or chromedriver still missing after apt-get install" >&2
  exit 1
}
