# Step: Debian source packages, downloaded with apt-get source into the root,
# checked against wasm/sources.lock, unpacked (Debian's patches applied).

SOURCES_LOCK=$WASM_DIR/sources.lock
# Packages and versions; file checksums live in sources.lock.
# "@orig" means only the upstream tarball is used (the mirror lacks the rest
# of that package, and the build needs none of Debian's changes to it).
SOURCE_PACKAGES="qemu=1:10.2.2+ds-1 glib2.0=2.88.0-1 pixman=0.46.4-1
 zlib=1:1.3.dfsg+really1.3.2-3 libffi=3.5.2-4@orig pcre2=10.46-1~deb13u2
 device-tree-compiler=1.7.2-2@orig"

# Directory name dpkg-source gives a package: NAME-UPSTREAMVERSION.
source_dir() {
    local pkg=${1%%=*} ver=${1#*=}
    ver=${ver#*:}; ver=${ver%-*}
    echo "$SRC/$pkg-$ver"
}

# Download the files of one source package, as listed by apt's (signed) Sources
# index, and check each against that index and against wasm/sources.lock.
# The mirror here is a partial copy: a listed file can 404. A missing .dsc
# alone is tolerated (the package is then unpacked by hand, as dpkg-source
# would); any other missing file stops the build.
fetch_source() {
    local spec=${1%@orig} pkg=${1%%=*} dl=$SRC/dl/${1%%=*} orig_only=
    local uris url name size sum want err
    [ "$spec" != "$1" ] && orig_only=1
    mkdir -p "$dl"
    uris=$(in_root apt-get $APT_OPTS source --print-uris "$spec" 2>/dev/null | grep "^'") ||
        die "$spec is not listed by apt (apt-cache showsrc $pkg lists the versions)"
    while read -r url name size sum; do
        url=${url//\'/}; sum=${sum#SHA256:}
        case $name in *.orig.tar.*) ;; *) [ -n "$orig_only" ] && continue ;; esac
        if [ ! -f "$dl/$name" ]; then
            if ! err=$(curl -fsS -o "$dl/$name.part" "$url" 2>&1); then
                rm -f "$dl/$name.part"
                case $name in
                    *.dsc) log "$pkg: $name is missing on the mirror; unpacking without it"; continue ;;
                    *) die "source $spec is listed but $name does not download ($err); try the next listed version (apt-cache showsrc $pkg)" ;;
                esac
            fi
            mv "$dl/$name.part" "$dl/$name"
        fi
        [ "$(sha256sum "$dl/$name" | cut -d' ' -f1)" = "$sum" ] ||
            die "$pkg: $name does not match the sha256 in apt's Sources index"
        want=$(awk -v p="$pkg" -v f="$name" '$1=="file" && $2==p && $3==f {print $4}' "$SOURCES_LOCK")
        if [ -z "$want" ]; then
            [ "${CPR_LOCK_UPDATE:-}" = 1 ] ||
                die "$pkg: $name has no checksum in wasm/sources.lock (CPR_LOCK_UPDATE=1 records it)"
            echo "file $pkg $name $sum" >> "$SOURCES_LOCK"
        elif [ "$want" != "$sum" ]; then
            die "$pkg: checksum mismatch for $name: got $sum, wasm/sources.lock says $want"
        fi
    done <<< "$uris"
    unpack_source "$spec"
}

unpack_source() {
    local spec=$1 pkg=${1%%=*} dir
    dir=$(source_dir "$spec")
    [ -d "$dir" ] && return 0
    # File names of this version only: the download dir keeps older ones.
    local ver=${spec#*=}; ver=${ver#*:}
    local dl=/build/src/dl/$pkg rel=${dir#"$ROOT"} orig=${pkg}_${ver%-*}.orig deb=${pkg}_$ver
    if [ -f "$SRC/dl/$pkg/$deb.dsc" ]; then
        in_root_sh "cd $dl && dpkg-source --no-check -x $deb.dsc $rel >/dev/null"
    else
        in_root_sh "mkdir -p $rel && tar -xf \$(ls $dl/$orig.tar.* | grep -v '\\.asc\$') -C $rel --strip-components=1
            if [ -f $dl/$deb.diff.gz ]; then zcat $dl/$deb.diff.gz | patch -s -p1 -d $rel; fi
            if ls $dl/$deb.debian.tar.* >/dev/null 2>&1; then tar -xf $dl/$deb.debian.tar.* -C $rel; fi
            if [ -f $rel/debian/patches/series ]; then
                while read -r p _; do case \$p in ''|'#'*) continue;; esac
                    patch -s -p1 -d $rel < $rel/debian/patches/\$p; done < $rel/debian/patches/series
            fi"
    fi
}

step_sources() {
    mkdir -p "$SRC"
    local s
    for s in $SOURCE_PACKAGES; do fetch_source "$s"; done
}
