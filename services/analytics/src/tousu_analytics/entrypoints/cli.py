"""``python -m tousu_analytics.cli rebuild|generate|bench|detect|report``."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, timedelta

from sqlalchemy import text
from tousu_shared.logging import configure_logging
from tousu_shared.runtime import Service

from tousu_analytics.adapters.orm import LIVE, SCHEMA
from tousu_analytics.bootstrap import bootstrap
from tousu_analytics.domain.projection import local_day
from tousu_analytics.service_layer import bench, detector, generate, rebuild, reports


async def _vacuum_analyze(service: Service) -> None:
    """Fresh statistics and visibility map after a bulk load (autovacuum would get there)."""
    async with service.runtime.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        tables = ", ".join(f"{SCHEMA}.{table.name}" for table in LIVE.all)
        await conn.execute(text(f"VACUUM (ANALYZE) {tables}"))


async def _run(args: argparse.Namespace) -> object:
    service = bootstrap()
    ctx = service.app.state.analytics
    try:
        if args.command == "rebuild":
            return (await rebuild.rebuild(service)).__dict__
        if args.command == "generate":
            return {
                "written": await generate.generate(
                    ctx, args.complaints, seed=args.seed, days=args.days
                )
            }
        if args.command == "bench":
            generated = False
            if args.complaints:
                generated = await bench.ensure_generated(ctx, args.complaints)
                if generated:
                    await _vacuum_analyze(service)
            month = date.fromisoformat(f"{args.month}-01")
            return {"generated": generated, **await bench.measure(ctx, month)}
        if args.command == "detect":
            day = (
                date.fromisoformat(args.day)
                if args.day
                else local_day(ctx.clock()) - timedelta(days=1)
            )
            run = await detector.detect(ctx, day)
            return {
                "day": day.isoformat(),
                "series": run.series_tested,
                "raised": [str(i) for i in run.alerts_raised],
            }
        content = await reports.archive(ctx, date.fromisoformat(f"{args.month}-01"), "cli")
        return {"report_id": content["report_id"], "position": content["position"]}
    finally:
        await service.runtime.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Analytics maintenance commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rebuild", help="rebuild the read model from offset zero and swap it in")
    gen = commands.add_parser("generate", help="write synthetic complaints into the read model")
    gen.add_argument("--complaints", type=int, default=1_000_000)
    gen.add_argument("--days", type=int, default=365)
    gen.add_argument("--seed", type=int, default=1)
    measure = commands.add_parser("bench", help="time a KPI query and a monthly report")
    measure.add_argument("--month", default="2025-06")
    measure.add_argument(
        "--complaints",
        type=int,
        default=0,
        help="first generate this many complaints unless the read model holds as many",
    )
    det = commands.add_parser("detect", help="run the systemic-issue detector for one day")
    det.add_argument("--day", default=None)
    rep = commands.add_parser("report", help="archive a month's report now")
    rep.add_argument("--month", required=True)
    args = parser.parse_args(argv)
    configure_logging("analytics", "WARNING")
    print(json.dumps(asyncio.run(_run(args)), indent=2, default=str))


if __name__ == "__main__":
    main()
