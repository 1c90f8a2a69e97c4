#!/usr/bin/env bash
# Installs the system packages the test suite talks to (real Mosquitto, VictoriaMetrics, Chromium, fonts,
# systemd-analyze, espeak-ng, alsa-utils), only those that are missing. Debian; needs root (or sudo).
set -euo pipefail
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
command -v chromium >/dev/null || need+=(chromium)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v espeak-ng >/dev/null || need+=(espeak-ng)  # the voice call's default clip pack and fallback
command -v aplay >/dev/null || need+=(alsa-utils)  # the speaker output (tests play to ALSA's null device)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  # The tests start their own VictoriaMetrics and Alertmanager on free ports: the packages' system services
  # (enabled by the install) are not wanted on this machine. Only the ones installed here are touched.
  for svc in victoria-metrics prometheus-alertmanager; do
    if [[ " ${need[*]} " == *" $svc "* ]]; then
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi
