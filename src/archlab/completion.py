"""Shell completion scripts, written from the argparse parser itself, so they name exactly the
commands and options that exist: `archlab completion bash|zsh|fish`.

What completes: the commands; each command's options; an option's fixed choices after it
(`--quant <TAB>`); preset names (and files, for config .json) where a command takes a preset
name. Torch-free: the parser and the preset list need neither torch nor matplotlib.
"""

from __future__ import annotations

import argparse
import shlex

__all__ = ["SHELLS", "script"]

SHELLS = ("bash", "zsh", "fish")

# Positional arguments that take a preset name (or a config .json file), by command.
_PRESET_ARGS = {"compare": "names", "report": "names", "inspect": "name", "config": "name", "train": "model"}


def _commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """{command: (help, its parser)} in the parser's order."""
    for action in parser._actions:  # argparse keeps no public list of subcommands
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), p) for name, p in action.choices.items()}
    return {}


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if a.option_strings]


def _words(items) -> str:
    return " ".join(shlex.quote(str(i)) for i in items)


def _bash(parser: argparse.ArgumentParser, presets: list[str]) -> str:
    cases, values = [], []
    for name, (_, p) in _commands(parser).items():
        opts = [s for a in _options(p) for s in a.option_strings]
        words = "$presets" if name in _PRESET_ARGS else ""
        cases.append(f"        {name}) opts={shlex.quote(' '.join(opts))}; words=\"{words}\";;")
        for a in _options(p):
            if a.choices:
                when = "|".join(f"{name}:{s}" for s in a.option_strings)
                choices = shlex.quote(" ".join(map(str, a.choices)))
                values.append(f'        {when}) COMPREPLY=($(compgen -W {choices} -- "$cur")); return;;')
    commands = " ".join(_commands(parser))
    return f"""# bash completion for archlab (`archlab completion bash`); load it with
#   source <(archlab completion bash)     or save it under ~/.local/share/bash-completion/completions/archlab
_archlab() {{
    local -a w=("${{COMP_WORDS[@]}}")
    # `COMP_WORDS=(archlab compare lla) COMP_CWORD=2 _archlab` (a quick test by hand) passes the
    # words as one string "(archlab compare lla)": bash has no arrays in a command's prefix
    if [[ ${{#w[@]}} -eq 1 && ${{w[0]}} == \(*\) ]]; then read -ra w <<< "${{w[0]:1:${{#w[0]}}-2}}"; fi
    local cur=${{w[COMP_CWORD]}} prev=${{w[COMP_CWORD-1]}} cmd=${{w[1]}}
    local presets={shlex.quote(' '.join(presets))}
    local opts="" words=""
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{commands} --help --version" -- "$cur"))
        return
    fi
    case "$cmd:$prev" in
{chr(10).join(values) or "        :) ;;"}
    esac
    case "$cmd" in
{chr(10).join(cases)}
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur") $(compgen -f -- "$cur"))
    fi
    return 0  # compgen finding no file is not a failure
}}
complete -o filenames -F _archlab archlab
"""


def _zsh(parser: argparse.ArgumentParser, presets: list[str]) -> str:
    # zsh runs bash completion functions through bashcompinit, which ships with zsh
    return ("#compdef archlab\n# zsh completion for archlab (`archlab completion zsh`); load it with\n"
            "#   source <(archlab completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n"
            + _bash(parser, presets).split("\n", 2)[2])


def _fish(parser: argparse.ArgumentParser, presets: list[str]) -> str:
    def q(text: str) -> str:
        return shlex.quote(" ".join(text.split()))

    cmds = _commands(parser)
    out = ["# fish completion for archlab (`archlab completion fish`); load it with",
           "#   archlab completion fish | source", "complete -c archlab -f"]
    out += [f"complete -c archlab -n __fish_use_subcommand -a {shlex.quote(n)} -d {q(h)}" for n, (h, _) in cmds.items()]
    for name, (_, p) in cmds.items():
        cond = f"-n '__fish_seen_subcommand_from {name}'"
        if name in _PRESET_ARGS:
            out.append(f"complete -c archlab {cond} -F -a {shlex.quote(' '.join(presets))}")
        for a in _options(p):
            flags = " ".join(f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}" for s in a.option_strings)
            takes = "" if a.nargs == 0 else " -r" + (f" -a {shlex.quote(' '.join(map(str, a.choices)))}" if a.choices else "")
            out.append(f"complete -c archlab {cond} {flags}{takes} -d {q(a.help or '')}")
    return "\n".join(out) + "\n"


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    from .catalog import names

    if shell not in SHELLS:
        raise ValueError(f"completion: expected one of {', '.join(SHELLS)}, got {shell!r}")
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](parser, list(names()))
