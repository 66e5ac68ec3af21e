# Sourced by scripts/install-system-deps.sh and scripts/install-bench-deps.sh: the Debian packages a script
# needs that are missing, and installing them. Both functions work on the caller's array `missing`.

# Appends to `missing` each named package dpkg does not list as installed.
apt_add_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
}

# Installs the packages in `missing` (nothing to do when it is empty), as root or through sudo; exits 1 when
# neither is available. $1 names the calling script in its messages.
apt_install_missing() {
  local who=$1
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "$who: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "$who: installed ${missing[*]}"
}
