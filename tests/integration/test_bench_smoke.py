"""The benchmark's smallest end-to-end measurement, so `python -m bench` keeps working:
real service subprocesses, a bare relay over the same hops, figures as JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench.lanes import VARIANTS
from bench.run import Options, run, summary

MELDINGEN = 200


async def test_bench_end_to_end_and_relay_count_every_melding(tmp_path: Path) -> None:
    options = Options.quick_mode(
        meldingen=MELDINGEN,
        skip={"latency", "matcher", "memory", *VARIANTS},
        replicas={"ingest": 1, "matcher": 1, "notifier": 1, "retention": 1},
        # Few connections and short retries, as in the other integration tests.
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
    assert written["parts"].keys() == {"e2e", "e2e-family", "baseline", "baseline-receipts"}
    assert {"ratio_e2e_vs_relay", "targets", "machine", "options"} <= written.keys()

    e2e = written["parts"]["e2e"]
    matches = e2e["matches"]
    assert matches > 0
    assert e2e["sent"] == e2e["receipted"] == MELDINGEN
    assert e2e["receipt_statuses"] == {"accepted": MELDINGEN}
    # One event per match: a notice to each of the two partners, three e-mails.
    assert e2e["notify_events"] == matches
    assert e2e["notices"] == 2 * matches
    assert e2e["emails"] == 3 * matches
    assert e2e["hops"] == 3 * MELDINGEN + 6 * matches
    assert e2e["meldingen_per_s"] > 0

    # The same load with family lookups: one lookup per youth, each answered and
    # receipted; the matches and their notices are the same as without.
    with_family = written["parts"]["e2e-family"]
    youths = MELDINGEN - with_family["matches"]
    assert with_family["family"]["lookups"] == youths
    assert with_family["family"]["facts_receipted"] == youths
    assert with_family["receipt_statuses"] == {"accepted": MELDINGEN}
    assert with_family["notices"] == 2 * with_family["matches"]
    assert written["ratio_e2e_family_vs_e2e"] > 0
    assert "family lookups" in summary(result)

    relay = written["parts"]["baseline"]
    assert relay["sent"] == relay["receipted"] == MELDINGEN
    assert relay["hops"] == e2e["hops"]
    assert written["ratio_e2e_vs_relay"] > 0
    # The narrower baseline moves only the receipt path: 3 hops a melding, no events.
    receipts_only = written["parts"]["baseline-receipts"]
    assert receipts_only["receipted"] == MELDINGEN
    assert receipts_only["hops"] == 3 * MELDINGEN
    assert receipts_only["notices"] == receipts_only["email_jobs"] == 0
    assert written["ratio_e2e_vs_receipt_path_relay"] > 0

    targets = {t["target"]: t for t in written["targets"]}
    assert targets["end-to-end vs bare relay"]["value"] == written["ratio_e2e_vs_relay"]
    assert targets["p99 publish -> receipt at the offered load"]["met"] is None
    assert "bare relay" in summary(result)
