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
    echo "starting dockerd.. (log /var/log/dockerd.log)"
    dockerd >/var/log/dockerd.log 2>&1 &
end

set -q CODE_SERVER_BIND_ADDR
or set CODE_SERVER_BIND_ADDR 127.0.0.1:9069
echo "starting code server on $CODE_SERVER_BIND_ADDR"
exec code-server --bind-addr $CODE_SERVER_BIND_ADDR --auth none --disable-telemetry --disable-update-check projects
