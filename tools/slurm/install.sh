#!/usr/bin/env bash
# Installs Debian's Slurm daemons, client and munge when they are absent (apt-get only then).
# Exit code 3 when they cannot be installed here (no apt, or the install fails): callers skip.
set -u
missing=""
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
command -v apt-get >/dev/null || { echo "install.sh: no apt-get to install$missing" >&2; exit 3; }
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 \
       || { $SUDO apt-get update -q >/dev/null 2>&1 \
            && $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; }; }; then
  echo "install.sh: could not install$missing" >&2
  exit 3
fi
