# Sourced by scripts/image.sh and scripts/cluster/common.sh: install Debian packages that are
# missing, the same careful way for both (they run as root on a fresh machine in CI).
# need_debian PKG…
need_debian() {
  local missing=() pkg
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  printf '[debian] installing %s\n' "${missing[*]}" >&2
  # A package's maintainer scripts must not start its daemon in the machine's namespaces
  # (containerd would, on a host with an init system): policy-rc.d says no while we install.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e "$policy" ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1; fi
  local apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  apt-get "${apt_opts[@]}" update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
  local rc=$?
  ((made_policy == 1)) && rm -f "$policy"
  return $rc
}
