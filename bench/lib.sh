# Shared by the bench scripts (`. bench/lib.sh`).

# make_media PATH [SECONDS] [VIDEO_KBPS]: a 1280x720 25 fps H.264 + AAC FLV with a keyframe
# every 2 s (testsrc2 and a sine, from ffmpeg's lavfi).
make_media() {
    local out=$1 secs=${2:-30} kbps=${3:-1900}
    ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
        -f lavfi -i sine=frequency=440:sample_rate=44100 -t "$secs" \
        -c:v libx264 -preset veryfast -b:v "${kbps}k" -maxrate "${kbps}k" -bufsize "$((kbps * 2))k" \
        -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 96k -f flv "$out"
}

# bench_root DIR PLUGIN...: a server root loading PLUGINs, with user fier (password 123).
bench_root() {
    local root=$1
    shift
    mkdir -p "$root/mods" "$root/users"
    printf '%s\n' "$@" > "$root/mods/main.mods"
    printf '[DEFAULT]\npassword=123\n' > "$root/users/fier.ini"
}
