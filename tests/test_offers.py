"""``vk-trio offers``: the table, its filters and order, the simulator notice, and exit codes,
for RunPod and for Vast.ai (the seed's ``--gpu-type "RTX 3060" --region "North America"``)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.sim.runpod.support import API_KEY
from tests.sim.vastai.support import API_KEY as VAST_KEY
from vk_trio.cli import main
from vk_trio.sim.runpod import RunPodSim
from vk_trio.sim.vastai import VastSim

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = ("RUNPOD_API_KEY", "RUNPOD_API_KEY_FILE", "CREDENTIALS_DIRECTORY", "RUNPOD_API_URL")
VAST_ENV = ("VAST_API_KEY", "VAST_API_KEY_FILE", "VAST_API_URL")
VAST_HEADER = [
    "GPU",
    "TYPE",
    "MEMORY",
    "GPUS",
    "$/H",
    "LOCATION",
    "HOSTING",
    "RELIABILITY",
    "OFFER",
]


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*KEY_ENV, *VAST_ENV, "DATACENTER_IDS", "MAX_GPU_PRICE", "VK_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """``offers`` quiets vk-trio's logging for its one process; later tests must hear it."""
    logger = logging.getLogger("vk_trio")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)  # setLevel, not .level: it also clears the loggers' level caches
    logger.handlers[:] = handlers
    logger.propagate = propagate


def rows(stdout: str, header: list[str] | None = None) -> list[list[str]]:
    """The table's data rows, split on runs of two or more spaces."""
    lines = stdout.strip().splitlines()
    assert lines[0].split() == header or [
        "GPU",
        "TYPE",
        "MEMORY",
        "GPUS",
        "$/H",
        "DATACENTER",
        "CLOUD",
        "STOCK",
    ]
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines[1:]]


def test_without_a_key_the_simulators_offers_are_listed_cheapest_first_and_stderr_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["offers", "--provider", "runpod"]) == 0
    out, err = capsys.readouterr()
    table = rows(out)
    prices = [float(row[3]) for row in table]
    assert prices == sorted(prices) and len(table) > 5
    assert table[0][0] == "NVIDIA RTX 2000 Ada Generation" and table[0][1] == "16 GB"
    assert "no RUNPOD_API_KEY set" in err and "SIMULATED" in err


def test_memory_count_price_datacenters_and_cloud_type_filter_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "offers",
        "--gpu-memory=40",
        "--gpus=2",
        "--max-price=2.5",
        "--datacenter-ids=eu-ro-1,US-TX-3",
        "--cloud-type=community",
    ]
    assert main(argv) == 0
    table = rows(capsys.readouterr().out)
    assert table
    for gpu, memory, count, price, datacenter, cloud, _stock in table:
        assert float(memory.removesuffix(" GB")) >= 40, gpu
        assert count == "2" and float(price) <= 2.5
        assert datacenter in ("EU-RO-1", "US-TX-3") and cloud == "COMMUNITY"
    assert {row[0] for row in table} == {"NVIDIA L40S", "NVIDIA A100 80GB PCIe"}


def test_nothing_affordable_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["offers", "--max-price", "0.01"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "vk-trio: no offer right now for 1 GPU(s), at most $0.01/h"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus", "two"], "--gpus: 'two' is not a whole number"),
        (["--gpus", "0"], "--gpus: '0' must be a whole number above 0"),
        (["--gpu-memory", "lots"], "--gpu-memory: 'lots' is not a number"),
        (["--max-price", "-1"], "--max-price: '-1' must be a number above 0"),
        (["--max-price", "nan"], "--max-price: 'nan' must be a number above 0"),
        (["--cloud-type", "SPOT"], "--cloud-type: 'SPOT' is not SECURE or COMMUNITY"),
        (["--datacenter-ids", "EU RO 1"], "--datacenter-ids: 'EU RO 1' is not a datacenter id"),
        (["--provider", "azure"], "--provider: 'azure' is not one of fake, runpod, vastai"),
        (["--runpod-api-url", "http://127.0.0.1:9"], "RUNPOD_API_KEY is not"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["offers", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err


async def offers_cli(*argv: str, key: str) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "RUNPOD_API_KEY": key, "HOME": str(Path.home())}
    return await trio.run_process(
        [sys.executable, "-m", "vk_trio", "offers", *argv],
        env=env,
        cwd=str(ROOT),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_with_a_key_it_asks_the_runpod_api_url_and_never_shows_the_key(
    nursery: trio.Nursery,
) -> None:
    sim = RunPodSim(api_key=API_KEY)
    sim.clear_stock()
    sim.set_stock("NVIDIA L40S", "EU-SE-1", "SECURE", 9)
    await nursery.start(sim.serve)
    done = await offers_cli("--runpod-api-url", sim.url, key=API_KEY)
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout.decode())
    # $0.86 for the GPU and $0.0027 for the 20 GB container disk RunPod bills while it runs
    assert table == [["NVIDIA L40S", "48 GB", "1", "0.863", "EU-SE-1", "SECURE", "HIGH"]]
    assert b"SIMULATED" not in done.stderr
    assert sim.requests_for("listGpuTypes")

    refused = await offers_cli("--runpod-api-url", sim.url, key="wrong-key-123")
    assert refused.returncode == 1
    assert b"ProviderAuthFailed" in refused.stderr and b"wrong-key-123" not in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


# --- both clouds ----------------------------------------------------------------------------


MERGED_HEADER = ["CLOUD", "GPU", "MEMORY", "GPUS", "$/H", "WHERE", "KIND", "DETAIL"]


def test_both_clouds_give_one_merged_table_cheapest_first_with_a_cloud_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["offers", "--provider", "runpod,vastai", "--gpu-type", "RTX 4090", "--max-price", "1"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split() == MERGED_HEADER
    table = [[c.strip() for c in line.split("  ") if c.strip()] for line in lines[1:]]
    prices = [float(row[4]) for row in table]
    assert prices == sorted(prices)
    assert {row[0] for row in table} == {"RunPod", "Vast.ai"}
    assert {row[1] for row in table} == {"RTX 4090"}  # one model name on both clouds
    assert table[0][:2] == ["Vast.ai", "RTX 4090"] and table[0][5] == "Tokyo, JP"
    assert table[-1][0] == "RunPod" and table[-1][7].startswith("stock ")
    assert "no RUNPOD_API_KEY set" in err and "no VAST_API_KEY set" in err


def test_each_clouds_own_filters_narrow_its_rows_of_the_merged_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "offers",
        "--provider=runpod,vastai",
        "--gpu-type=RTX 4090",
        "--region=JP",
        "--datacenter-ids=EU-RO-1",
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    where = [[c.strip() for c in line.split("  ") if c.strip()][5] for line in lines]
    assert where == ["Tokyo, JP", "EU-RO-1"]
    assert main(["offers", "--provider=runpod,vastai", "--gpu-type=RTX 9999"]) == 2
    assert "--gpu-type: 'RTX 9999' is not a GPU model" in capsys.readouterr().err


# --- Vast.ai -----------------------------------------------------------------------------------


def test_the_seeds_north_american_rtx_3060s_are_listed_cheapest_first_from_the_simulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["offers", "--provider", "vastai", "--gpu-type", "RTX 3060"]
    assert main([*argv, "--region", "North America", "--max-price", "0.30"]) == 0
    out, err = capsys.readouterr()
    table = rows(out, VAST_HEADER)
    assert [(row[0], row[1], row[4]) for row in table] == [
        ("RTX 3060", "12 GB", "Quebec, CA"),
        ("RTX 3060", "12 GB", "Ohio, US"),
    ]
    assert [float(row[3]) for row in table] == sorted(float(row[3]) for row in table)
    assert all(float(row[3]) <= 0.30 for row in table)
    assert "no VAST_API_KEY set" in err and "SIMULATED Vast.ai" in err


def test_fallback_gpus_country_codes_and_disk_filter_and_price_the_vast_ai_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["offers", "--provider", "vastai", "--gpu-type", "RTX 3090, RTX 4090"]
    assert main([*argv, "--region", "US", "--disk", "100"]) == 0
    table = rows(capsys.readouterr().out, VAST_HEADER)
    # Nevada's 3090 is unreliable and Oregon's 4090 unverified: neither is offered
    assert [(row[0], row[4]) for row in table] == [("RTX 4090", "California, US")]
    assert float(table[0][3]) == pytest.approx(0.31 + 100 * 0.15 / 720, abs=5e-4)


def test_the_nodes_max_gpu_price_caps_vast_ai_offers_per_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_GPU_PRICE", "0.07")
    assert main(["offers", "--provider", "vastai", "--gpu-type", "RTX 3060"]) == 0
    assert [row[4] for row in rows(capsys.readouterr().out, VAST_HEADER)] == ["Quebec, CA"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--region", "Mars"], "--region: 'Mars' is neither a region"),
        (["--gpu-type", " , "], "--gpu-type: ' , ' is not a GPU type"),
        (["--disk", "big"], "--disk: 'big' is not a number"),
        (["--datacenter-ids", "EU-RO-1"], "--datacenter-ids: only for --provider runpod"),
        (["--cloud-type", "SECURE"], "--cloud-type: only for --provider runpod"),
        (["--vast-api-url", "http://127.0.0.1:9"], "VAST_API_KEY is not"),
    ],
)
def test_a_bad_or_foreign_vast_ai_value_exits_2_with_one_line_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["offers", "--provider", "vastai", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err


def test_region_is_refused_for_runpod(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["offers", "--region", "Europe"]) == 2
    assert "--region: only for --provider vastai" in capsys.readouterr().err


async def vast_offers_cli(*argv: str, key: str) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "VAST_API_KEY": key, "HOME": str(Path.home())}
    return await trio.run_process(
        [sys.executable, "-m", "vk_trio", "offers", "--provider", "vastai", *argv],
        env=env,
        cwd=str(ROOT),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_with_a_key_it_asks_the_vast_api_url_and_never_shows_the_key(
    nursery: trio.Nursery,
) -> None:
    sim = VastSim(api_keys=[VAST_KEY])
    await nursery.start(sim.serve)
    done = await vast_offers_cli("--vast-api-url", sim.url, "--gpu-type", "L40S", key=VAST_KEY)
    assert done.returncode == 0, done.stderr
    (row,) = rows(done.stdout.decode(), VAST_HEADER)
    assert row[:2] + row[4:5] == ["L40S", "44.99 GB", "Sao Paulo, BR"]
    assert b"SIMULATED" not in done.stderr
    (search,) = [e for e in sim.journal if e.operation == "searchOffers"]
    assert search.auth == "bearer"

    refused = await vast_offers_cli("--vast-api-url", sim.url, key="wrong-key-456")
    assert refused.returncode == 1
    assert b"ProviderAuthFailed" in refused.stderr and b"wrong-key-456" not in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
