#!/usr/bin/env bash
# Prepares a Jetson as an xray-qc station: maximum power mode and clocks, the service user, data
# folders and the systemd unit. Run as root after build-onnxruntime.sh.
#
#   deploy/jetson/setup-station.sh /opt/xray-qc
set -euo pipefail

XRAY_QC_DIR=${1:-/opt/xray-qc}
POWER_MODE=${POWER_MODE:-0}   # nvpmodel mode; 0 = MAXN on Orin

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root" >&2
  exit 1
fi

if command -v nvpmodel >/dev/null 2>&1; then
  nvpmodel -m "$POWER_MODE"
  nvpmodel -q
fi
if command -v jetson_clocks >/dev/null 2>&1; then
  jetson_clocks
  # keep the clocks up after reboots
  cat > /etc/systemd/system/jetson-clocks.service <<'UNIT'
[Unit]
Description=Maximum Jetson clocks for xray-qc
After=nvpmodel.service

[Service]
Type=oneshot
ExecStart=/usr/bin/jetson_clocks

[Install]
WantedBy=multi-user.target
UNIT
  systemctl enable jetson-clocks.service
fi

id xray-qc >/dev/null 2>&1 || useradd --system --home /var/lib/xray-qc --shell /usr/sbin/nologin xray-qc
# GPU access on Jetson goes through the video group
usermod -a -G video xray-qc
install -d -o xray-qc -g xray-qc -m 0750 /var/lib/xray-qc /var/lib/xray-qc/models
install -d -o xray-qc -g xray-qc -m 0750 /srv/xray/captures
install -d -m 0755 /etc/xray-qc
if [ ! -e /etc/xray-qc/config.yaml ]; then
  install -m 0640 -g xray-qc "$XRAY_QC_DIR/config.yaml" /etc/xray-qc/config.yaml
  echo "edit /etc/xray-qc/config.yaml: capture.dir /srv/xray/captures, model.dir /var/lib/xray-qc/models,"
  echo "  database.path /var/lib/xray-qc/audit.db, model.providers [cuda, cpu], mqtt.url …"
fi
install -m 0644 "$XRAY_QC_DIR/deploy/systemd/xray-qc.service" /etc/systemd/system/xray-qc.service
systemctl daemon-reload
echo "then: sudo -u xray-qc node $XRAY_QC_DIR/bin/xray-qc.js run --check --config /etc/xray-qc/config.yaml"
echo "      systemctl enable --now xray-qc"
