#!/usr/bin/env bash
# Make sure this machine's Docker engine runs (the README's first command):
# scripts/install-deps.sh installs docker.io without starting it. Idempotent.
#   - already answering on /var/run/docker.sock: nothing to do;
#   - systemd is the init: systemctl start docker;
#   - otherwise (a container, a machine without systemd): dockerd in the
#     background, its log in /var/log/dockerd.log.
# Needs root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: run as root" >&2
  exit 1
fi
answers() { docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if answers; then
  echo "start-dockerd: dockerd already runs"
  exit 0
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl start docker
else
  nohup dockerd >>/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if answers; then
    echo "start-dockerd: dockerd $(docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}') runs"
    exit 0
  fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; see journalctl -u docker or /var/log/dockerd.log" >&2
exit 1
