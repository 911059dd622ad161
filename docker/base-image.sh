#!/usr/bin/env bash
# Make the images' base locally when no registry can be pulled from: a minimal Debian bookworm
# (python3 is 3.11 there) made by debootstrap from Debian's own packages, imported into Docker.
# Usage: docker/base-image.sh IMAGE [MIRROR]   (run as root; needs debootstrap and a Docker engine)
# The Dockerfiles take it as `--build-arg BASE_IMAGE=IMAGE`; `make base-image` runs this.
set -euo pipefail
image=${1:?usage: $0 IMAGE [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}
# python3-venv: the builder stages make /opt/kbt with it; libgomp1: OpenMP for xgboost/sklearn/torch.
packages=python3,python3-venv,libgomp1,ca-certificates

root=$(mktemp -d /var/tmp/kbt-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; echo "base-image: debootstrap failed (log: $root.log)" >&2; exit 1; }
rm -f "$root.log"
# What an image never needs: package lists and caches, docs, man pages, translations, logs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
# apt inside the image still works after `apt-get update`; keep it from storing what we removed.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-kbt-minimal" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
tar --numeric-owner --xattrs -C "$root" -c . | "$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase bookworm ($packages)" - "$image" >/dev/null
echo "base-image: $image ($("$docker" image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}'))"
