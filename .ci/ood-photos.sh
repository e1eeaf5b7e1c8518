#!/usr/bin/env bash
# Out-of-domain test photos: scikit-image's sample photos (a cat, an astronaut, a coffee cup, a
# motorcycle, a rocket, a man with a camera), taken from Debian's python3-skimage package without
# installing it. They are not Flickr8k-like, which is the point. Written to .cache/ood-photos/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/ood-photos
[ -f "$out/chelsea.png" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq python3-skimage >/dev/null 2>&1) || { apt-get update -qq && (cd "$tmp" && apt-get download -qq python3-skimage); }
dpkg-deb -x "$tmp"/python3-skimage_*.deb "$tmp/x"
mkdir -p "$out"
for f in astronaut.png chelsea.png coffee.png camera.png rocket.jpg motorcycle_left.png; do
  cp "$tmp/x/usr/lib/python3/dist-packages/skimage/data/$f" "$out/"
done
echo "out-of-domain photos in $out"
