#!/usr/bin/env bash
# Install what the browser tests (tests/test_web.py) drive: Debian's chromium at /usr/bin/chromium.
# Playwright launches it by path, so no browser is downloaded. Quick when it is already there.
# Where it cannot be installed (not root, no apt-get), say what to install and carry on: the
# rest of the suite still runs, and the browser tests fail with the same hint.
set -uo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests (apt-get, about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; then
        echo "browser ready: $("$CHROMIUM" --version 2>/dev/null)"
        exit 0
    fi
fi
echo "WARNING: $CHROMIUM is missing and could not be installed here: install Debian's chromium" \
     "('sudo apt-get install chromium') for the browser tests in tests/test_web.py; they will fail until then." >&2
exit 0
