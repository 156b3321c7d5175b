"""The command line: every command has its own --help."""

import subprocess
import sys

import pytest

from tinythinker.cli import app


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tinythinker.cli", *args], capture_output=True, text=True)


def command_names():
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    return names


def test_top_level_help_lists_commands():
    result = cli("--help")
    assert result.returncode == 0
    for name in command_names():
        assert name.split()[0] in result.stdout


@pytest.mark.parametrize("command", command_names())
def test_each_command_has_help(command):
    result = cli(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and "--help" in result.stdout
