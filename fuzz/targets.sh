# The fuzz targets and how each runs, shared by fuzz/run.sh and fuzz/ci.sh (sourced, not run).
# A new target goes here, in fuzz/Cargo.toml, and gets seeds in fuzz/seeds/<target>/.

# shellcheck disable=SC2034 # used by the scripts that source this file
all_targets=(respond_udp respond_tcp tcp_framing config_main config_zone update journal http_admin config_records_file transfer transfer_in secondary state_files notify_reply discover_slice)

# The committed seeds a target starts from.
seeds_of() {
    case "$1" in
        respond_*) echo seeds/respond ;;
        *) echo "seeds/$1" ;;
    esac
}

# libFuzzer options of a target: its dictionary and the largest input worth trying.
options_of() {
    case "$1" in
        respond_*) echo "-dict=dns.dict -max_len=4096" ;;
        tcp_framing) echo "-max_len=140000" ;;
        config_records_file) echo "-dict=zone.dict -max_len=8192" ;;
        config_*) echo "-dict=config.dict -max_len=8192" ;;
        update) echo "-dict=dns.dict -max_len=4096" ;;
        journal) echo "-dict=journal.dict -max_len=8192" ;;
        http_admin) echo "-dict=http.dict -max_len=4096" ;;
        transfer | notify_reply) echo "-dict=dns.dict -max_len=4096" ;;
        # Several messages of an answer in one input.
        transfer_in) echo "-dict=dns.dict -max_len=16384" ;;
        state_files) echo "-dict=dns.dict -max_len=32768" ;;
        # Mostly a kept copy, a master file; the edge messages are short.
        secondary) echo "-dict=zone.dict -max_len=8192" ;;
        discover_slice) echo "-dict=kube.dict -max_len=8192" ;;
    esac
}
