#!/bin/sh
# Install Debian's nginx for the deployment test (tests/deploy/) when it is missing.
# Only the binary is used: scripts/deploy-local.sh runs it with its own configuration,
# pid and logs; the package's own service is stopped and not enabled.
# Idempotent: exits 0 at once when nginx is already there.
set -eu

if [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Debian starts the packaged service on port 80 when it can: keep it from starting (unless
# the machine already says what may start, as container images do).
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
fi
status=0
{ $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends nginx; } \
    || status=$?
[ -z "$policy" ] || $SUDO rm -f "$policy"
[ "$status" = 0 ] || exit "$status"

/usr/sbin/nginx -v
