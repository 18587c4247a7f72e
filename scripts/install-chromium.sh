#!/bin/sh
# Install Debian's Chromium for the browser tests (tests/browser/) when it is missing.
# Playwright drives /usr/bin/chromium: its own browser download does not work on
# closed networks, so the distribution's package is the one supported browser.
# Idempotent: exits 0 at once when Chromium is already there.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core

test -x /usr/bin/chromium
/usr/bin/chromium --version
