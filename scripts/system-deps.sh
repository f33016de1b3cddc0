#!/usr/bin/env bash
# Make sure the machine has what GridMap needs beyond Python and npm packages:
# PostgreSQL with PostGIS (always); with --browser, Chromium for the browser tests and the map benchmark.
# Installs with apt-get when it may (root, or passwordless sudo); otherwise says what to install.
set -euo pipefail

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "system-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v pg_config >/dev/null && pg_config --bindir && return 0
  return 1
}

missing=()
bindir=$(pg_bindir || true)
if [ -z "$bindir" ]; then
  missing+=(postgresql postgresql-contrib)
  major=""
else
  major=$("$bindir/postgres" --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')
  sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
  [ -f "$sharedir/extension/postgis.control" ] || missing+=("postgresql-$major-postgis-3")
fi
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null; then
  missing+=(chromium chromium-driver)
fi
# a Chinese font, so that the pages' screenshots (test artefacts) show Chinese, not boxes
if [ "$want_browser" = 1 ] && ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  missing+=(fonts-wqy-zenhei)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
  echo "GridMap needs these Debian/Ubuntu packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  echo "(or point DATABASE_URL at an existing PostgreSQL with PostGIS)" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get ..." >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
if [ -z "$major" ]; then exec "$0" "$@"; fi  # PostgreSQL itself was missing: now add PostGIS for its version
