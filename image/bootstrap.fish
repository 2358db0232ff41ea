# coderstack workspace entrypoint (seed 000's bootstrap.fish):
#   create the project dirs, copy the fish config once, install Linuxbrew once (first start),
#   start dockerd in the background (root only), exec code-server on 127.0.0.1:9069 without its own auth: only
#   processes in the pod reach it, and Coder's app proxy (through the agent, which connects to localhost) is the door.
# Environment (all optional):
#   CODERSTACK_LINUXBREW=0              skip the Linuxbrew install (tests, air-gapped clusters)
#   CODERSTACK_LINUXBREW_INSTALL_URL    the Homebrew install script (default: Homebrew's GitHub)
#   CODERSTACK_DOCKERD=0                do not start dockerd
#   CODE_SERVER_BIND_ADDR               default 127.0.0.1:9069 (loopback: code-server has no auth of its own here)
cd $HOME

# Whether this container runs in a user namespace of its own (hostUsers: false): its uid 0 is not the node's.
function in_user_namespace
    not string match -qr '^\s*0\s+0\s+4294967295\s*$' -- (head -n1 /proc/self/uid_map)
end

# Whether this container may make cgroups (dockerd's per-container cgroups): a scratch one in its own cgroup.
function dockerd_cgroups_writable
    set -l base /sys/fs/cgroup
    test -e $base/cgroup.controllers; or set base /sys/fs/cgroup/pids  # cgroup v2, else v1's pids hierarchy
    set -l probe $base/coderstack-probe-$fish_pid
    mkdir $probe 2>/dev/null; and rmdir $probe
end

mkdir -p projects .config/fish

if not test -e .config/fish/config.fish
    echo "copying fish config"
    cp -v /opt/coderstack/config.fish .config/fish/config.fish
end

set -q CODERSTACK_LINUXBREW_INSTALL_URL
or set CODERSTACK_LINUXBREW_INSTALL_URL https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh
if test "$CODERSTACK_LINUXBREW" = 0
    echo "linuxbrew: skipped (CODERSTACK_LINUXBREW=0)"
else if not test -e /home/linuxbrew/.linuxbrew/bin
    echo "installing linuxbrew in the background (log ~/.linuxbrew-install.log)"
    env NONINTERACTIVE=1 URL=$CODERSTACK_LINUXBREW_INSTALL_URL \
        bash -c 'curl -fsSL "$URL" -o /tmp/brew-install.sh && bash /tmp/brew-install.sh' >$HOME/.linuxbrew-install.log 2>&1 &
end

if test "$CODERSTACK_DOCKERD" = 0
    echo "dockerd: skipped (CODERSTACK_DOCKERD=0)"
else if test (id -u) -ne 0
    echo "dockerd: skipped (not root)"
else if command -q dockerd
    set -l dockerd_args
    if in_user_namespace
        # coderstack_docker_mode userns: overlay layers a dockerd made outside a user namespace (privileged mode, the
        # walkthrough's) carry trusted.* attributes this namespace cannot read: a data root of its own in the volume.
        set -a dockerd_args --data-root /var/lib/docker/userns
    end
    # In a user namespace the pod's cgroups belong to the node's root: on cgroup v1, or v2 without a delegated cgroup,
    # dockerd cannot make one per container. Its rootless mode then runs containers in the pod's own cgroup (no
    # per-container limits; the pod's limits bound them all).
    if not dockerd_cgroups_writable
        set -a dockerd_args --rootless
    end
    echo "starting dockerd $dockerd_args.. (log /var/log/dockerd.log)"
    dockerd $dockerd_args >/var/log/dockerd.log 2>&1 &
end

set -q CODE_SERVER_BIND_ADDR
or set CODE_SERVER_BIND_ADDR 127.0.0.1:9069
echo "starting code server on $CODE_SERVER_BIND_ADDR"
exec code-server --bind-addr $CODE_SERVER_BIND_ADDR --auth none --disable-telemetry --disable-update-check projects
