from leadctl.backfill.cli import backfill as backfill
