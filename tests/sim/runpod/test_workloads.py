"""The little shell that runs wrapper scripts behaves like sh where wrappers depend on it."""

from __future__ import annotations

import shlex

from vk_trio.sim.runpod.workloads import Workload, plan_run

JOB = Workload(lines=("a", "b"), line_interval=2, duration=10, exit_code=4)
WRAPPER = '"$@"; code=$?; echo "done $code"; exec sleep infinity'


def test_plain_args_run_the_image_program() -> None:
    plan = plan_run(JOB, "python train.py")
    assert plan.lines == ((0.0, "a"), (2.0, "b"))
    assert (plan.exit_at, plan.exit_code) == (10.0, 4)


def test_a_program_that_runs_forever_never_exits() -> None:
    assert plan_run(Workload(lines=("x",)), "").exit_at is None


def test_wrapper_keeps_the_exit_code_prints_it_and_idles() -> None:
    plan = plan_run(JOB, shlex.join(["sh", "-c", WRAPPER, "w", "python", "train.py"]))
    assert plan.lines == ((0.0, "a"), (2.0, "b"), (10.0, "done 4"))
    assert plan.exit_at is None


def test_wrapper_with_no_command_runs_nothing_like_sh() -> None:
    plan = plan_run(JOB, shlex.join(["sh", "-c", WRAPPER, "w"]))
    assert plan.lines == ((0.0, "done 0"),)
    assert plan.exit_at is None


def test_exit_and_sleep_and_positional_parameters() -> None:
    script = 'echo "hi $1"; sleep 5; false; exit $?'
    plan = plan_run(JOB, shlex.join(["bash", "-c", script, "zero", "you"]))
    assert plan.lines == ((0.0, "hi you"),)
    assert (plan.exit_at, plan.exit_code) == (5.0, 1)


def test_pipes_are_beyond_the_little_shell_and_run_the_program() -> None:
    plan = plan_run(JOB, shlex.join(["sh", "-c", "a | b"]))
    assert (plan.exit_at, plan.exit_code) == (10.0, 4)


def test_an_entrypoint_receives_the_words_and_the_script_never_runs() -> None:
    with_entrypoint = Workload(duration=1, exit_code=9, entrypoint=("/entry",))
    plan = plan_run(with_entrypoint, shlex.join(["sh", "-c", WRAPPER, "w", "x"]))
    assert (plan.exit_at, plan.exit_code) == (1.0, 9)


def test_unbalanced_quotes_fall_back_to_the_program() -> None:
    assert plan_run(JOB, "sh -c 'oops").exit_code == 4


def test_a_pods_own_shell_under_the_wrapper_runs_its_script_with_the_environment() -> None:
    inner = ["sh", "-c", "echo token=$TOKEN; sleep 3; exit 7"]
    plan = plan_run(JOB, shlex.join(["sh", "-c", WRAPPER, "w", *inner]), {"TOKEN": "t0"})
    assert plan.lines == ((0.0, "token=t0"), (3.0, "done 7"))
    assert plan.exit_at is None


def test_dollar_at_passes_each_argument_as_its_own_word() -> None:
    script = '"$@"; echo "code $?"; exit 0'
    plan = plan_run(JOB, shlex.join(["sh", "-c", script, "w", "sh", "-c", "echo one two"]))
    assert plan.lines == ((0.0, "one two"), (0.0, "code 0"))


def test_shells_nested_beyond_the_limit_run_the_image_program() -> None:
    args = ["true"]
    for _ in range(10):  # each level triples the quoting: 10 is 354 KB
        args = ["sh", "-c", shlex.join(args) + "; echo deeper"]
    plan = plan_run(JOB, shlex.join(args))
    assert (0.0, "a") in plan.lines  # the image's program stood in at the limit
