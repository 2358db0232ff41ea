# quiet fish
set fish_greeting
set -gx HOMEBREW_NO_ENV_HINTS 1
set -gx HOMEBREW_NO_INSTALL_CLEANUP 1

# brew fish
fish_add_path /home/linuxbrew/.linuxbrew/bin

# simple fish
function fish_prompt
    printf '\n%s[%s]%s > ' (set_color cyan) (prompt_pwd) (set_color normal)
end
