# bash completion for corokey                                    -*- shell-script -*-

_corokey() {
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="generate fingerprint check compare install doctor push verify rotate"

    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    case $prev in
        --profile)
            COMPREPLY=($(compgen -W "corosync pacemaker fence-xvm" -- "$cur"))
            return ;;
        -s|--size)
            COMPREPLY=($(compgen -W "128 256 512 1024 2048 4096" -- "$cur"))
            return ;;
        --config|--key|--ssh-config|-F)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
    esac

    local options="--help"
    case ${COMP_WORDS[1]} in
        generate)    options="--size --profile --force --json --help" ;;
        fingerprint) options="--hex --corosync2 --visual --json --help" ;;
        check)       options="--profile --fips --json --help" ;;
        compare)     options="--corosync2 --json --help" ;;
        install)     options="--profile --force --json --help" ;;
        doctor)      options="--config --json --help" ;;
        push|verify) options="--nodes --config --profile --ssh-option --ssh-config --json --help" ;;
        rotate)      options="--nodes --config --key --dry-run --yes --restart --stop-command --start-command --form-timeout --stack-timeout --json --help" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _corokey corokey
