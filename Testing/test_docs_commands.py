"""The front page and the documentation pages: every shell command in them parses as written, their links lead
somewhere, the README stays a front page and the command-line page lists every seed flag.

Shell blocks (```bash / ```sh / ```shell) are split into commands (continuation lines joined, comments dropped):
``spectrum-attack ...`` lines (also behind ``torchrun ... --no-python`` or inside ``bash -c '...'``) go through
the real argparse parser, ``SpectrumAttackCLI.py`` lines through the CLI module's parser, ``make`` targets must
exist in the Makefile and ``python <script>`` files in the repository.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from SpectrumAttackLib.cli.args import SEED_FLAGS
from SpectrumAttackLib.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: pages written under other issues; linked from the README and checked once they are merged in.
PAGES_OF_OTHER_ISSUES = {"safety.md", "hardening.md", "corruptions.md", "frequency-analysis.md", "remote.md",
                         "robust-evaluation.md"}
_BLOCK = re.compile(r"^```(bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_commands(text: str) -> list[list[str]]:
    """The commands of every shell block of ``text`` as word lists."""
    commands = []
    for block in _BLOCK.finditer(text):
        joined = re.sub(r"\\\n\s*", " ", block.group(2))
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def spectrum_attack_words(words: list[str]) -> list[str] | None:
    """The arguments after ``spectrum-attack`` (or ``python -m SpectrumAttackLib.cli.main``) in ``words``."""
    if words[:2] == ["bash", "-c"]:
        return spectrum_attack_words(shlex.split(words[2]))
    for index, word in enumerate(words):
        if word == "spectrum-attack":
            return words[index + 1:]
        if word == "SpectrumAttackLib.cli.main" and words[index - 1] == "-m":
            return words[index + 1:]
    return None


def cli_module_parser():
    path = ROOT / "SpectrumAttackCLI/SpectrumAttackCLI.py"
    spec = importlib.util.spec_from_file_location("SpectrumAttackCLI_docs", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.build_parser()


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def all_commands() -> list[tuple[str, list[str]]]:
    return [(page.name, words) for page in PAGES for words in shell_commands(page.read_text(encoding="utf-8"))]


def test_the_extractor_joins_continuations_and_drops_comments() -> None:
    text = "x\n```bash\nspectrum-attack attack --a 1 \\\n    --b 2   # note\nmake demo\n```\n```python\nno\n```\n"
    assert shell_commands(text) == [["spectrum-attack", "attack", "--a", "1", "--b", "2"], ["make", "demo"]]
    assert spectrum_attack_words(["bash", "-c", "torchrun --nnodes 2 --no-python spectrum-attack train --x 1"]) \
        == ["train", "--x", "1"]


def test_every_documented_command_parses(capsys) -> None:
    parser, cli_module, targets = build_parser(), cli_module_parser(), make_targets()
    checked: dict[str, int] = {}
    failures = []
    for page, words in all_commands():
        kind = None
        arguments = spectrum_attack_words(words)
        try:
            if arguments is not None:
                kind = "spectrum-attack"
                parser.parse_args(arguments)
            elif any(w.endswith("SpectrumAttackCLI.py") for w in words):
                kind = "cli-module"
                start = next(i for i, w in enumerate(words) if w.endswith("SpectrumAttackCLI.py"))
                assert (ROOT / words[start]).is_file(), words[start]
                cli_module.parse_args(words[start + 1:])
            elif words[0] == "make":
                kind = "make"
                assert set(words[1:]) <= targets, f"unknown make target in {words}"
            elif words[0] == "python" and words[1].endswith(".py"):
                kind = "script"
                assert (ROOT / words[1]).is_file(), words[1]
        except SystemExit:
            failures.append(f"{page}: {shlex.join(words)}\n{capsys.readouterr().err.strip()}")
        except AssertionError as exc:
            failures.append(f"{page}: {shlex.join(words)} ({exc})")
        if kind:
            checked[kind] = checked.get(kind, 0) + 1
    assert not failures, "\n".join(failures)
    assert checked.get("spectrum-attack", 0) >= 15 and checked.get("make", 0) >= 2 and checked.get("cli-module")


def test_readme_commands_are_checked() -> None:
    readme = [words for page, words in all_commands() if page == "README.md"]
    assert ["make", "demo"] in readme and ["make", "test"] in readme
    assert any(spectrum_attack_words(w) for w in readme)
    assert any(w[0] == "python" and w[1].endswith("SpectrumAttackCLI.py") for w in readme)


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    text = "\n".join(lines)
    for needle in ("make demo", "make test", "SpectrumAttackLogic", "SpectrumAttackCLI.py", "spectrum-attack attack",
                   "prepare_case", "docs/demo-report.png"):
        assert needle in text, needle


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_lead_somewhere(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path = (page.parent / target).resolve()
        if path.name in PAGES_OF_OTHER_ISSUES and not path.exists():
            continue  # merged in from another branch
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_command_line_page_lists_every_seed_flag() -> None:
    text = (ROOT / "docs/command-line.md").read_text(encoding="utf-8")
    missing = [spec[0] for spec in SEED_FLAGS if f"`{spec[0]}`" not in text]
    assert not missing, missing
