#!/usr/bin/env bash
# Build tsoverlay as a managed (v2) Docker plugin, offline.
#
#   bash plugin/build.sh                      # plugin/build/{config.json,rootfs/} + docker plugin create tsoverlay:latest
#   bash plugin/build.sh --name tsoverlay:0.1.0 -H unix:///run/other.sock
#   bash plugin/build.sh --out /tmp/tsplugin --no-create
#
# The plugin directory it writes (docker-plugin-protocol.md §7.1):
#
#   <out>/config.json   the repository's config.json (entrypoint /usr/bin/node /app/dist/cli.js serve)
#   <out>/rootfs/       usr/bin/node + the shared libraries ldd lists + the dynamic loader
#                       usr/sbin/xtables-nft-multi (iptables, ip6tables, ...-save) + libs + xtables modules
#                       app/{package.json,dist/,node_modules/}  (production dependencies only)
#                       etc/{passwd,group,nsswitch.conf,hosts,resolv.conf,protocols,services}
#                       run/docker/plugins (the socket), var/lib/tsoverlay (state mount), tmp
#
# Everything comes from this machine: the Node runtime that runs this script
# (or $NODE), the iptables of the host (the xtables multi-call binary of the
# backend `iptables -V` reports, nf_tables on Debian 12), dist/ (built with
# `npm run build` if missing, or always with --compile) and the production
# subset of the installed node_modules (`npm ls --omit=dev`). No network.
#
# A build whose inputs did not change is reused (stamp file <out>/.inputs);
# --force rebuilds. The rootfs is checked before it is used: node starts in a
# chroot of it, loads the netlink binding and prints `tsoverlay --help`, and
# iptables -V runs.
#
# Options:
#   --out DIR       plugin directory (default plugin/build)
#   --name NAME     plugin name for docker plugin create, [registry/]repo[:tag] (default tsoverlay:latest)
#   --no-create     only build the directory
#   -H, --host URL  engine for docker plugin create (default: $DOCKER_HOST or the docker CLI's default)
#   --compile       run `npm run build` first even if dist/ exists
#   --force         rebuild the rootfs even if the stamp matches
#   --iptables nft|legacy
#                   iptables backend in the plugin (default: the one `iptables -V` reports here);
#                   it must be the backend dockerd uses on the hosts that run the plugin
#   --quiet         only the summary lines
# Needs root (files owned by root in the rootfs; chroot for the checks).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

out=$here/build
name=tsoverlay:latest
create=1
docker_host=${DOCKER_HOST:-}
compile=0
force=0
quiet=0
xt_variant=

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -euo/d'; }
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --no-create) create=0; shift ;;
    -H | --host) docker_host=$2; shift 2 ;;
    --compile) compile=1; shift ;;
    --force) force=1; shift ;;
    --iptables) xt_variant=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done

say() { [ "$quiet" = 1 ] || echo "build.sh: $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the rootfs files must belong to root; the checks chroot into it)"
[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported (the netlink binding used is prebuilds/linux-x64)"
case $out in /*) ;; *) out=$PWD/$out ;; esac

t_start=$(date +%s.%N)

# One build (and create) at a time per output directory: the rootfs is replaced as a whole.
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock -w 600 9 || die "another build.sh holds $out.lock"

# ------------------------------------------------------------------- inputs
node_bin=$(readlink -f "${NODE:-$(command -v node)}") || die "node not found (set NODE=/path/to/node)"
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node >= 20 required, $node_bin is $("$node_bin" --version)"

# iptables backend: the plugin's rules must land in the tables dockerd uses,
# so by default the one this machine's `iptables` is (nf_tables or legacy).
if [ -z "$xt_variant" ]; then
  case $(iptables -V 2>/dev/null) in
    *nf_tables*) xt_variant=nft ;;
    *legacy*) xt_variant=legacy ;;
    *) die "cannot tell the iptables backend from 'iptables -V'; use --iptables nft|legacy" ;;
  esac
fi
case $xt_variant in nft | legacy) ;; *) die "--iptables must be nft or legacy" ;; esac
xt_bin=
for c in /usr/sbin/xtables-$xt_variant-multi /sbin/xtables-$xt_variant-multi; do
  if [ -x "$c" ]; then xt_bin=$(readlink -f "$c"); break; fi
done
[ -n "$xt_bin" ] || die "xtables-$xt_variant-multi not found: apt-get install iptables"
xt_mods=
for d in /usr/lib/x86_64-linux-gnu/xtables /lib/x86_64-linux-gnu/xtables /usr/lib/xtables; do
  if [ -d "$d" ]; then xt_mods=$(readlink -f "$d"); break; fi
done
[ -n "$xt_mods" ] || die "the xtables extension modules (libxt_*.so) were not found"

cd "$repo"
if [ "$compile" = 1 ] || [ ! -f dist/cli.js ]; then
  say "npm run build"
  npm run build >&2
fi
[ -f dist/cli.js ] || die "dist/cli.js missing after npm run build"
newer=$(find src -name '*.ts' ! -name '*.test.ts' -newer dist/cli.js -print -quit 2>/dev/null || true)
[ -z "$newer" ] || echo "build.sh: warning: $newer is newer than dist/cli.js; --compile rebuilds dist/ first" >&2
[ -f node_modules/netlink/prebuilds/linux-x64/node.napi.node ] || die "node_modules incomplete (netlink's prebuilt binding missing): run npm ci"

# Production packages: every path npm lists without dev dependencies, relative to the repo.
mapfile -t prod_pkgs < <(env -u NODE_OPTIONS npm ls --omit=dev --all --parseable 2>/dev/null | sed -e "s|^$repo/||" | grep '^node_modules/' | sort -u || true)
[ "${#prod_pkgs[@]}" -gt 0 ] || die "npm ls --omit=dev listed no production packages (run npm ci)"
for p in "${prod_pkgs[@]}"; do [ -f "$p/package.json" ] || die "$p (a production dependency) is not installed: run npm ci"; done

# What the rootfs is made of; equal stamps -> reuse.
inputs_stamp() {
  {
    echo "build.sh $(sha256sum "$here/build.sh" | cut -d' ' -f1)"
    echo "config.json $(sha256sum config.json | cut -d' ' -f1)"
    echo "package.json $(sha256sum package.json | cut -d' ' -f1)"
    echo "node $node_bin $(stat -c '%s %Y' "$node_bin")"
    echo "xtables $xt_variant $xt_bin $(stat -c '%s %Y' "$xt_bin")"
    (cd dist && find . -type f ! -name '*.map' -printf '%P\n' | sort | xargs -d '\n' sha256sum)
    for p in "${prod_pkgs[@]}"; do echo "$p/package.json"; done | xargs -d '\n' sha256sum
  } | sha256sum | cut -d' ' -f1
}
stamp=$(inputs_stamp)

rootfs=$out/rootfs
if [ "$force" = 0 ] && [ -f "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$stamp" ] && [ -x "$rootfs/usr/bin/node" ]; then
  say "rootfs up to date ($out), not rebuilt"
  built=0
else
  built=1
  stage=$(mktemp -d "${out%/}.stage.XXXXXX")
  chmod 755 "$stage"
  trap 'rm -rf "$stage"' EXIT
  r=$stage/rootfs
  say "building $r"

  # Merged /usr, as on Debian 12.
  mkdir -p "$r"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$r"/{etc,tmp,proc,sys,dev,run/docker/plugins,var/lib/tsoverlay,app}
  ln -s usr/bin "$r/bin"
  ln -s usr/sbin "$r/sbin"
  ln -s usr/lib "$r/lib"
  ln -s usr/lib64 "$r/lib64"
  ln -s ../run "$r/var/run"
  chmod 1777 "$r/tmp"

  # Copy an ELF file's shared libraries (ldd) and the loader, each under the
  # name ldd shows, in the real directory it lives in on this machine.
  copy_libs() {
    local f lib dir
    for f in "$@"; do
      while read -r lib; do
        [ -n "$lib" ] || continue
        dir=$(readlink -f "$(dirname "$lib")")
        [ -e "$r$dir/$(basename "$lib")" ] && continue
        mkdir -p "$r$dir"
        cp -L "$lib" "$r$dir/"
      done < <(ldd "$f" 2>/dev/null | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //')
    done
  }

  # Node runtime
  cp "$node_bin" "$r/usr/bin/node"
  copy_libs "$node_bin"

  # iptables / ip6tables: the multi-call binary picks its mode from argv[0]
  cp "$xt_bin" "$r/usr/sbin/"
  xt_name=$(basename "$xt_bin")
  for cmd in iptables ip6tables iptables-save ip6tables-save iptables-restore ip6tables-restore; do
    ln -s "$xt_name" "$r/usr/sbin/$cmd"
    ln -s "$xt_name" "$r/usr/sbin/$cmd-$xt_variant"
  done
  copy_libs "$xt_bin"
  mkdir -p "$r$xt_mods"
  cp -a "$xt_mods/." "$r$xt_mods/"
  copy_libs "$xt_mods"/*.so
  # glibc's NSS (names in /etc/hosts, DNS for a zk://hostname store) if this glibc still ships them as modules
  for m in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
      if [ -e "$d/$m" ]; then
        dd=$(readlink -f "$d")
        [ -e "$r$dd/$m" ] || cp -L "$d/$m" "$r$dd/"
        break
      fi
    done
  done

  # /etc: the engine bind-mounts hosts and resolv.conf over these placeholders (network type host)
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\n' >"$r/etc/group"
  printf 'hosts: files dns\nprotocols: files\nservices: files\n' >"$r/etc/nsswitch.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
  printf '# placeholder: the engine mounts the host resolv.conf here\n' >"$r/etc/resolv.conf"
  for f in protocols services ethertypes; do [ -f "/etc/$f" ] && cp "/etc/$f" "$r/etc/$f"; done

  # The application: dist (without source maps), package.json ("type": "module", version), production node_modules
  cp package.json "$r/app/"
  mkdir -p "$r/app/dist"
  (cd dist && find . -type f ! -name '*.map' -print0 | tar --null -T - -cf -) | tar -C "$r/app/dist" --no-same-owner -xf -
  for p in "${prod_pkgs[@]}"; do
    mkdir -p "$r/app/$p"
    # each package without its nested node_modules (nested production packages are listed themselves)
    tar -C "$p" --exclude=./node_modules -cf - . | tar -C "$r/app/$p" --no-same-owner -xf -
  done
  # netlink ships prebuilt bindings for several architectures; keep x64
  find "$r/app/node_modules/netlink/prebuilds" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
  chown -R 0:0 "$r"

  # Checks, inside the rootfs: node starts, the native binding loads, the CLI answers, iptables runs.
  inroot() { env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ chroot "$r" "$@"; }
  inroot /usr/bin/node -e "require('/app/node_modules/netlink'); process.stdout.write('netlink binding ok\n')" >/dev/null \
    || die "node cannot load the netlink binding inside the rootfs"
  inroot /usr/bin/node /app/dist/cli.js --help >/dev/null || die "/app/dist/cli.js --help failed inside the rootfs"
  inroot /usr/sbin/iptables -V >/dev/null || die "iptables -V failed inside the rootfs"
  inroot /usr/sbin/ip6tables -V >/dev/null || die "ip6tables -V failed inside the rootfs"

  cp config.json "$stage/config.json"
  echo "$stamp" >"$stage/.inputs"
  # replace the old build in one step
  rm -rf "$out"
  mv "$stage" "$out"
  trap - EXIT
fi

t_built=$(date +%s.%N)
size=$(du -sb "$rootfs" | cut -f1)
files=$(find "$rootfs" -type f | wc -l)
node_size=$(stat -c %s "$rootfs/usr/bin/node")
app_size=$(du -sb "$rootfs/app" | cut -f1)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
echo "build.sh: rootfs $rootfs: $(mb "$size") in $files files (node $(mb "$node_size"), app $(mb "$app_size")), iptables $xt_variant;" \
  "$( [ "$built" = 1 ] && echo built || echo reused) in $(awk -v a="$t_start" -v b="$t_built" 'BEGIN { printf "%.1f s", b - a }')"

if [ "$create" = 1 ]; then
  h=()
  [ -n "$docker_host" ] && h=(-H "$docker_host")
  say "docker ${h[*]} plugin create $name $out"
  docker "${h[@]}" plugin create "$name" "$out" >/dev/null
  t_created=$(date +%s.%N)
  echo "build.sh: plugin $name created (disabled) in $(awk -v a="$t_built" -v b="$t_created" 'BEGIN { printf "%.1f s", b - a }');" \
    "enable with: docker ${h[*]:+${h[*]} }plugin enable $name"
fi
