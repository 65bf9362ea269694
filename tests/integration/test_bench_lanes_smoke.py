"""The lanes parts of the benchmark at the smallest size, so they keep working: a load
(onboarding, flooded live, flooded live without a live rate) beside a live partner."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench.run import Options, run, summary

LOAD = 300
LIVE_MAX = 20


async def test_bench_lanes_parts_time_the_live_partner_beside_each_load(tmp_path: Path) -> None:
    options = Options.quick_mode(
        meldingen=200,
        lanes_meldingen=LOAD,
        lanes_live_max=LIVE_MAX,
        # flood-unlimited runs the same code as flood, in another region: left out.
        skip={
            "baseline",
            "baseline-receipts",
            "latency",
            "matcher",
            "memory",
            "e2e-family",
            "flood-unlimited",
        },
        replicas={"ingest": 1, "matcher": 1, "notifier": 1, "retention": 1},
        service_env={
            "VI_LOG_LEVEL": "warning",
            "VI_DB_POOL_SIZE": "4",
            "VI_RETRY_DELAYS_MS": "100,300,1000",
        },
        stall_seconds=20.0,
        output=tmp_path,
        log_dir=tmp_path / "logs",
    )
    result = await run(options)

    assert result["errors"] == {}, result["errors"]
    written = json.loads(await asyncio.to_thread(Path(result["written_to"]).read_text))
    measured = ("onboarding", "flood")
    assert written["parts"].keys() == {"e2e", *measured}
    for variant in measured:
        part = written["parts"][variant]
        live = part["live_sent"]
        assert 1 <= live <= LIVE_MAX
        # Every melding answered: the seeded youths and the load, and the live ones.
        assert part["load_statuses"] == {"accepted": LOAD}, variant
        assert part["seeded_statuses"] == {"accepted": LIVE_MAX}, variant
        assert part["live_statuses"] == {"accepted": live}, variant
        assert part["live_publish_to_receipt"]["n"] == live
        assert part["live_publish_to_match_notice"]["n"] == live
        assert part["load_meldingen_per_s"] > 0
        assert written["ratio_load_vs_e2e"][variant] > 0
    assert written["parts"]["onboarding"]["routing_key"] == "onboard.melding.register"
    assert written["parts"]["flood"]["live_rate_per_partner"] == 50.0
    assert written["ratio_load_vs_e2e"]["flood-unlimited"] is None
    targets = {t["target"]: t for t in written["targets"]}
    ratio = targets["onboarding load rate vs end-to-end rate"]
    assert ratio["value"] == written["ratio_load_vs_e2e"]["onboarding"]
    assert targets["flood: live partner's p99 publish -> receipt"]["met"] is not None
    assert "onboarding load" in summary(result)
