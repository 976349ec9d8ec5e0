#!/usr/bin/env bash
# Installs what the project needs on Debian 12 with Python 3.11: system packages (apt) and a virtualenv (pip).
# Safe to run again: it installs only what is missing. Usage: source scripts/setup.sh [--servers]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# WeasyPrint needs Pango and HarfBuzz's subsetter (without it, fonts are subset by fontTools: slower,
# and the PDF bytes change from run to run); pdftotext/pdftoppm and qpdf read letters back in tests.
# Names and companies come in any script; the letterheads' font stacks name these (docs/letterheads.md):
# Noto Sans/Serif Arabic, Hebrew (fonts-noto-core), Noto CJK for Chinese, Japanese and Korean, DejaVu for
# what is left. Without them a letter shows empty boxes (`mutualplan render` warns).
pkgs=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-noto-core fonts-noto-cjk
      poppler-utils qpdf openssl)
if [ "${1:-}" = "--servers" ]; then
  # The real servers the integration tests talk to on loopback, and Chromium, which opens an archive bundle's
  # index.html headless in a test as a reviewer's browser would.
  pkgs+=(dovecot-imapd postfix postgresql chromium)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how it should deliver; local only is what the tests need.
  echo "postfix postfix/main_mailer_type select Local only" | $sudo debconf-set-selections
  echo "postfix postfix/mailname string localhost" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

py=${PYTHON:-python3}
if [ ! -x "$root/.venv/bin/python" ]; then
  "$py" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$root/.venv/bin/pip" install -q --upgrade pip
  "$root/.venv/bin/pip" install -q -e "$root[test]"
  touch "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
