"""The polling baseline's two Lambda functions, as tutorials write them: start a crawler; read its state.

Run by the local cloud's Lambda runtime for the benchmark only (bench/orchestration.py); never deployed.
"""

from __future__ import annotations

from typing import Any

import boto3

glue = boto3.client("glue")


def start_crawler(event: dict[str, Any], context: Any) -> dict[str, str]:
    glue.start_crawler(Name=event["crawler"])
    return {"crawler": event["crawler"]}


def crawler_state(event: dict[str, Any], context: Any) -> dict[str, str]:
    """READY | RUNNING | STOPPING, and the last crawl's SUCCEEDED | FAILED | CANCELLED (NONE before any)."""
    crawler = glue.get_crawler(Name=event["crawler"])["Crawler"]
    return {"state": crawler["State"], "last_crawl": crawler.get("LastCrawl", {}).get("Status", "NONE")}
