#!/usr/bin/env bash
# Builds (once) the Debian rootfs the systemd tests boot with systemd-nspawn: bookworm minbase
# with systemd as PID 1, D-Bus and mosquitto (the guest's own broker: the guest has no network
# but loopback), the service user and the unit's folders. Kept between runs; ~45 s to build.
#
#   test/systemd/rootfs.sh DIR [MIRROR]
set -euo pipefail
dir=${1:?usage: rootfs.sh DIR [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
stamp=$dir/.xray-qc-rootfs-1
[ -e "$stamp" ] && exit 0
rm -rf "$dir.tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,mosquitto bookworm "$dir.tmp" "$mirror" >&2
chroot "$dir.tmp" useradd --system --no-create-home --home-dir /var/lib/xray-qc --shell /usr/sbin/nologin xray-qc
mkdir -p "$dir.tmp/opt/xray-qc" "$dir.tmp/etc/xray-qc" "$dir.tmp/var/lib/xray-qc" "$dir.tmp/srv/xray/captures"
touch "$dir.tmp/.xray-qc-rootfs-1"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
