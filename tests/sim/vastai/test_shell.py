"""The shell subset runs wrapper scripts the way /bin/sh would, and refuses what it cannot run."""

from __future__ import annotations

import itertools

import pytest

from vk_trio.sim.vastai.shell import Command, Unsupported, is_shell_script, plain, run_script

JOB = Command(run_seconds=30, lines=("a", "b", "c"), exit_code=3)


def script(
    text: str, command: Command = JOB, *positional: str
) -> tuple[list[tuple[float, str]], float | None, int | None]:
    timeline = run_script(["/bin/sh", "-c", text, "name", *positional], command, started_epoch=1000)
    return timeline.lines, timeline.exit_at, timeline.exit_code


def test_a_wrapper_runs_the_command_prints_its_status_and_idles() -> None:
    lines, exit_at, code = script(
        '"$@"; code=$?; echo "done code=$code at=$(date +%s)"; while :; do sleep 60; done'
    )
    assert lines == [(0.0, "a"), (10.0, "b"), (20.0, "c"), (30.0, "done code=3 at=1030")]
    assert (exit_at, code) == (None, None)


def test_the_script_exits_with_the_status_of_its_last_command() -> None:
    assert script('"$@"')[1:] == (30.0, 3)
    assert script('"$@"; echo after')[1:] == (30.0, 0)
    assert script('exec "$@"; echo never')[1:] == (30.0, 3)
    assert script("sleep 5; exit 7")[1:] == (5.0, 7)
    assert script('"$@"; exit')[1:] == (30.0, 3)


def test_a_command_that_runs_forever_never_reaches_the_marker() -> None:
    lines, exit_at, _ = script('"$@"; echo marker', Command(run_seconds=None, lines=("up",)))
    assert lines == [(0.0, "up")]
    assert exit_at is None


def test_quoting_and_expansion_follow_the_shell() -> None:
    lines, _, _ = script(
        "x=5; echo '$x' \"$x\" ${x}y \\$x $1; printf '%s-%d\\n' \"$x\" 7", JOB, "first"
    )
    assert [text for _, text in lines] == ["$x 5 5y $x first", "5-7"]


def test_sleep_infinity_idles_forever() -> None:
    assert script("echo hi; sleep infinity; echo never")[0] == [(0.0, "hi")]


@pytest.mark.parametrize(
    "text",
    [
        "curl http://x",
        "echo $(hostname)",
        "while true; do echo x; done",
        'echo "unterminated',
        "echo $@",
    ],
)
def test_what_the_subset_cannot_run_is_refused(text: str) -> None:
    with pytest.raises(Unsupported):
        script(text)


def test_only_sh_minus_c_is_a_script() -> None:
    assert is_shell_script(["/bin/sh", "-c", "true"])
    assert is_shell_script(["bash", "-c", "true", "x"])
    assert not is_shell_script(["python", "-c", "print()"])
    assert not is_shell_script(["/bin/sh", "script.sh"])


def test_a_plain_command_exits_with_its_code() -> None:
    timeline = plain(JOB)
    assert (timeline.exit_at, timeline.exit_code) == (30, 3)
    assert plain(Command(run_seconds=None)).exit_at is None


def test_arithmetic_and_default_expansions_follow_the_shell() -> None:
    lines, _, _ = script(
        "n=3; d=10; echo $((n + 1)) $((d >= 150 ? 300 : d * 2)) $(( (n - 5) * -2 % 3 ))"
        " ${unset:-7} ${n:-9} $((${unset:-0} - 4))"
    )
    assert [text for _, text in lines] == ["4 20 1 7 3 -4"]


def test_a_loop_that_runs_the_command_restarts_it_with_the_wrappers_backoff() -> None:
    """The Always wrapper of translate.py: each run ends with a marker, then a growing wait."""
    from vk_trio.providers.vastai.translate import wrapper  # the script under test

    nonce = "0123456789abcdef"
    lines, exit_at, _ = script(wrapper(nonce, "Always"), Command(run_seconds=30, exit_code=3))
    markers = [(t, text) for t, text in lines if text.startswith("vk-trio-exit")]
    assert exit_at is None  # it never ends
    assert markers[:4] == [
        (30.0, f"vk-trio-exit nonce={nonce} run=0 code=3 at=1030"),
        (70.0, f"vk-trio-exit nonce={nonce} run=1 code=3 at=1070"),  # after 10 s
        (120.0, f"vk-trio-exit nonce={nonce} run=2 code=3 at=1120"),  # after 20 s
        (190.0, f"vk-trio-exit nonce={nonce} run=3 code=3 at=1190"),  # after 40 s
    ]
    gaps = [b[0] - a[0] - 30 for a, b in itertools.pairwise(markers)]
    assert gaps[:7] == [10, 20, 40, 80, 160, 300, 300]


def test_a_long_run_resets_the_wrappers_backoff() -> None:
    from vk_trio.providers.vastai.translate import wrapper

    lines, _, _ = script(wrapper("0123456789abcdef", "Always"), Command(run_seconds=700))
    starts = [t for t, text in lines if text.startswith("vk-trio-exit")]
    assert [b - a - 700 for a, b in itertools.pairwise(starts)][:3] == [10, 10, 10]


@pytest.mark.parametrize(
    "text", ["while :; do echo x; done", 'while :; do "$@"; done', "x=$((1 / 0))", "x=$((2 ** 3))"]
)
def test_loops_that_never_wait_and_bad_arithmetic_are_refused(text: str) -> None:
    with pytest.raises(Unsupported):
        script(text, Command(run_seconds=0))
