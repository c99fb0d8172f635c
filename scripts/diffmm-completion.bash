# diffmm-completion.bash: bash completion for diffmm: stage names (and run,
# sweep, help) after `diffmm`, a stage's options (read from its own -h, so
# never out of date) after the stage, file names otherwise.  Installed as
# share/bash-completion/completions/diffmm.
_diffmm() {
    local cur=${COMP_WORDS[COMP_CWORD]} stage
    if [ "$COMP_CWORD" -eq 1 ]; then
        mapfile -t COMPREPLY < <(compgen -W "$(diffmm --list-stages 2>/dev/null) run sweep help --version" -- "$cur")
        return
    fi
    stage=${COMP_WORDS[1]}
    case $stage in
        help) mapfile -t COMPREPLY < <(compgen -W "$(diffmm --list-stages 2>/dev/null)" -- "$cur"); return ;;
        run|sweep)
            mapfile -t COMPREPLY < <(compgen -W "DATA= DATASET= FORMAT= EPOCHS= SEED= SEEDS= VARIANT= VARIANTS= RUNS= SHARDS= SUBMIT= PRECISION=" -- "$cur")
            compopt -o nospace 2>/dev/null
            return ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(diffmm "$stage" -h 2>/dev/null | grep -o -- '--[a-z0-9-]*' | sort -u)" -- "$cur")
        return
    fi
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}
complete -F _diffmm diffmm
