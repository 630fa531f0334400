#!/usr/bin/env bash
# A Docker engine for `make images` / `make test-containers` on a machine that may have none.
#   scripts/docker_engine.sh start   install docker.io where `dockerd` is missing (Debian, as root) and
#                                    start dockerd where no engine answers; records what it started
#   scripts/docker_engine.sh stop    stop only the dockerd that `start` started
# dockerd flags: overlay2 (vfs where overlayfs is missing), no bridge/iptables: what works on a build VM;
# containers then use `--network none` or `--network host`.
set -euo pipefail
state=${KUBEALIGN_DOCKERD_STATE:-/tmp/kubealign-dockerd.pid}
case "${1:-}" in
start)
  if docker info >/dev/null 2>&1; then echo "docker engine: running"; exit 0; fi
  if ! command -v dockerd >/dev/null; then
    echo "docker engine: installing Debian's docker.io"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
  fi
  # overlay2 where the kernel has overlayfs (container start in about a second); vfs copies the whole
  # image for every container and every build step (minutes per task for a 1.7 GB image).
  driver=vfs; grep -qw overlay /proc/filesystems && driver=overlay2
  dockerd --storage-driver=$driver --iptables=false --bridge=none >/tmp/kubealign-dockerd.log 2>&1 &
  echo $! >"$state"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && { echo "docker engine: started (pid $(cat "$state"))"; exit 0; }; sleep 1; done
  echo "docker engine: dockerd did not answer in 60 s; see /tmp/kubealign-dockerd.log" >&2
  exit 1
  ;;
stop)
  [ -f "$state" ] || exit 0
  pid=$(cat "$state")
  rm -f "$state"
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || { echo "docker engine: stopped (pid $pid)"; exit 0; }; sleep 1; done
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
